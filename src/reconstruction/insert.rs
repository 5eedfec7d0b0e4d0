//! Fourier insertion: particle spectra summed into a padded 3D half grid with their CTF² weights.
//!
//! One accumulator holds Σ CTF·F and Σ CTF² for one reconstruction (a half set, a body, a tile);
//! accumulators of the same geometry add up ([`FourierAccumulator::add`]), so threads, half sets
//! and deformation-aware schemes each fill their own and combine them at the end.

use crate::fft::{Complex32, frequency_index, signed_frequency};
use crate::geometry::Mat3;

/// Σ CTF·F and Σ CTF² on a padded half grid of (pad·n)/2 + 1 × pad·n × pad·n.
#[derive(Clone)]
pub struct FourierAccumulator {
    n: usize,
    padding: usize,
    big: usize,
    /// Σ CTF·F.
    pub(crate) data: Vec<Complex32>,
    /// Σ CTF².
    pub(crate) weight: Vec<f32>,
    count: u64,
}

impl FourierAccumulator {
    /// An empty accumulator for n-pixel particles, padded by `padding` (2 as RELION).
    pub fn new(n: usize, padding: usize) -> Self {
        assert!(padding >= 1, "padding factor must be at least 1");
        let big = padding * n;
        let len = (big / 2 + 1) * big * big;
        FourierAccumulator {
            n,
            padding,
            big,
            data: vec![Complex32::default(); len],
            weight: vec![0.0; len],
            count: 0,
        }
    }

    /// Box size of the particles.
    pub fn box_size(&self) -> usize {
        self.n
    }

    /// Padding factor.
    pub fn padding(&self) -> usize {
        self.padding
    }

    /// Number of images inserted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Padded box size.
    pub(crate) fn padded_size(&self) -> usize {
        self.big
    }

    /// Inserts one particle: `spectrum` is its half plane (n/2 + 1 × n), already centred,
    /// un-shifted and multiplied by its CTF; `ctf2` its CTF² (`None`: no CTF, weight 1). `a` is
    /// RELION's rotation matrix of the particle's pose.
    ///
    /// # Panics
    /// If the half planes do not match the box size.
    pub fn insert(&mut self, a: &Mat3, spectrum: &[Complex32], ctf2: Option<&[f32]>) {
        let n = self.n;
        let hx = n / 2 + 1;
        assert_eq!(spectrum.len(), hx * n, "spectrum half-plane length");
        if let Some(w) = ctf2 {
            assert_eq!(w.len(), hx * n, "CTF² half-plane length");
        }
        let r_max2 = ((n / 2) * (n / 2)) as i64;
        let pad = self.padding as f64;
        for iy in 0..n {
            let ky = signed_frequency(iy, n);
            for kx in 0..hx {
                if (kx * kx) as i64 + ky * ky > r_max2 {
                    continue;
                }
                let i = iy * hx + kx;
                let w = ctf2.map_or(1.0, |c| c[i]);
                let (x, y) = (kx as f64 * pad, ky as f64 * pad);
                let mut p = [a[0][0] * x + a[1][0] * y, a[0][1] * x + a[1][1] * y, a[0][2] * x + a[1][2] * y];
                let mut value = spectrum[i];
                if p[0] < 0.0 {
                    p = p.map(|c| -c);
                    value = value.conj();
                }
                self.splat(p, value, w);
            }
        }
        self.count += 1;
    }

    /// Distributes a value and its weight over the 8 grid points around `p` (trilinear).
    #[inline]
    fn splat(&mut self, p: [f64; 3], value: Complex32, weight: f32) {
        let f = p.map(f64::floor);
        let (x0, y0, z0) = (f[0] as i64, f[1] as i64, f[2] as i64);
        let t = [(p[0] - f[0]) as f32, (p[1] - f[1]) as f32, (p[2] - f[2]) as f32];
        let (half, big, hx) = (self.big as i64 / 2, self.big, self.big / 2 + 1);
        for dz in 0..2 {
            let wz = if dz == 0 { 1.0 - t[2] } else { t[2] };
            let z = frequency_index(z0 + dz, big);
            for dy in 0..2 {
                let wy = if dy == 0 { 1.0 - t[1] } else { t[1] };
                let y = frequency_index(y0 + dy, big);
                for dx in 0..2 {
                    let x = x0 + dx;
                    if x > half {
                        continue; // beyond the half grid: only at the very edge of r_max
                    }
                    let w = wz * wy * if dx == 0 { 1.0 - t[0] } else { t[0] };
                    let i = (z * big + y) * hx + x as usize;
                    self.data[i] += value * w;
                    self.weight[i] += weight * w;
                }
            }
        }
    }

    /// Adds another accumulator of the same geometry (threads, half sets, bodies).
    ///
    /// # Panics
    /// If the geometries differ.
    pub fn add(&mut self, other: &FourierAccumulator) {
        assert_eq!((self.n, self.padding), (other.n, other.padding), "accumulator geometry");
        self.data.iter_mut().zip(&other.data).for_each(|(a, b)| *a += *b);
        self.weight.iter_mut().zip(&other.weight).for_each(|(a, b)| *a += *b);
        self.count += other.count;
    }

    /// Makes the kx = 0 plane Hermitian: (0, y, z) and (0, −y, −z) are the same frequency seen
    /// from both sides, so their sums are pooled.
    pub(crate) fn enforce_hermitian(&mut self) {
        let (big, hx) = (self.big, self.big / 2 + 1);
        for z in 0..big {
            for y in 0..big {
                let (mz, my) = ((big - z) % big, (big - y) % big);
                let (i, j) = ((z * big + y) * hx, (mz * big + my) * hx);
                if j < i {
                    continue;
                }
                if i == j {
                    self.data[i].im = 0.0;
                    continue;
                }
                let d = self.data[i] + self.data[j].conj();
                let w = self.weight[i] + self.weight[j];
                self.data[i] = d;
                self.data[j] = d.conj();
                self.weight[i] = w;
                self.weight[j] = w;
            }
        }
    }
}
