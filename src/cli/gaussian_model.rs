//! `cryomotion gaussian-model`: the Gaussian consensus model of a map, to check before training.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use cryomotion::io::mrc::read_map;
use cryomotion::model::FitOptions;
use cryomotion::ops::gaussian_model::{build, write_outputs};

/// Fit Gaussian pseudo-atoms to a consensus map (or one per residue of a docked model).
#[derive(clap::Args)]
#[command(after_help = "Writes DIR/gaussians.pdb (open over the map in ChimeraX), DIR/gaussians.mrc,
DIR/gaussians_fsc.star and .png (model vs map), DIR/gaussians.weights.

Example:
  cryomotion gaussian-model --map consensus.mrc --n-gaussians 10000 --o Model")]
pub struct Args {
    /// Consensus map.
    #[arg(long)]
    map: PathBuf,
    /// Number of Gaussians.
    #[arg(long, default_value_t = 10_000)]
    n_gaussians: usize,
    /// Fit to the map low-pass filtered to this resolution (Å).
    #[arg(long, default_value_t = 8.0)]
    initial_resolution: f64,
    /// Place Gaussians above this density (default: Otsu's threshold of the filtered map).
    #[arg(long)]
    initial_threshold: Option<f32>,
    /// Docked atomic model (PDB/mmCIF, in the map's frame): one Gaussian per residue instead.
    #[arg(long)]
    atomic_model: Option<PathBuf>,
    /// Fitting iterations.
    #[arg(long, default_value_t = 300)]
    iterations: usize,
    /// Seed of the placement.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output directory.
    #[arg(long = "o", value_name = "DIR")]
    output: PathBuf,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let map = read_map(&args.map)?;
    let shape = map.volume.shape;
    if shape.iter().any(|&s| s != shape[0]) {
        bail!("{}: the map must be cubic, got {:?}", args.map.display(), shape);
    }
    if args.n_gaussians == 0 {
        bail!("--n-gaussians must be at least 1");
    }
    let options = FitOptions {
        count: args.n_gaussians,
        resolution: args.initial_resolution,
        threshold: args.initial_threshold,
        iterations: args.iterations,
        seed: args.seed,
    };
    let start = std::time::Instant::now();
    let summary = build(&map, args.atomic_model.as_deref(), &options)?;
    if let Some(t) = summary.threshold {
        println!("placement threshold {t:.4}");
    }
    if let (Some(first), Some(last)) = (summary.losses.first(), summary.losses.last()) {
        println!("fit objective {first:.4} → {last:.4} in {} iterations", summary.losses.len());
    }
    println!(
        "{} Gaussians in {:.1} s; FSC with the map ≥ 0.9 to {:.1} Å",
        summary.model.len(),
        start.elapsed().as_secs_f64(),
        summary.resolution_at_0_9
    );
    let files = write_outputs(&args.output, &map, &summary)?;
    for path in [&files.points, &files.volume, &files.fsc, &files.model] {
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
