//! Render + whitened loss, forward and backward, per batch of 128 particles, at box 64/128/256
//! and 400 … 30 000 Gaussians. Run: `cargo bench --bench render` (particles/s and the share of
//! each stage); `bench/render.sh` puts DynaMight's image formation in PyTorch beside it.

use std::time::Instant;

use cryomotion::fft::Complex32;
use cryomotion::geometry::euler_to_matrix;
use cryomotion::imaging::splat::{View, project_batch, project_batch_backward};
use cryomotion::imaging::{FourierLoss, LossScratch, flat_weights, image_spectrum};
use cryomotion::rng::Rng;
use rayon::prelude::*;

fn main() {
    println!("threads: {}", rayon::current_num_threads());
    let batch = 128;
    let mut rng = Rng::new(1);
    println!("render + loss, forward + backward, batch {batch}:");
    println!("  box  Gaussians   per batch   particles/s   splat  loss+FFT  splat-backward");
    for n in [64usize, 128, 256] {
        let pixel = 256.0 / n as f64; // a 256 Å box
        let hx = n / 2 + 1;
        let views: Vec<View> = (0..batch)
            .map(|_| {
                let [r, t, p] = rng.uniform_euler();
                View::new(&euler_to_matrix(r, t, p), [rng.normal() * 3.0, rng.normal() * 3.0], pixel)
            })
            .collect();
        let data: Vec<Complex32> = {
            let mut scratch = LossScratch::new(n);
            let mut out = vec![Complex32::default(); batch * hx * n];
            for spectrum in out.chunks_exact_mut(hx * n) {
                let image: Vec<f32> = (0..n * n).map(|_| rng.normal() as f32).collect();
                image_spectrum(&image, &mut scratch, spectrum);
            }
            out
        };
        let ctf: Vec<f32> = (0..hx * n).map(|i| ((i % 97) as f32 * 0.1).sin()).collect();
        let loss = FourierLoss::new(n, flat_weights(n, n as f64 / 2.0));
        for ng in [400usize, 2000, 10_000, 30_000] {
            // a molecule filling ~60% of the box; σ 2.5 Å
            let positions: Vec<f32> = (0..batch * ng * 3).map(|_| rng.range(-75.0, 75.0) as f32).collect();
            let amplitudes = vec![1.0f32; ng];
            let widths = vec![2.5f32; ng];
            let mut images = vec![0.0f32; batch * n * n];
            let mut grads = vec![0.0f32; batch * n * n];
            let (mut dp, mut da, mut dw) =
                (vec![0.0f32; positions.len()], vec![0.0f32; ng], vec![0.0f32; ng]);
            let reps = if ng * n <= 2000 * 128 { 5 } else { 2 };
            let mut best = [f64::INFINITY; 3];
            for _ in 0..reps {
                let t = Instant::now();
                project_batch(&positions, &amplitudes, &widths, &views, n, &mut images);
                let t1 = t.elapsed().as_secs_f64();
                let _total: f64 = images
                    .par_chunks(n * n)
                    .zip(grads.par_chunks_mut(n * n))
                    .zip(data.par_chunks(hx * n))
                    .map_init(
                        || LossScratch::new(n),
                        |scratch, ((image, grad), spectrum)| {
                            loss.evaluate(image, spectrum, Some(&ctf), scratch, Some(grad), None)
                        },
                    )
                    .sum();
                let t2 = t.elapsed().as_secs_f64();
                project_batch_backward(
                    &positions,
                    &amplitudes,
                    &widths,
                    &views,
                    n,
                    &grads,
                    &mut dp,
                    &mut da,
                    &mut dw,
                );
                let t3 = t.elapsed().as_secs_f64();
                if t3 < best.iter().sum() {
                    best = [t1, t2 - t1, t3 - t2];
                }
            }
            let total: f64 = best.iter().sum();
            println!(
                "  {n:3}  {ng:9}   {total:7.3} s   {:11.0}   {:4.0}%  {:7.0}%  {:13.0}%",
                batch as f64 / total,
                100.0 * best[0] / total,
                100.0 * best[1] / total,
                100.0 * best[2] / total
            );
        }
    }
}
