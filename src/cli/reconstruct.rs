//! `cryomotion reconstruct`: half maps, map and FSC from particles with poses (like relion_reconstruct).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use cryomotion::io::images::{ImagePaths, ParticleImages};
use cryomotion::io::mrc::{Mode, read_map, write_volume};
use cryomotion::io::relion::read_particles_star;
use cryomotion::ops::reconstruct::{
    ReconstructOptions, accumulator_bytes, reconstruct, reconstruct_subset, write_outputs,
};

/// Reconstruct a map from particles with poses: two half maps, the full map and their FSC.
///
/// Each particle's image is read from its stack (one at a time: memory holds only the Fourier
/// accumulators), centred and un-shifted, multiplied by its CTF (--ctf) and inserted at its
/// pose; the half sets follow rlnRandomSubset (a seeded split when the column is missing,
/// written to DIR/particles.star). Maps are Wiener-regularised with the SSNR from the half-map
/// FSC, as RELION does.
#[derive(clap::Args)]
#[command(
    after_help = "Outputs: DIR/half1.mrc, DIR/half2.mrc, DIR/map.mrc, DIR/fsc.star, DIR/fsc.png (and DIR/particles.star
when half sets were assigned).

Example:
  cryomotion reconstruct Refine3D/job010/run_data.star --o Reconstruct/ --ctf"
)]
pub struct Args {
    /// Particle STAR file (RELION 3.0, 3.1 or 5) with poses.
    star: PathBuf,

    /// Output directory.
    #[arg(long = "o", value_name = "DIR")]
    output: PathBuf,

    /// Mask for the masked FSC, corrected by phase randomisation (the reported resolution).
    #[arg(long)]
    mask: Option<PathBuf>,

    /// Correct for the CTF (multiply by CTF, weight by CTF²).
    #[arg(long)]
    ctf: bool,

    /// Reconstruct only half set 1 or 2 (writes DIR/map.mrc, no FSC).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    subset: Option<u8>,

    /// Padding factor of the Fourier grid.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=4))]
    pad: u8,

    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,

    /// Memory limit in GB for the Fourier accumulators (threads are reduced to fit).
    #[arg(long, value_name = "GB")]
    max_memory: Option<f64>,

    /// Write plain maps, without the Wiener term from the half-map FSC (as relion_reconstruct
    /// without --fsc).
    #[arg(long)]
    no_wiener: bool,

    /// Seed of the half-set split for particles without rlnRandomSubset.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Directory relative image paths are relative to (default: the STAR file's directory, then
    /// its parents).
    #[arg(long, value_name = "DIR")]
    project_dir: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let table = read_particles_star(&args.star)?;
    if !table.has_poses {
        bail!("{}: the particles have no poses (rlnAngleRot, rlnAngleTilt)", args.star.display());
    }
    let paths = ImagePaths { project_dir: args.project_dir.clone(), ..Default::default() };
    let images = ParticleImages::open(&table, &paths)?;
    let n = images.shape()[0];
    let mut threads =
        args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |t| t.get()));
    if let Some(gb) = args.max_memory {
        let limit = (gb * 1e9) as u64;
        while threads > 1 && accumulator_bytes(n, args.pad as usize, threads) > limit {
            threads -= 1;
        }
        let need = accumulator_bytes(n, args.pad as usize, threads);
        if need > limit {
            bail!(
                "box {n} with padding {} needs {:.2} GB of accumulators, more than --max-memory {gb}",
                args.pad,
                need as f64 / 1e9
            );
        }
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let mask = args.mask.as_ref().map(read_map).transpose()?.map(|m| m.volume);
    let options = ReconstructOptions {
        ctf: args.ctf,
        padding: args.pad as usize,
        seed: args.seed,
        wiener: !args.no_wiener,
        mask,
    };
    let bar = crate::cli::progress::bar(table.len() as u64, "inserting particles");
    let tick = |k: usize| bar.inc(k as u64);
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    if let Some(subset) = args.subset {
        let map = pool.install(|| reconstruct_subset(&table, &images, subset, &options, &tick))?;
        bar.finish_and_clear();
        let path = args.output.join("map.mrc");
        write_volume(&path, &map, table.optics_of(0).pixel_size as f32, [0.0; 3], Mode::Float32)?;
        println!("wrote {}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let result = pool.install(|| reconstruct(&table, &images, &options, &tick))?;
    bar.finish_and_clear();
    for path in write_outputs(&result, &table, &args.output)? {
        println!("wrote {}", path.display());
    }
    let halves = [1, 2].map(|h| result.subsets.iter().filter(|&&s| s == h).count());
    println!(
        "{} particles ({} / {} in the half sets), box {n}, {:.3} Å/px: resolution at FSC 0.143 = {:.2} Å",
        table.len(),
        halves[0],
        halves[1],
        result.pixel_size,
        result.resolution
    );
    Ok(ExitCode::SUCCESS)
}
