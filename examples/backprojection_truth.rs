//! Maps against the truth of a `cryomotion simulate --model M --anm-modes K` dataset: the
//! FSC of a deformable-backprojection map and of a plain reconstruction against the true
//! conformation that best matches the deformable map, inside a mask of the moving domains and
//! one of the rigid core (used by bench/backprojection.sh).
//!
//! usage: cargo run --release --example backprojection_truth -- DEFORMABLE.mrc PLAIN.mrc SIM MODEL.pdb K

use std::path::PathBuf;

use anyhow::{Context, bail};
use cryomotion::array::Volume;
use cryomotion::imaging::GaussianSet;
use cryomotion::io::atoms::read_atoms;
use cryomotion::io::mrc::read_map;
use cryomotion::ops::simulate::{AtomModes, Source, centroid};
use cryomotion::reconstruction::fsc;

fn mean_to(curve: &[f64], fraction: f64) -> f64 {
    let edge = ((curve.len() - 1) as f64 * fraction) as usize;
    curve[1..=edge].iter().sum::<f64>() / edge as f64
}

fn masked(v: &Volume, mask: &Volume) -> Volume {
    Volume { shape: v.shape, data: v.data.iter().zip(&mask.data).map(|(a, m)| a * m).collect() }
}

/// A soft mask around `atoms` (their density rendered at 6 Å, cut at 5% of its peak).
fn mask_of(atoms: &[cryomotion::io::atoms::Atom], centre: [f64; 3], n: usize, pixel: f64) -> Volume {
    let mut v = GaussianSet::from_atoms(atoms, centre, 6.0).render_volume(n, pixel);
    let peak = v.data.iter().copied().fold(0.0f32, f32::max).max(1e-12);
    v.data.iter_mut().for_each(|x| *x = (*x / (0.05 * peak)).clamp(0.0, 1.0));
    v
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        bail!("usage: backprojection_truth DEFORMABLE.mrc PLAIN.mrc SIM MODEL.pdb K");
    }
    let deformable = read_map(&args[0]).context("deformable map")?;
    let plain = read_map(&args[1]).context("plain map")?;
    let model = PathBuf::from(&args[3]);
    let modes: usize = args[4].parse().context("K")?;
    let (n, pixel) = (deformable.volume.shape[0], deformable.voxel_size[0] as f64);
    let atoms = read_atoms(&model)?.models.remove(0);
    let centre = centroid(&atoms);
    let motion = AtomModes::anm(&atoms, modes, 15.0, 1.0);
    // moving domains: atoms whose displacement along the modes is above the median
    let amount: Vec<f64> = (0..atoms.len())
        .map(|i| motion.displacements.iter().map(|d| d[i].iter().map(|v| v * v).sum::<f64>()).sum::<f64>())
        .collect();
    let mut sorted = amount.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let pick = |moving: bool| {
        atoms
            .iter()
            .zip(&amount)
            .filter(|(_, a)| (**a > median) == moving)
            .map(|(a, _)| a.clone())
            .collect::<Vec<_>>()
    };
    let moving_mask = mask_of(&pick(true), centre, n, pixel);
    let mut core_mask = mask_of(&pick(false), centre, n, pixel);
    core_mask.data.iter_mut().zip(&moving_mask.data).for_each(|(c, m)| *c *= 1.0 - m);
    let source =
        Source::Atoms { frames: vec![atoms], modes: Some(motion), resolution: 3.0 * pixel, box_size: n };
    // candidate true conformations: a grid over the modes' amplitudes
    let steps: Vec<f64> = if modes == 1 {
        (-6..=6).map(f64::from).collect()
    } else {
        (-2..=2).map(|k| 2.0 * k as f64).collect()
    };
    let mut grid: Vec<Vec<f64>> = vec![Vec::new()];
    for _ in 0..modes.min(2) {
        grid = grid.iter().flat_map(|c| steps.iter().map(move |&s| [c.clone(), vec![s]].concat())).collect();
    }
    let mut best: Option<(f64, Vec<f64>, Volume)> = None;
    for c in &grid {
        let mut full = c.clone();
        full.resize(modes, 0.0);
        let truth = source.gaussians_at(&full).expect("atoms").render_volume(n, pixel);
        let score = mean_to(&fsc(&deformable.volume, &truth), 0.8);
        if best.as_ref().is_none_or(|b| score > b.0) {
            best = Some((score, full, truth));
        }
    }
    let (_, conformation, truth) = best.expect("candidates");
    println!("reference: the true conformation {conformation:?} Å (best FSC with the deformable map)");
    for (name, mask) in [("moving domains", &moving_mask), ("rigid core", &core_mask)] {
        let t = masked(&truth, mask);
        let d = mean_to(&fsc(&masked(&deformable.volume, mask), &t), 0.8);
        let p = mean_to(&fsc(&masked(&plain.volume, mask), &t), 0.8);
        println!(
            "{name}: mean FSC to 0.8 Nyquist against the truth: deformable {d:.3}, plain {p:.3} ({:+.3})",
            d - p
        );
    }
    Ok(())
}
