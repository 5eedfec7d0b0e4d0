//! `cryomotion optimize-inverse-deformations`: what deformable backprojection needs from the
//! forward model (each particle's rigid transform per tile), with how far the motion is from
//! rigid in each tile.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;

use cryomotion::ops::deformable_backprojection::{tile_motions, tiling};

use super::progress::bar;
use super::trained_run;

/// Fit each particle's rigid motion per tile of the consensus (what backprojection needs).
///
/// DynaMight trains a second network for the inverse deformation; cryomotion derives what its
/// backprojection needs from the forward model: the least-squares rigid transform of each tile
/// of the consensus for each particle. Writes OUT/inverse_deformations/tile_residuals.csv (per
/// tile: how far the learnt motion is from rigid), the motions for deformable-backprojection
/// (tile_motions.npy, with the key that says which run they belong to) and, with
/// --save-deformations, every particle's transforms as text.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    run: trained_run::RunArgs,
    #[command(flatten)]
    relion: trained_run::RelionArgs,
    /// Tiles of near-rigid motion.
    #[arg(long, default_value_t = 8)]
    n_tiles: usize,
    /// Accepted for RELION 5's command line: nothing is trained here.
    #[arg(long)]
    n_epochs: Option<usize>,
    /// Write each particle's tile transforms (tile_transforms.csv).
    #[arg(long)]
    save_deformations: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    args.relion.run(|| inverse(args))
}

fn inverse(args: &Args) -> anyhow::Result<ExitCode> {
    if args.n_epochs.is_some() {
        eprintln!("note: --n-epochs: nothing to train; the inverse comes from the forward model");
    }
    let (run, pool) = args.run.open()?;
    let n = run.map.volume.shape[0];
    let pixel = run.map.voxel_size[0] as f64;
    let start = std::time::Instant::now();
    let (tiles, motions) = pool.install(|| {
        let tiles = tiling(&run.model.reference.positions, args.n_tiles, n, pixel, 0);
        let progress = bar(run.model.len() as u64, "fitting tile motions");
        let motions = tile_motions(&run.model, &tiles, &|k| progress.inc(k as u64));
        progress.finish_and_clear();
        (tiles, motions)
    });
    let seconds = start.elapsed().as_secs_f64();
    let dir = args.run.output_directory.join("inverse_deformations");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut csv = String::from("tile,gaussians,median_residual_A,p90_residual_A,median_translation_A\n");
    for k in 0..tiles.count {
        let mut r: Vec<f32> = motions.residuals.iter().map(|p| p[k]).collect();
        r.sort_by(f32::total_cmp);
        let mut t: Vec<f64> = motions
            .transforms
            .iter()
            .map(|p| p[k].translation.iter().map(|v| v * v).sum::<f64>().sqrt())
            .collect();
        t.sort_by(f64::total_cmp);
        let at = |q: f64| r[((r.len() - 1) as f64 * q) as usize];
        let _ = writeln!(
            csv,
            "{},{},{:.4},{:.4},{:.4}",
            k + 1,
            tiles.labels.iter().filter(|&&l| l == k).count(),
            at(0.5),
            at(0.9),
            t[t.len() / 2]
        );
    }
    std::fs::write(dir.join("tile_residuals.csv"), &csv)
        .with_context(|| format!("writing {}", dir.display()))?;
    // the cache deformable-backprojection reads: the motions, and what they depend on
    let (cache, key) = args.run.tile_cache();
    motions.write(&cache)?;
    std::fs::write(&key, args.run.tile_cache_key(run.model.len(), tiles.count, n)?)
        .with_context(|| format!("writing {}", key.display()))?;
    if args.save_deformations {
        let mut csv =
            String::from("particle,tile,r11,r12,r13,r21,r22,r23,r31,r32,r33,tx_A,ty_A,tz_A,residual_A\n");
        for (p, (fits, residuals)) in motions.transforms.iter().zip(&motions.residuals).enumerate() {
            for (k, (f, r)) in fits.iter().zip(residuals).enumerate() {
                let m: Vec<String> = f.rotation.iter().flatten().map(|v| format!("{v:.6}")).collect();
                let t = f.translation;
                let _ = writeln!(
                    csv,
                    "{},{},{},{:.4},{:.4},{:.4},{r:.4}",
                    p + 1,
                    k + 1,
                    m.join(","),
                    t[0],
                    t[1],
                    t[2]
                );
            }
        }
        std::fs::write(dir.join("tile_transforms.csv"), &csv)
            .with_context(|| format!("writing {}", dir.display()))?;
    }
    print!("{csv}");
    println!(
        "{} particles, {} tiles: {:.3} ms per particle; rigid-fit residuals per tile above (Å), in {}",
        run.model.len(),
        tiles.count,
        1e3 * seconds / run.model.len() as f64,
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
