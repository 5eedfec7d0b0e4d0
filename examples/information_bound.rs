//! The best any method could do on a `cryomotion simulate --model M --anm-modes K` dataset:
//! the Bayes-optimal estimate of each particle's mode amplitudes from its own noisy image, given
//! the exact structure, pose, CTF and noise level (used by bench/deformations.sh).
//!
//! usage: cargo run --release --example information_bound -- SIM MODEL.pdb K AMPLITUDE SEED [PARTICLES=400] [STEP=0.5]
//!
//! For the first PARTICLES particles of SIM (simulated with --seed SEED, --anm-amplitude
//! AMPLITUDE and otherwise default options), the posterior over the amplitudes on a grid of
//! STEP Å (uniform prior in ±AMPLITUDE, as drawn; white Gaussian noise of the simulated level,
//! measured from the residual at the true amplitudes) gives the posterior mean; printed: the
//! R² of the posterior mean against the true amplitudes, per mode: no estimator from the image
//! alone, learnt latents with a k-NN read-out included, can beat it on average.

use std::path::PathBuf;

use anyhow::{Context, bail};
use cryomotion::io::atoms::read_atoms;
use cryomotion::io::mrc::MrcReader;
use cryomotion::io::relion::read_particles_star;
use cryomotion::ops::simulate::{
    AtomModes, ParticleRenderer, SimulateOptions, Source, TruePose, draw_poses, optics_group,
};
use rayon::prelude::*;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        bail!("usage: information_bound SIM MODEL.pdb K AMPLITUDE SEED [PARTICLES=400] [STEP=0.5]");
    }
    let (sim, model) = (PathBuf::from(&args[0]), PathBuf::from(&args[1]));
    let modes: usize = args[2].parse().context("K: number of ANM modes")?;
    let amplitude: f64 = args[3].parse().context("AMPLITUDE")?;
    let seed: u64 = args[4].parse().context("SEED")?;
    let count: usize = args.get(5).map_or(Ok(400), |c| c.parse()).context("PARTICLES")?;
    let step: f64 = args.get(6).map_or(Ok(0.5), |c| c.parse()).context("STEP")?;

    let table = read_particles_star(sim.join("particles.star"))?;
    let pixel_size = table.optics_groups[0].pixel_size;
    let stack = MrcReader::open(sim.join("particles.mrcs"))?;
    let n = stack.header().dims[0];
    let atoms = read_atoms(&model)?.models.remove(0);
    let motion = AtomModes::anm(&atoms, modes, 15.0, amplitude);
    let source =
        Source::Atoms { frames: vec![atoms], modes: Some(motion), resolution: 3.0 * pixel_size, box_size: n };
    let options = SimulateOptions { count: table.len(), pixel_size, seed, ..Default::default() };
    let poses = draw_poses(&options, source.conformation_space());
    let truth = read_truth(&sim.join("truth.csv"), modes)?;
    for (k, (pose, t)) in poses.iter().zip(&truth).take(count).enumerate() {
        if pose.conformation.iter().zip(t).any(|(a, b)| (a - b).abs() > 1e-4) {
            bail!(
                "particle {}: amplitudes {:?} drawn, {:?} in truth.csv: wrong SEED or AMPLITUDE?",
                k + 1,
                pose.conformation,
                t
            );
        }
    }
    let renderer = ParticleRenderer::new(&source, optics_group(&options, n), true);
    let images: Vec<Vec<f32>> = (0..count.min(poses.len()))
        .map(|k| {
            let mut image = vec![0.0; n * n];
            stack.read_image(k, &mut image).map(|_| image)
        })
        .collect::<Result<_, _>>()?;

    // noise level from the residuals at the true amplitudes
    let render = |pose: &TruePose| {
        let mut r = cryomotion::imaging::ImageRenderer::new(n);
        let (mut ctf, mut centred, mut out) =
            (vec![0.0; (n / 2 + 1) * n], vec![0.0; n * n], vec![0.0; n * n]);
        renderer.render(&mut r, pose, &mut ctf, &mut centred, &mut out);
        out
    };
    let residual: f64 = images
        .par_iter()
        .zip(&poses)
        .map(|(y, pose)| render(pose).iter().zip(y).map(|(&s, &y)| ((y - s) as f64).powi(2)).sum::<f64>())
        .sum();
    let noise_variance = residual / (images.len() * n * n) as f64;

    let steps = (2.0 * amplitude / step).round() as usize + 1;
    let grid: Vec<Vec<f64>> = (0..steps.pow(modes as u32))
        .map(|g| (0..modes).map(|m| -amplitude + step * ((g / steps.pow(m as u32)) % steps) as f64).collect())
        .collect();
    let estimates: Vec<Vec<f64>> = images
        .par_iter()
        .zip(&poses)
        .map(|(y, pose)| {
            let log_likelihood: Vec<f64> = grid
                .iter()
                .map(|a| {
                    let p = TruePose { conformation: a.clone(), ..pose.clone() };
                    let s = render(&p);
                    -s.iter().zip(y).map(|(&s, &y)| ((y - s) as f64).powi(2)).sum::<f64>()
                        / (2.0 * noise_variance)
                })
                .collect();
            let top = log_likelihood.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let weights: Vec<f64> = log_likelihood.iter().map(|l| (l - top).exp()).collect();
            let total: f64 = weights.iter().sum();
            (0..modes)
                .map(|m| grid.iter().zip(&weights).map(|(a, w)| a[m] * w).sum::<f64>() / total)
                .collect()
        })
        .collect();
    println!(
        "{} particles, noise σ² {:.4} (signal variance / SNR), grid {} Å, {} points",
        images.len(),
        noise_variance,
        step,
        grid.len()
    );
    for m in 0..modes {
        let t: Vec<f64> = truth.iter().take(images.len()).map(|t| t[m]).collect();
        let mean = t.iter().sum::<f64>() / t.len() as f64;
        let total: f64 = t.iter().map(|v| (v - mean).powi(2)).sum();
        let error: f64 = estimates.iter().zip(&t).map(|(e, v)| (e[m] - v).powi(2)).sum();
        println!(
            "mode {}: Bayes-optimal R² {:.3} (RMS error {:.2} Å of {:.2} Å spread)",
            m + 1,
            1.0 - error / total,
            (error / t.len() as f64).sqrt(),
            (total / t.len() as f64).sqrt()
        );
    }
    Ok(())
}

fn read_truth(path: &std::path::Path, modes: usize) -> anyhow::Result<Vec<Vec<f64>>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().context("empty truth.csv")?.split(',').collect();
    // one coordinate is written as `conformation`, several as `mode_K_angstrom`
    let names: Vec<String> = if modes == 1 {
        vec!["conformation".into()]
    } else {
        (1..=modes).map(|m| format!("mode_{m}_angstrom")).collect()
    };
    let columns: Vec<usize> = names
        .iter()
        .map(|name| header.iter().position(|h| h == name).with_context(|| format!("no column {name}")))
        .collect::<anyhow::Result<_>>()?;
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            columns.iter().map(|&c| Ok(f[c].parse::<f64>()?)).collect()
        })
        .collect()
}
