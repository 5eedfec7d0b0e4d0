//! `explore-latent-space` on the small trained example (known motion): trajectory ends against
//! the true end conformations, cluster subsets re-read, every output present, bad input.

use std::path::Path;
use std::process::Command;

use cryomotion::analysis::pearson;
use cryomotion::io::mrc::read_map;
use cryomotion::io::relion::read_particles_star;

use crate::deformations::trained_example;
use crate::util::{cli_err as err, cli_ok as ok};

fn correlation(a: &Path, b: &Path) -> f64 {
    let (a, b) = (read_map(a).unwrap(), read_map(b).unwrap());
    assert_eq!(a.volume.shape, b.volume.shape);
    let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    pearson(&f(&a.volume.data), &f(&b.volume.data))
}

/// A copy of the trained run's outputs in a fresh directory (explore writes under OUT).
fn run_copy(into: &Path) -> String {
    let from = trained_example().join("run");
    let status = Command::new("cp").arg("-r").arg(&from).arg(into).status().unwrap();
    assert!(status.success());
    into.join("run").display().to_string()
}

#[test]
fn trajectories_clusters_and_activity_match_the_known_motion() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_copy(dir.path());
    let picked = dir.path().join("picked.txt");
    std::fs::write(&picked, "1\n17\n").unwrap();
    let stdout = ok(&[
        "explore-latent-space",
        &out,
        "--half-set",
        "0",
        "--embedding",
        "umap",
        "--n-clusters",
        "3",
        "--trajectory-steps",
        "5",
        "--latents",
        picked.to_str().unwrap(),
        "--max-points",
        "300",
    ]);
    assert!(stdout.contains("half models on the same particles"), "{stdout}");
    let explore = Path::new(&out).join("explore");
    let sim = trained_example().join("simulation");
    let consensus = read_map(trained_example().join("consensus/map.mrc")).unwrap();
    for half in ["half1", "half2"] {
        let h = explore.join(half);
        // the ends of the PC1 trajectory resemble opposite true ends of the motion
        let traj = h.join("trajectory_pc1");
        for kind in ["map", "gaussians"] {
            let (first, last) = (traj.join(format!("{kind}_000.mrc")), traj.join(format!("{kind}_004.mrc")));
            let (lo, hi) = (sim.join("mode_1_min.mrc"), sim.join("mode_1_max.mrc"));
            let first_prefers_lo = correlation(&first, &lo) - correlation(&first, &hi);
            let last_prefers_lo = correlation(&last, &lo) - correlation(&last, &hi);
            eprintln!(
                "{half} {kind}: first end prefers the low end by {first_prefers_lo:.4}, last by {last_prefers_lo:.4}"
            );
            assert!(
                first_prefers_lo * last_prefers_lo < 0.0,
                "{half} {kind}: both trajectory ends resemble the same true end ({first_prefers_lo:.4}, {last_prefers_lo:.4})"
            );
            // in the consensus map's frame: same box, pixel size and origin
            let m = read_map(&first).unwrap();
            assert_eq!(m.volume.shape, consensus.volume.shape);
            assert_eq!(m.voxel_size, consensus.voxel_size);
        }
        let models = std::fs::read_to_string(traj.join("trajectory.pdb")).unwrap();
        assert_eq!(models.matches("ENDMDL").count(), 5, "one model per trajectory step");

        // cluster subsets: counts add up to the half, names are the original images
        let table = read_particles_star(sim.join("particles.star")).unwrap();
        let mut total = 0;
        for c in 1..=3 {
            let star = h.join(format!("clusters/cluster_{c:02}.star"));
            let info = ok(&["info", star.to_str().unwrap()]);
            let subset = read_particles_star(&star).unwrap();
            assert!(info.contains(&format!("{} rows", subset.len())), "{info}");
            total += subset.len();
            for p in &subset.particles {
                assert!(
                    table.particles.iter().any(|o| o.image == p.image),
                    "{:?} is not an original image",
                    p.image
                );
            }
            assert!(h.join(format!("clusters/cluster_{c:02}_map.mrc")).is_file());
            assert!(h.join(format!("clusters/cluster_{c:02}.pdb")).is_file());
        }
        let half_number: u8 = half[4..].parse().unwrap();
        assert_eq!(total, table.particles.iter().filter(|p| p.random_subset == Some(half_number)).count());
        for f in [
            "embedding.csv",
            "motion.csv",
            "pca_by_motion.png",
            "pca_by_location.png",
            "pca_by_defocus.png",
            "umap_by_tilt.png",
            "umap_by_cluster.png",
            "consensus_activity.pdb",
            "latents/particle_0000001_map.mrc",
            "latents/particle_0000017.pdb",
        ] {
            assert!(h.join(f).is_file(), "{half}/{f} missing");
        }
        // activity in the B-factor column: the most active Gaussians move well beyond the least
        let pdb = std::fs::read_to_string(h.join("consensus_activity.pdb")).unwrap();
        let mut b: Vec<f64> = pdb
            .lines()
            .filter(|l| l.starts_with("ATOM") || l.starts_with("HETATM"))
            .map(|l| l[60..66].trim().parse().unwrap())
            .collect();
        b.sort_by(f64::total_cmp);
        assert!(b[b.len() * 9 / 10] > 2.0 * b[b.len() / 10].max(0.01), "activity flat: {b:?}");
    }
    for f in ["half_comparison.csv", "half_comparison.pdb", "half_comparison.png", "half_comparison.txt"] {
        assert!(explore.join(f).is_file(), "{f} missing");
    }
}

#[test]
fn bad_inputs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_copy(dir.path());
    // latents of the wrong dimension
    let wrong = dir.path().join("wrong.txt");
    std::fs::write(&wrong, "0.1 0.2\n").unwrap();
    let e = err(&["explore-latent-space", &out, "--latents", wrong.to_str().unwrap()]);
    assert!(e.contains("latent dimensions") && e.contains("wrong.txt"), "{e}");
    // an empty selection
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "# nothing\n").unwrap();
    let e = err(&["explore-latent-space", &out, "--latents", empty.to_str().unwrap()]);
    assert!(e.contains("no latents") && e.contains("empty.txt"), "{e}");
    let e = err(&["explore-latent-space", &out, "--half-set", "3"]);
    assert!(e.contains("--half-set"), "{e}");
    // a particle file the checkpoint was not trained on
    let other = dir.path().join("other.star");
    let text = std::fs::read_to_string(trained_example().join("simulation/particles.star")).unwrap();
    let cut: Vec<&str> = text.lines().collect();
    std::fs::write(&other, cut[..cut.len() - 5].join("\n") + "\n").unwrap();
    let e = err(&["explore-latent-space", &out, "--refinement-star-file", other.to_str().unwrap()]);
    assert!(e.contains("other particles") && e.contains("other.star"), "{e}");
    // RELION 5's command line (RelionJob::getCommandsDynaMightJob adds --gpu-id to every
    // DynaMight command, prepareFinalCommand --pipeline-control)
    let job = dir.path().join("job");
    std::fs::create_dir_all(&job).unwrap();
    let job_dir = job.to_str().unwrap();
    ok(&["explore-latent-space", &out, "--half-set", "1", "--gpu-id", "0", "--pipeline-control", job_dir]);
    assert!(job.join("RELION_JOB_EXIT_SUCCESS").is_file());
    // no run there
    let e = err(&["explore-latent-space", dir.path().to_str().unwrap()]);
    assert!(e.contains("no checkpoint"), "{e}");
}
