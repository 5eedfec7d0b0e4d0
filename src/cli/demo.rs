//! `cryomotion demo`: the whole pipeline on a built-in example whose motion is known, with a
//! summary that compares what was learnt with the truth.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use cryomotion::analysis::{Pca, spearman};
use cryomotion::array::Volume;
use cryomotion::io::atoms::read_atoms;
use cryomotion::io::mrc::read_map;
use cryomotion::io::relion::read_particles_star;
use cryomotion::io::star::StarFile;
use cryomotion::ops::ground_truth::TrueMotion;
use cryomotion::ops::optimize_deformations::Layout;
use cryomotion::ops::simulate::{AtomModes, Source};
use cryomotion::reconstruction::fsc;
use cryomotion::training::{TrainedModel, table_fingerprint};

/// Adenylate kinase, chain A of PDB 1AKE (1,656 atoms), built in so that the demo needs nothing
/// but the binary.
const ADK_MODEL: &str = include_str!("../../assets/adk_1ake_chain_a.pdb");

/// Run the whole pipeline on a built-in flexible example and compare it with the truth.
///
/// Simulates adenylate kinase opening and closing along its slowest normal mode (±6 Å), with
/// CTF and noise; reconstructs the consensus; trains; explores the latent space; reconstructs
/// with the motions undone. Prints each step as the command that does it, then a summary:
/// how well the latent space follows the true motion, and the maps against the truth.
#[derive(clap::Args)]
#[command(after_help = "Example:
  cryomotion demo --quick           # toy size, about a minute
  cryomotion demo --out demo        # 10,000 particles, a few minutes")]
pub struct Args {
    /// Directory for everything the demo writes.
    #[arg(long, default_value = "cryomotion_demo")]
    out: PathBuf,
    /// Toy size: 600 particles of box 48 at SNR 1, 30 epochs.
    #[arg(long)]
    quick: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    n_threads: Option<usize>,
}

/// How big the example is.
struct Size {
    particles: usize,
    box_size: usize,
    snr: f64,
    epochs: usize,
    /// The last epochs, refitting the decoder on refined latents. The quick example's motion
    /// appears only after the KL ramp, so its decoder needs 20 epochs of the encoder first.
    refit_epochs: usize,
    gaussians: usize,
    batch: usize,
}

const PIXEL_SIZE: f64 = 1.5;
const AMPLITUDE: f64 = 6.0;

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let size = if args.quick {
        Size {
            particles: 600,
            box_size: 48,
            snr: 1.0,
            epochs: 30,
            refit_epochs: 10,
            gaussians: 300,
            batch: 8,
        }
    } else {
        Size {
            particles: 10_000,
            box_size: 64,
            snr: 0.1,
            epochs: 20,
            refit_epochs: 10,
            gaussians: 400,
            batch: 32,
        }
    };
    let out = &args.out;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let model = out.join("adk_1ake_chain_a.pdb");
    std::fs::write(&model, ADK_MODEL).with_context(|| format!("writing {}", model.display()))?;
    let start = std::time::Instant::now();
    for step in steps(out, &model, &size, args.n_threads) {
        println!("\n$ cryomotion {}", step.join(" "));
        let code = super::run_command(&step)?;
        if code != ExitCode::SUCCESS {
            bail!("the demo stopped at `cryomotion {}`", step[0]);
        }
    }
    let minutes = start.elapsed().as_secs_f64() / 60.0;
    summary(out, &model, &size, minutes)?;
    Ok(ExitCode::SUCCESS)
}

/// The commands of the pipeline, as a user would type them.
fn steps(out: &Path, model: &Path, size: &Size, threads: Option<usize>) -> Vec<Vec<String>> {
    let path = |p: &str| out.join(p).display().to_string();
    let n = |v: usize| v.to_string();
    let threads = threads.map(|t| t.to_string());
    let with_threads = |mut step: Vec<String>, flag: &str| {
        if let Some(t) = &threads {
            step.extend([flag.to_string(), t.clone()]);
        }
        step
    };
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut simulate = words(&["simulate", "--model"]);
    simulate.extend([model.display().to_string()]);
    simulate.extend(words(&["--anm-modes", "1", "--anm-amplitude", &AMPLITUDE.to_string()]));
    simulate.extend(words(&["--n-particles", &n(size.particles), "--snr", &size.snr.to_string()]));
    simulate.extend(words(&["--box", &n(size.box_size), "--pixel-size", &PIXEL_SIZE.to_string()]));
    simulate.extend(words(&["--seed", "1", "--o", &path("simulation")]));
    let reconstruct =
        words(&["reconstruct", &path("simulation/particles.star"), "--o", &path("consensus"), "--ctf"]);
    let mut train =
        words(&["optimize-deformations", "--refinement-star-file", &path("simulation/particles.star")]);
    train.extend(words(&["--initial-model", &path("consensus/map.mrc"), "--output-directory", &path("run")]));
    train.extend(words(&["--n-gaussians", &n(size.gaussians), "--initial-resolution", "6"]));
    train.extend(words(&["--batch-size", &n(size.batch), "--n-epochs", &n(size.epochs)]));
    train.extend(words(&["--decoder-refit-epochs", &n(size.refit_epochs)]));
    vec![
        simulate,
        with_threads(reconstruct, "--threads"),
        with_threads(train, "--n-threads"),
        with_threads(words(&["explore-latent-space", &path("run")]), "--n-threads"),
        with_threads(words(&["optimize-inverse-deformations", &path("run")]), "--n-threads"),
        with_threads(words(&["deformable-backprojection", &path("run")]), "--n-threads"),
    ]
}

/// What the demo found, against the truth of the simulation.
fn summary(out: &Path, model: &Path, size: &Size, minutes: f64) -> anyhow::Result<()> {
    let table = read_particles_star(out.join("simulation/particles.star"))?;
    let trained = TrainedModel::read(
        &Layout::new(&out.join("run")).final_checkpoint(),
        table_fingerprint(&table),
        table.len(),
    )?;
    let atoms = read_atoms(model)?.models.remove(0);
    let source = || Source::Atoms {
        frames: vec![atoms.clone()],
        modes: Some(AtomModes::anm(&atoms, 1, 15.0, 1.0)),
        resolution: 3.0,
        box_size: size.box_size,
    };
    let truth = TrueMotion::new(source(), &out.join("simulation/truth.csv"))?;
    println!(
        "\n== cryomotion demo: adenylate kinase, {} particles, box {}, SNR {}, in {minutes:.1} min",
        size.particles, size.box_size, size.snr
    );
    for half in 0..2 {
        let rows: Vec<usize> = (0..trained.len()).filter(|&p| trained.half_index(p) == half).collect();
        let points: Vec<f32> = rows.iter().flat_map(|&p| trained.latent_of(p).to_vec()).collect();
        let pca = Pca::fit(&points, trained.latent);
        let pc1: Vec<f64> = points.chunks_exact(trained.latent).map(|p| pca.project(p, 0)).collect();
        let amplitude: Vec<f64> = rows.iter().map(|&p| truth.conformations[p][0]).collect();
        println!(
            "latent PC1 against the true opening (half {}): |Spearman| {:.3}",
            half + 1,
            spearman(&pc1, &amplitude).abs()
        );
    }
    let mean = truth.conformations.iter().map(|c| c[0]).sum::<f64>() / truth.len().max(1) as f64;
    let reference = source()
        .gaussians_at(&[mean])
        .context("the demo's source has atoms")?
        .render_volume(size.box_size, PIXEL_SIZE);
    for (name, dir) in
        [("plain reconstruction     ", "consensus"), ("deformable backprojection", "run/backprojection")]
    {
        let map = read_map(out.join(dir).join("map.mrc"))?;
        let resolution = StarFile::read(out.join(dir).join("fsc.star"))?
            .block("general")
            .and_then(|b| b.pair("rlnFinalResolution"))
            .and_then(|v| v.parse::<f64>().ok())
            .context("rlnFinalResolution in fsc.star")?;
        println!(
            "{name}: {resolution:.2} Å (half-map FSC 0.143); mean FSC to 0.8 Nyquist against the true mean conformation {:.3}",
            mean_fsc(&map.volume, &reference)
        );
    }
    println!("\nOutputs in {}:", out.display());
    for (what, path) in [
        ("simulated particles and their truth", "simulation/particles.star, simulation/truth.csv"),
        ("consensus map (plain reconstruction)", "consensus/map.mrc"),
        ("training: latents, losses, plots", "run/forward_deformations/"),
        ("latent space: PCA, clusters, trajectory maps", "run/explore/"),
        ("maps with the motions undone", "run/backprojection/map.mrc, map_half1.mrc, map_half2.mrc"),
    ] {
        println!("  {what:<46} {path}");
    }
    println!(
        "Open the maps in ChimeraX: chimerax {} {}",
        out.join("consensus/map.mrc").display(),
        out.join("run/backprojection/map.mrc").display()
    );
    println!("Explore the motions in a browser: cryomotion view {}", out.join("run").display());
    Ok(())
}

/// Mean FSC up to 0.8 Nyquist.
fn mean_fsc(a: &Volume, b: &Volume) -> f64 {
    let curve = fsc(a, b);
    let edge = (0.8 * (curve.len() - 1) as f64) as usize;
    curve[1..=edge].iter().sum::<f64>() / edge.max(1) as f64
}
