//! Fourier filters of maps.

use crate::array::Volume;
use crate::fft::{Complex32, Fft3, origin_to_centre, signed_frequency};

use super::{shell_indices, volume_spectrum};

/// Low-pass filters a cubic map: frequencies up to `cutoff` (in shells of the n-pixel box) are
/// kept, then a raised-cosine fall-off over `width` shells, zero beyond.
pub fn low_pass(volume: &Volume, cutoff: f64, width: f64) -> Volume {
    let n = volume.shape[0];
    let hx = n / 2 + 1;
    let mut spectrum = volume_spectrum(volume);
    for (i, v) in spectrum.iter_mut().enumerate() {
        let (kx, ky, kz) = (i % hx, signed_frequency((i / hx) % n, n), signed_frequency(i / (hx * n), n));
        let r = ((kx * kx) as f64 + (ky * ky) as f64 + (kz * kz) as f64).sqrt();
        let gain = if r <= cutoff {
            1.0
        } else if r >= cutoff + width || width <= 0.0 {
            0.0
        } else {
            0.5 + 0.5 * (std::f64::consts::PI * (r - cutoff) / width).cos()
        };
        *v *= gain as f32;
    }
    volume_from_spectrum(spectrum, volume.shape)
}

/// The map (centre at n/2) back from its spectrum in the layout of [`volume_spectrum`].
pub fn volume_from_spectrum(mut spectrum: Vec<Complex32>, shape: [usize; 3]) -> Volume {
    let mut fft = Fft3::new(shape);
    let mut rolled = vec![0.0f32; shape.iter().product()];
    fft.inverse(&mut spectrum, &mut rolled);
    let mut out = vec![0.0f32; rolled.len()];
    origin_to_centre(&rolled, &mut out, shape);
    Volume::from_vec(shape, out)
}

/// The map multiplied in Fourier space by `gain` of each shell (rounded radius, capped at n/2).
pub fn shell_filter(volume: &Volume, gain: impl Fn(usize) -> f64) -> Volume {
    let n = volume.shape[0];
    let mut spectrum = volume_spectrum(volume);
    for (v, s) in spectrum.iter_mut().zip(shell_indices(n)) {
        *v *= gain((s as usize).min(n / 2)) as f32;
    }
    volume_from_spectrum(spectrum, volume.shape)
}

/// Low-pass filters to a resolution in Å (soft edge of 2 shells), for a map of `pixel_size` Å.
pub fn low_pass_angstrom(volume: &Volume, pixel_size: f64, resolution: f64) -> Volume {
    let n = volume.shape[0] as f64;
    low_pass(volume, n * pixel_size / resolution, 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconstruction::fsc;
    use crate::rng::Rng;

    #[test]
    fn passes_low_shells_and_removes_high_ones() {
        let n = 24;
        let mut rng = Rng::new(4);
        let v = Volume::from_vec([n; 3], (0..n * n * n).map(|_| rng.normal() as f32).collect());
        let f = low_pass(&v, 5.0, 2.0);
        let curve = fsc(&v, &f);
        // shells are rounded radii: shell 4 ends at 4.5, inside the cutoff of 5
        assert!(curve[1..=4].iter().all(|&c| c > 0.999), "{curve:?}");
        // beyond the edge nothing is left: the shell power of the filtered map is zero
        let spectrum = volume_spectrum(&f);
        let shells = crate::reconstruction::shell_indices(n);
        let high: f64 =
            spectrum.iter().zip(&shells).filter(|(_, s)| **s >= 8).map(|(c, _)| c.norm_sqr() as f64).sum();
        assert!(high < 1e-6, "{high}");
    }
}
