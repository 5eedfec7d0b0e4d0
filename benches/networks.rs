//! Decoder and encoder forward + backward on one batch, at DynaMight's sizes.
//! Run: `cargo bench --bench networks` (prints particles/s, GFLOP/s and peak memory).

use std::time::Instant;

use cryomotion::nn::{Decoder, DecoderConfig, Encoder, EncoderConfig};
use cryomotion::rng::Rng;

/// Peak resident memory of this process in MB (Linux).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let threads = rayon::current_num_threads();
    println!("threads: {threads}");
    let batch = 128;
    let mut rng = Rng::new(1);
    let config = DecoderConfig::default();
    let mut decoder = Decoder::new(config, || rng.normal() as f32);
    decoder.last.weight = (0..9).map(|_| rng.normal() as f32 * 0.1).collect();
    println!("decoder (DynaMight: PE 10, width 32, 8 hidden layers, latent 6), batch {batch}:");
    println!("  Gaussians   forward+backward   particles/s   GFLOP/s   peak RSS");
    for ng in [400usize, 2000, 10_000, 30_000] {
        let positions: Vec<f32> = (0..ng * 3).map(|_| rng.range(-0.4, 0.4) as f32).collect();
        let z: Vec<f32> = (0..batch * 6).map(|_| rng.normal() as f32).collect();
        let d_out: Vec<f32> = (0..batch * ng * 3).map(|_| rng.normal() as f32).collect();
        let mut out = vec![0.0; batch * ng * 3];
        let mut dz = vec![0.0; z.len()];
        let mut dpos = vec![0.0; positions.len()];
        // warm-up
        decoder.forward(&positions, &z, None, &mut out);
        // best of several runs: robust to a noisy machine
        let reps = if ng <= 2000 { 7 } else { 3 };
        let s = (0..reps)
            .map(|_| {
                let t = Instant::now();
                decoder.forward(&positions, &z, None, &mut out);
                let _ = decoder.backward(&positions, &z, None, &d_out, &mut dz, Some(&mut dpos));
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        // forward, recomputed forward, two backward GEMMs per layer: 4 × the forward MACs
        let flops = 2.0 * 4.0 * (decoder.macs_per_gaussian() * ng * batch) as f64;
        println!(
            "  {ng:9}   {:14.3} s   {:11.0}   {:7.1}   {:6.0} MB",
            s,
            batch as f64 / s,
            flops / s / 1e9,
            peak_rss_mb()
        );
    }
    for box_size in [64usize, 128] {
        let config = EncoderConfig { box_size, ..Default::default() };
        let encoder = Encoder::new(config, || rng.normal() as f32);
        let images: Vec<f32> = (0..batch * box_size * box_size).map(|_| rng.normal() as f32).collect();
        let (mut m, mut lv) = (vec![0.0; batch * 6], vec![0.0; batch * 6]);
        let dm: Vec<f32> = (0..batch * 6).map(|_| rng.normal() as f32).collect();
        let _ = encoder.forward(&images, batch, &mut m, &mut lv);
        let s = (0..9)
            .map(|_| {
                let t = Instant::now();
                let cache = encoder.forward(&images, batch, &mut m, &mut lv);
                let _ = encoder.backward(&cache, &dm, &dm);
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        let inputs = (box_size / 2).pow(2);
        let macs = (inputs * 256 + 256 * 128 + 2 * 128 * 6) * batch;
        let flops = 2.0 * 3.0 * macs as f64; // forward + two backward GEMMs
        println!(
            "encoder box {box_size}: forward+backward {:.4} s per batch of {batch}, {:.0} particles/s, {:.1} GFLOP/s",
            s,
            batch as f64 / s,
            flops / s / 1e9
        );
    }
}
