//! Fourier insertion and reconstruction from a padded accumulator, at box 64/128/256: ms per
//! particle inserted (one thread, one accumulator, random poses, with CTF²) and ms per map.
//! Run: `cargo bench --bench insert`. These two set the cost of `reconstruct` and of
//! deformable-backprojection's tiles (one insertion per particle and tile).

use std::time::Instant;

use cryomotion::fft::Complex32;
use cryomotion::geometry::euler_to_matrix;
use cryomotion::reconstruction::{FourierAccumulator, insertion_order};
use cryomotion::rng::Rng;

fn main() {
    let mut rng = Rng::new(1);
    println!("threads for reconstruct: {}", rayon::current_num_threads());
    println!("  box   insert ms/particle: as given   by view   ns/pixel (by view)   reconstruct ms");
    for n in [64usize, 128, 256] {
        let hx = n / 2 + 1;
        let spectrum: Vec<Complex32> =
            (0..hx * n).map(|_| Complex32::new(rng.normal() as f32, rng.normal() as f32)).collect();
        let ctf2: Vec<f32> = (0..hx * n).map(|i| ((i % 97) as f32 * 0.1).sin().powi(2)).collect();
        // as many views as a small data set has: their density sets how much the cache helps
        let count = if n <= 128 { 10_000 } else { 2_000 };
        let poses: Vec<_> = (0..count)
            .map(|_| {
                let [r, t, p] = rng.uniform_euler();
                euler_to_matrix(r, t, p)
            })
            .collect();
        let mut accumulator = FourierAccumulator::new(n, 2);
        // first touches of the grid's pages are not what a long reconstruction pays for
        for a in &poses {
            accumulator.insert(a, &spectrum, Some(&ctf2));
        }
        let mut time = |order: &[usize]| {
            let start = Instant::now();
            for &i in order {
                accumulator.insert(&poses[i], &spectrum, Some(&ctf2));
            }
            start.elapsed().as_secs_f64() / count as f64
        };
        let table_order = time(&(0..count).collect::<Vec<_>>());
        let insert = time(&insertion_order(&poses));
        let pixels = std::f64::consts::PI * (n as f64 / 2.0).powi(2) / 2.0;
        let start = Instant::now();
        let map = accumulator.reconstruct(None);
        let reconstruct = start.elapsed().as_secs_f64();
        assert!(map.data.iter().all(|v| v.is_finite()));
        println!(
            "  {n:>3}   {:>11.3}   {:>18.3}   {:>8.1}   {:>14.0}",
            table_order * 1e3,
            insert * 1e3,
            insert * 1e9 / pixels,
            reconstruct * 1e3
        );
    }
}
