//! Fourier shell correlation between two maps, and the resolution where it crosses a threshold.

use crate::array::Volume;
use crate::fft::{Complex32, Fft3, centre_to_origin, signed_frequency};

/// The spectrum of a map with its centre moved to the origin (half grid, see [`crate::fft`]).
pub fn volume_spectrum(volume: &Volume) -> Vec<Complex32> {
    let mut rolled = vec![0.0f32; volume.data.len()];
    centre_to_origin(&volume.data, &mut rolled, volume.shape);
    let mut fft = Fft3::new(volume.shape);
    let mut spectrum = vec![Complex32::default(); fft.spectrum_len()];
    fft.forward(&mut rolled, &mut spectrum);
    spectrum
}

/// Shell index (rounded radius in Fourier pixels) of each half-grid element of an n³ box.
pub fn shell_indices(n: usize) -> Vec<u32> {
    let hx = n / 2 + 1;
    let mut out = Vec::with_capacity(hx * n * n);
    for iz in 0..n {
        let kz = signed_frequency(iz, n) as f64;
        for iy in 0..n {
            let ky = signed_frequency(iy, n) as f64;
            for kx in 0..hx {
                out.push((kx as f64 * kx as f64 + ky * ky + kz * kz).sqrt().round() as u32);
            }
        }
    }
    out
}

/// FSC per shell 0..=n/2 between two cubic maps of the same box.
///
/// Half-grid elements with kx > 0 stand for two Friedel mates; both are counted.
///
/// # Panics
/// If the maps differ in shape or are not cubic.
pub fn fsc(a: &Volume, b: &Volume) -> Vec<f64> {
    assert_eq!(a.shape, b.shape, "FSC needs maps of the same box");
    let n = a.shape[0];
    assert!(a.shape.iter().all(|&s| s == n), "FSC needs cubic maps");
    fsc_of_spectra(&volume_spectrum(a), &volume_spectrum(b), n)
}

/// FSC per shell from two half-grid spectra of an n³ box.
pub fn fsc_of_spectra(fa: &[Complex32], fb: &[Complex32], n: usize) -> Vec<f64> {
    let shells = n / 2 + 1;
    let hx = n / 2 + 1;
    let (mut num, mut da, mut db) = (vec![0.0f64; shells], vec![0.0f64; shells], vec![0.0f64; shells]);
    for (i, (shell, (x, y))) in shell_indices(n).into_iter().zip(fa.iter().zip(fb)).enumerate() {
        let s = shell as usize;
        if s >= shells {
            continue;
        }
        let kx = i % hx;
        let mates = if kx == 0 || (n % 2 == 0 && kx == n / 2) { 1.0 } else { 2.0 };
        num[s] += mates * (x.re as f64 * y.re as f64 + x.im as f64 * y.im as f64);
        da[s] += mates * x.norm_sqr() as f64;
        db[s] += mates * y.norm_sqr() as f64;
    }
    (0..shells)
        .map(|s| if da[s] > 0.0 && db[s] > 0.0 { num[s] / (da[s] * db[s]).sqrt() } else { 0.0 })
        .collect()
}

/// The resolution in Å where the FSC first falls below `threshold` (linear interpolation between
/// shells), for a box of n pixels of `pixel_size` Å; Nyquist if it never does.
pub fn resolution_at(fsc: &[f64], threshold: f64, n: usize, pixel_size: f64) -> f64 {
    let res = |shell: f64| n as f64 * pixel_size / shell;
    for s in 1..fsc.len() {
        if fsc[s] < threshold {
            let (f0, f1) = (fsc[s - 1], fsc[s]);
            let t = if f0 > f1 { (f0 - threshold) / (f0 - f1) } else { 0.0 };
            return res((s - 1) as f64 + t.clamp(0.0, 1.0)).max(2.0 * pixel_size);
        }
    }
    2.0 * pixel_size
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn noise(n: usize, seed: u64) -> Volume {
        let mut rng = Rng::new(seed);
        Volume::from_vec([n; 3], (0..n * n * n).map(|_| rng.normal() as f32).collect())
    }

    #[test]
    fn identical_maps_correlate_fully_and_independent_noise_does_not() {
        let a = noise(24, 1);
        let same = fsc(&a, &a);
        assert!(same.iter().skip(1).all(|&f| (f - 1.0).abs() < 1e-6));
        let b = noise(24, 2);
        let f = fsc(&a, &b);
        // a shell of m voxels gives |FSC| ≲ 3/√m for independent noise
        for (s, v) in f.iter().enumerate().skip(3) {
            assert!(v.abs() < 0.2, "shell {s}: {v}");
        }
    }

    #[test]
    fn signal_plus_noise_follows_snr_formula() {
        // two copies of a signal with independent noise of equal power: FSC = SNR / (1 + SNR) = 0.5
        let n = 32;
        let s = noise(n, 10);
        let (na, nb) = (noise(n, 11), noise(n, 12));
        let a = Volume::from_vec([n; 3], s.data.iter().zip(&na.data).map(|(x, y)| x + y).collect());
        let b = Volume::from_vec([n; 3], s.data.iter().zip(&nb.data).map(|(x, y)| x + y).collect());
        let f = fsc(&a, &b);
        let mean: f64 = f[4..16].iter().sum::<f64>() / 12.0;
        assert!((mean - 0.5).abs() < 0.03, "{mean}");
    }

    #[test]
    fn resolution_interpolates_the_crossing() {
        let curve = [1.0, 0.9, 0.5, 0.1, 0.0];
        // 0.143 is crossed between shell 2 (0.5) and 3 (0.1): at 2 + 0.357/0.4
        let r = resolution_at(&curve, 0.143, 64, 1.0);
        assert!((r - 64.0 / (2.0 + 0.357 / 0.4)).abs() < 1e-9);
        assert_eq!(resolution_at(&[1.0, 0.9, 0.8], 0.143, 64, 1.5), 3.0);
    }
}
