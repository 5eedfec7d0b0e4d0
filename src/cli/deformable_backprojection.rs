//! `cryomotion deformable-backprojection`: half maps in the consensus frame with each
//! particle's motion undone, tile by tile.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use cryomotion::io::images::{ImagePaths, ParticleImages};
use cryomotion::io::mrc::read_map;
use cryomotion::ops::deformable_backprojection::{
    TileMotions, accumulator_paddings, deformable_reconstruct, group_reconstruct, latent_groups, passes,
    tile_motions, tiling,
};
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
    /// How the motion is undone: `tiles` of near-rigid motion, each particle inserted once per
    /// tile; or `groups` of particles by latent, each group's map pulled back to the consensus.
    #[arg(long, value_enum, default_value_t = Method::Tiles)]
    method: Method,
    /// Tiles of near-rigid motion (--method tiles).
    #[arg(long, default_value_t = 8)]
    n_tiles: usize,
    /// Tiles whose learnt motion is below this many pixels (RMS over the tile and the
    /// particles) are reconstructed without it (--method tiles).
    #[arg(long, default_value_t = 0.25)]
    min_tile_motion: f64,
    /// Padding factor of the moving tiles' Fourier grids (--method tiles). 1, unpadded, was as
    /// accurate inside the molecule on the benchmark and 2.3 times faster at box 128; 2 is
    /// RELION's. Still tiles and latent groups use 2.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=3))]
    pad: u8,
    /// Particles per latent group of a half set (--method groups).
    #[arg(long, default_value_t = 500)]
    particles_per_group: usize,
    /// Voxels between evaluations of the deformation field when a group's map is pulled back
    /// (--method groups; DynaMight's option of the same name).
    #[arg(long, default_value_t = 2)]
    downsample: usize,
    /// Accepted for RELION 5's command line; particles are inserted one by one.
    #[arg(long, default_value_t = 1)]
    batch_size: usize,
    /// Memory for the tiles' Fourier accumulators, GB: tiles that do not fit are filled in
    /// further passes over the particles.
    #[arg(long, default_value_t = 8.0)]
    max_memory: f64,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Method {
    Tiles,
    Groups,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    args.relion.run(|| backproject(args))
}

/// The tile motions optimize-inverse-deformations cached for this very run, if any.
fn cached_motions(args: &Args, particles: usize, tiles: usize, n: usize) -> Option<TileMotions> {
    let (cache, key) = args.run.tile_cache();
    let stored = std::fs::read_to_string(&key).ok()?;
    if args.run.tile_cache_key(particles, tiles, n).ok()? != stored {
        println!("{}: made for another run or checkpoint; fitting the tile motions afresh", key.display());
        return None;
    }
    match TileMotions::read(&cache, particles, tiles) {
        Ok(motions) => {
            println!("tile motions from {} (optimize-inverse-deformations)", cache.display());
            Some(motions)
        }
        Err(e) => {
            println!("{e}; fitting the tile motions afresh");
            None
        }
    }
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
    let max_memory = (args.max_memory * 1e9) as u64;
    let model = &run.model;
    let result = pool.install(|| match args.method {
        Method::Tiles => {
            let tiles = tiling(&model.reference.positions, args.n_tiles, n, pixel, 0);
            let mut motions = match cached_motions(args, model.len(), tiles.count, n) {
                Some(motions) => motions,
                None => {
                    let progress = bar(model.len() as u64, "fitting tile motions");
                    let motions = tile_motions(model, &tiles, &|k| progress.inc(k as u64));
                    progress.finish_and_clear();
                    motions
                }
            };
            let frozen =
                motions.freeze_below(&tiles, &model.reference.positions, args.min_tile_motion * pixel);
            if !frozen.is_empty() {
                let names: Vec<String> = frozen.iter().map(|k| (k + 1).to_string()).collect();
                println!(
                    "tiles {} move less than {} px: reconstructed without their motion",
                    names.join(", "),
                    args.min_tile_motion
                );
            }
            let paddings = accumulator_paddings(&tiles, &motions, &options, args.pad as usize);
            let sweeps = passes(&paddings, n, max_memory);
            let progress = bar((run.table.len() * sweeps) as u64, "inserting particles into the tiles");
            let result = deformable_reconstruct(
                &run.table,
                &images,
                model.particle_halves.clone(),
                &tiles,
                &motions,
                args.pad as usize,
                &options,
                max_memory,
                &|k| progress.inc(k as u64),
            );
            progress.finish_and_clear();
            result
        }
        Method::Groups => {
            let groups = latent_groups(model, args.particles_per_group, 0);
            let sweeps = passes(&vec![options.padding; groups.len()], n, max_memory);
            let progress = bar((run.table.len() * sweeps) as u64, "inserting particles into their groups");
            let result = group_reconstruct(
                &run.table,
                &images,
                model,
                &groups,
                &options,
                args.downsample,
                max_memory,
                &|k| progress.inc(k as u64),
            );
            progress.finish_and_clear();
            result
        }
    })?;
    let seconds = start.elapsed().as_secs_f64();
    write_outputs(&result, &run.table, &dir)?;
    for h in ["1", "2"] {
        std::fs::rename(dir.join(format!("half{h}.mrc")), dir.join(format!("map_half{h}.mrc")))
            .with_context(|| format!("naming the half maps in {}", dir.display()))?;
    }
    println!(
        "{} particles ({}), {:.1} ms per particle: resolution at FSC 0.143 = {:.2} Å; maps in {}",
        run.table.len(),
        match args.method {
            Method::Tiles => format!("{} tiles", args.n_tiles),
            Method::Groups => format!("groups of {} particles by latent", args.particles_per_group),
        },
        1e3 * seconds / run.table.len() as f64,
        result.resolution,
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
