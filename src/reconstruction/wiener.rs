//! From accumulated Σ CTF·F and Σ CTF² to a map: optional Wiener regularisation with the signal
//! power estimated from an FSC (RELION's recipe), inverse FFT on the padded grid, window.
//!
//! The estimate at each grid point is Σ CTF·F / (Σ CTF² + mean_shell(Σ CTF²) / SSNR(shell)): the
//! samples' own trilinear weights normalise the interpolation, so no real-space gridding
//! correction is applied (RELION instead pre-weights iteratively and divides by sinc²).
//! Without an FSC, weights are floored at 1/1000 of their shell mean, as RELION's
//! `--skip_gridding` does, so empty voxels stay zero instead of blowing up. Outside the sphere of
//! radius n/2 the map is replaced by its background with a 3-voxel cosine edge, as RELION does.

use rayon::prelude::*;

use super::FourierAccumulator;
use super::insert::Cell;
use crate::array::Volume;
use crate::fft::{Complex32, Fft3, signed_frequency};

/// How to turn an FSC into a per-shell SSNR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FscKind {
    /// The FSC of two half maps, used for each half map: SSNR = FSC / (1 − FSC).
    HalfMaps,
    /// The FSC of two half maps, used for the map of all particles: FSC' = √(2·FSC / (1 + FSC)),
    /// SSNR = FSC' / (1 − FSC').
    WholeMap,
}

/// SSNR per shell from an FSC (clamped to [0.001, 0.999] as RELION does).
pub fn ssnr_from_fsc(fsc: &[f64], kind: FscKind) -> Vec<f64> {
    fsc.iter()
        .map(|&f| {
            let mut f = f.max(0.001);
            if kind == FscKind::WholeMap {
                f = (2.0 * f / (f + 1.0)).sqrt();
            }
            let f = f.min(0.999);
            f / (1.0 - f)
        })
        .collect()
}

impl FourierAccumulator {
    /// Mean weight (ΣCTF², or image count without CTF) per shell of the n-pixel box, over the
    /// padded grid points inside the sphere: how much data each resolution has.
    pub fn shell_weights(&self) -> Vec<f64> {
        self.mean_per_shell(|i| self.cells[i].weight)
    }

    /// Mean of `weight(i)` over the padded grid points i of each shell inside the sphere.
    fn mean_per_shell(&self, weight: impl Fn(usize) -> f32 + Sync) -> Vec<f64> {
        let shells = self.box_size() / 2 + 1;
        let shell_of = self.shell_table();
        let (sum, count) = (0..self.padded_size())
            .into_par_iter()
            .fold(
                || (vec![0.0f64; shells], vec![0u64; shells]),
                |(mut sum, mut count), z| {
                    self.for_each_in_sphere(z, &shell_of, |i, s| {
                        sum[s] += f64::from(weight(i));
                        count[s] += 1;
                    });
                    (sum, count)
                },
            )
            .reduce(
                || (vec![0.0; shells], vec![0; shells]),
                |(mut s, mut c), (s2, c2)| {
                    s.iter_mut().zip(s2).for_each(|(a, b)| *a += b);
                    c.iter_mut().zip(c2).for_each(|(a, b)| *a += b);
                    (s, c)
                },
            );
        sum.iter().zip(&count).map(|(m, &c)| m / c.max(1) as f64).collect()
    }

    /// Shell (of the n-pixel box) of each squared radius on the padded grid, up to the sphere
    /// of radius n/2.
    fn shell_table(&self) -> Vec<usize> {
        let (n, pad) = (self.box_size(), self.padding());
        let r_max = n / 2 * pad;
        (0..=r_max * r_max)
            .map(|r2| (((r2 as f64).sqrt() / pad as f64).round() as usize).min(n / 2))
            .collect()
    }

    /// Calls `f(i, shell)` for every grid point i of plane z inside the sphere of radius n/2.
    #[inline]
    fn for_each_in_sphere(&self, z: usize, shell_of: &[usize], mut f: impl FnMut(usize, usize)) {
        let big = self.padded_size();
        let hx = big / 2 + 1;
        let kz = signed_frequency(z, big);
        let r_max2 = shell_of.len() as i64 - 1;
        for y in 0..big {
            let ky = signed_frequency(y, big);
            let Some(room) = r_max2.checked_sub(ky * ky + kz * kz) else { continue };
            let row = (z * big + y) * hx;
            for x in 0..hx.min((room as f64).sqrt() as usize + 1) {
                let r2 = (x * x) as i64 + ky * ky + kz * kz;
                if r2 <= r_max2 {
                    f(row + x, shell_of[r2 as usize]);
                }
            }
        }
    }

    /// Grid point `i` with the kx = 0 plane made Hermitian: (0, y, z) and (0, −y, −z) are the
    /// same frequency seen from both sides, so their sums are pooled.
    #[inline]
    fn pooled(&self, i: usize) -> Cell {
        let big = self.padded_size();
        let hx = big / 2 + 1;
        if i % hx != 0 {
            return self.cells[i];
        }
        let (y, z) = ((i / hx) % big, i / (hx * big));
        let j = (((big - z) % big) * big + (big - y) % big) * hx;
        let (a, b) = (self.cells[i], self.cells[j]);
        if i == j {
            return Cell { data: Complex32::new(a.data.re, 0.0), weight: a.weight };
        }
        Cell { data: a.data + b.data.conj(), weight: a.weight + b.weight }
    }

    /// The map (box n, centre n/2) from what was inserted, regularised with `ssnr` per shell of
    /// the n-pixel box if given.
    pub fn reconstruct(&self, ssnr: Option<&[f64]>) -> Volume {
        let (n, big) = (self.box_size(), self.padded_size());
        let plane = self.cells.len() / big;
        let mean = self.mean_per_shell(|i| self.pooled(i).weight);
        let shell_of = self.shell_table();
        let mut spectrum = vec![Complex32::default(); self.cells.len()];
        spectrum.par_chunks_mut(plane).enumerate().for_each(|(z, slab)| {
            self.for_each_in_sphere(z, &shell_of, |i, s| {
                let cell = self.pooled(i);
                let w = f64::from(cell.weight);
                let denominator = match ssnr {
                    Some(ssnr) => w + mean[s] / ssnr.get(s).copied().unwrap_or(0.0).max(1e-12),
                    None => w.max(mean[s] / 1000.0),
                };
                if denominator > 0.0 {
                    slab[i - z * plane] = cell.data * (1.0 / denominator) as f32;
                }
            });
        });
        let mut padded = vec![0.0f32; big * big * big];
        Fft3::new([big; 3]).inverse_parallel(&mut spectrum, &mut padded);
        drop(spectrum);
        // the padded map has its origin at voxel 0: the centred n³ window starts at −n/2
        let from = |c: usize| (c + big - n / 2) % big;
        let mut out = Volume::zeros([n; 3]);
        out.data.par_chunks_mut(n * n).enumerate().for_each(|(z, slab)| {
            for (y, row) in slab.chunks_exact_mut(n).enumerate() {
                let src = (from(z) * big + from(y)) * big;
                row.iter_mut().enumerate().for_each(|(x, v)| *v = padded[src + from(x)]);
            }
        });
        // as RELION: what lies outside the sphere of radius n/2 is only noise and aliasing
        super::soften_outside_sphere(&mut out, 3.0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssnr_follows_relion_formulas() {
        let s = ssnr_from_fsc(&[0.5, 0.0, 1.0], FscKind::HalfMaps);
        assert!((s[0] - 1.0).abs() < 1e-12);
        assert!((s[1] - 0.001 / 0.999).abs() < 1e-12);
        assert!((s[2] - 999.0).abs() < 1e-6);
        let w = ssnr_from_fsc(&[0.5], FscKind::WholeMap);
        let f = (2.0f64 * 0.5 / 1.5).sqrt();
        assert!((w[0] - f / (1.0 - f)).abs() < 1e-12);
    }
}
