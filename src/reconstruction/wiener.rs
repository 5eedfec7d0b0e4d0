//! From accumulated Σ CTF·F and Σ CTF² to a map: optional Wiener regularisation with the signal
//! power estimated from an FSC (RELION's recipe), inverse FFT on the padded grid, window.
//!
//! The estimate at each grid point is Σ CTF·F / (Σ CTF² + mean_shell(Σ CTF²) / SSNR(shell)): the
//! samples' own trilinear weights normalise the interpolation, so no real-space gridding
//! correction is applied (RELION instead pre-weights iteratively and divides by sinc²).
//! Without an FSC, weights are floored at 1/1000 of their shell mean, as RELION's
//! `--skip_gridding` does, so empty voxels stay zero instead of blowing up. Outside the sphere of
//! radius n/2 the map is replaced by its background with a 3-voxel cosine edge, as RELION does.

use super::FourierAccumulator;
use crate::array::Volume;
use crate::fft::{Complex32, Fft3, origin_to_centre, signed_frequency};

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
        let (n, pad, big) = (self.box_size(), self.padding(), self.padded_size());
        let hx = big / 2 + 1;
        let r_max = (n / 2) as f64 * pad as f64;
        let shells = n / 2 + 1;
        let mut mean = vec![0.0f64; shells];
        let mut count = vec![0u64; shells];
        for (i, w) in self.weight.iter().enumerate() {
            let (x, y, z) = (i % hx, (i / hx) % big, i / (hx * big));
            let (ky, kz) = (signed_frequency(y, big) as f64, signed_frequency(z, big) as f64);
            let r = ((x * x) as f64 + ky * ky + kz * kz).sqrt();
            if r <= r_max {
                let s = ((r / pad as f64).round() as usize).min(shells - 1);
                mean[s] += *w as f64;
                count[s] += 1;
            }
        }
        mean.iter().zip(&count).map(|(m, &c)| m / c.max(1) as f64).collect()
    }

    /// The map (box n, centre n/2) from what was inserted, regularised with `ssnr` per shell of
    /// the n-pixel box if given.
    pub fn reconstruct(&self, ssnr: Option<&[f64]>) -> Volume {
        let mut acc = self.clone();
        acc.enforce_hermitian();
        let (n, pad, big) = (acc.box_size(), acc.padding(), acc.padded_size());
        let hx = big / 2 + 1;
        let r_max = (n / 2) as f64 * pad as f64;
        let shells = n / 2 + 1;
        // shell of each padded grid point, in units of the n-pixel box
        let shell_of = |i: usize| -> Option<usize> {
            let (x, y, z) = (i % hx, (i / hx) % big, i / (hx * big));
            let (ky, kz) = (signed_frequency(y, big) as f64, signed_frequency(z, big) as f64);
            let r = ((x * x) as f64 + ky * ky + kz * kz).sqrt();
            (r <= r_max).then(|| ((r / pad as f64).round() as usize).min(shells - 1))
        };
        let mean = acc.shell_weights();
        let mut spectrum = vec![Complex32::default(); acc.data.len()];
        for (i, out) in spectrum.iter_mut().enumerate() {
            let Some(s) = shell_of(i) else { continue };
            let w = acc.weight[i] as f64;
            let denominator = match ssnr {
                Some(ssnr) => w + mean[s] / ssnr.get(s).copied().unwrap_or(0.0).max(1e-12),
                None => w.max(mean[s] / 1000.0),
            };
            if denominator > 0.0 {
                *out = acc.data[i] * (1.0 / denominator) as f32;
            }
        }
        drop(acc);
        let mut fft = Fft3::new([big; 3]);
        let mut padded = vec![0.0f32; big * big * big];
        fft.inverse(&mut spectrum, &mut padded);
        let mut centred = vec![0.0f32; padded.len()];
        origin_to_centre(&padded, &mut centred, [big; 3]);
        let offset = big / 2 - n / 2;
        let mut out = Volume::zeros([n; 3]);
        for z in 0..n {
            for y in 0..n {
                let src = ((z + offset) * big + y + offset) * big + offset;
                let dst = (z * n + y) * n;
                out.data[dst..dst + n].copy_from_slice(&centred[src..src + n]);
            }
        }
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
