//! `cryomotion deformable-backprojection`: half maps in the consensus frame with each
//! particle's motion undone, tile by tile.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use cryomotion::io::images::{ImagePaths, ParticleImages};
use cryomotion::io::mrc::read_map;
use cryomotion::ops::deformable_backprojection::{deformable_reconstruct, tile_motions, tiling};
use cryomotion::ops::reconstruct::{ReconstructOptions, write_outputs};

use super::progress::bar;
use super::trained_run;

/// Reconstruct half maps with every particle's learnt motion undone.
///
/// Tiles of near-rigid motion; each half set with its own half model, in the consensus map's
/// frame. Writes
/// OUT/backprojection/map_half1.mrc, map_half2.mrc (RELION 5's DynaMight outputs), map.mrc and
/// the FSC (STAR and PNG).
#[derive(clap::Args)]
#[command(after_help = "Example:
  cryomotion deformable-backprojection OUT --mask mask.mrc")]
pub struct Args {
    #[command(flatten)]
    run: trained_run::RunArgs,
    #[command(flatten)]
    relion: trained_run::RelionArgs,
    /// Mask for the masked, phase-randomisation-corrected FSC.
    #[arg(long, alias = "mask-file")]
    mask: Option<PathBuf>,
    /// Tiles of near-rigid motion.
    #[arg(long, default_value_t = 8)]
    n_tiles: usize,
    /// Accepted for RELION 5's command line; particles are inserted one by one.
    #[arg(long, default_value_t = 1)]
    batch_size: usize,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    args.relion.run(|| backproject(args))
}

fn backproject(args: &Args) -> anyhow::Result<ExitCode> {
    let (run, pool) = args.run.open()?;
    let paths = ImagePaths { project_dir: run.project_dir.clone(), ..Default::default() };
    let images = ParticleImages::open(&run.table, &paths)?;
    let n = images.shape()[0];
    let mask = args.mask.as_ref().map(read_map).transpose().with_context(|| "reading --mask")?;
    let options = ReconstructOptions { mask: mask.map(|m| m.volume), ..Default::default() };
    let pixel = run.table.optics_groups[0].pixel_size;
    let dir = args.run.output_directory.join("backprojection");
    let start = std::time::Instant::now();
    let result = pool.install(|| {
        let tiles = tiling(&run.model.reference.positions, args.n_tiles, n, pixel, 0);
        let progress = bar(run.model.len() as u64, "fitting tile motions");
        let motions = tile_motions(&run.model, &tiles, &|k| progress.inc(k as u64));
        progress.finish_and_clear();
        let progress = bar((run.table.len() * tiles.count) as u64, "inserting particles per tile");
        let result = deformable_reconstruct(
            &run.table,
            &images,
            run.model.particle_halves.clone(),
            &tiles,
            &motions,
            &options,
            &|k| progress.inc(k as u64),
        );
        progress.finish_and_clear();
        result
    })?;
    let seconds = start.elapsed().as_secs_f64();
    write_outputs(&result, &run.table, &dir)?;
    for h in ["1", "2"] {
        std::fs::rename(dir.join(format!("half{h}.mrc")), dir.join(format!("map_half{h}.mrc")))
            .with_context(|| format!("naming the half maps in {}", dir.display()))?;
    }
    println!(
        "{} particles ({} tiles), {:.1} ms per particle: resolution at FSC 0.143 = {:.2} Å; maps in {}",
        run.table.len(),
        args.n_tiles,
        1e3 * seconds / run.table.len() as f64,
        result.resolution,
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
