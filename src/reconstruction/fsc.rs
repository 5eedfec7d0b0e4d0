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
        let mates = crate::fft::friedel_mates(kx, n) as f64;
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

/// FSC curves of masked half maps, corrected for the mask's own correlation by phase
/// randomisation (Chen et al. 2013, as RELION's postprocess does).
#[derive(Clone, Debug)]
pub struct MaskedFsc {
    /// FSC of the maps without the mask.
    pub unmasked: Vec<f64>,
    /// FSC of the masked maps.
    pub masked: Vec<f64>,
    /// FSC of the masked maps whose phases were randomised beyond `randomised_from`.
    pub randomised: Vec<f64>,
    /// (masked − randomised) / (1 − randomised) beyond `randomised_from`, masked before it.
    pub corrected: Vec<f64>,
    /// First shell where the unmasked FSC falls below 0.8: phases are randomised from there on.
    pub randomised_from: usize,
}

/// Masked FSC with phase-randomisation correction; `seed` makes the random phases repeatable.
///
/// # Panics
/// If the maps and the mask differ in shape.
pub fn masked_fsc(a: &Volume, b: &Volume, mask: &Volume, seed: u64) -> MaskedFsc {
    assert!(a.shape == b.shape && a.shape == mask.shape, "maps and mask must share a box");
    let unmasked = fsc(a, b);
    let randomised_from = unmasked.iter().skip(1).position(|&f| f < 0.8).map_or(unmasked.len(), |p| p + 1);
    let apply =
        |v: &Volume| Volume::from_vec(v.shape, v.data.iter().zip(&mask.data).map(|(x, m)| x * m).collect());
    let masked = fsc(&apply(a), &apply(b));
    let mut rng = crate::rng::Rng::new(seed);
    let ra = apply(&randomise_phases(a, randomised_from, &mut rng));
    let rb = apply(&randomise_phases(b, randomised_from, &mut rng));
    let randomised = fsc(&ra, &rb);
    let corrected = (0..masked.len())
        .map(|s| {
            if s < randomised_from || randomised[s] >= 1.0 {
                masked[s]
            } else {
                (masked[s] - randomised[s]) / (1.0 - randomised[s])
            }
        })
        .collect();
    MaskedFsc { unmasked, masked, randomised, corrected, randomised_from }
}

/// The map with the phases of every shell from `from` on replaced by uniform random phases
/// (Hermitian-consistent, so the map stays real and keeps its amplitudes).
pub fn randomise_phases(volume: &Volume, from: usize, rng: &mut crate::rng::Rng) -> Volume {
    let n = volume.shape[0];
    let hx = n / 2 + 1;
    let mut spectrum = volume_spectrum(volume);
    let shells = shell_indices(n);
    for i in 0..spectrum.len() {
        if (shells[i] as usize) < from {
            continue;
        }
        let (kx, y, z) = (i % hx, (i / hx) % n, i / (hx * n));
        let amplitude = spectrum[i].norm();
        // the kx = 0 and (even n) kx = n/2 planes hold both members of each Friedel pair
        if kx == 0 || (n % 2 == 0 && kx == n / 2) {
            let partner = (((n - z) % n) * n + (n - y) % n) * hx + kx;
            if partner < i {
                spectrum[i] = spectrum[partner].conj();
                continue;
            }
            if partner == i {
                let sign = if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
                spectrum[i] = Complex32::new(sign * amplitude, 0.0);
                continue;
            }
        }
        let (s, c) = (std::f64::consts::TAU * rng.uniform()).sin_cos();
        spectrum[i] = Complex32::new(amplitude * c as f32, amplitude * s as f32);
    }
    let mut fft = Fft3::new(volume.shape);
    let mut rolled = vec![0.0f32; volume.data.len()];
    fft.inverse(&mut spectrum, &mut rolled);
    let mut out = vec![0.0f32; rolled.len()];
    crate::fft::origin_to_centre(&rolled, &mut out, volume.shape);
    Volume::from_vec(volume.shape, out)
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
    fn phase_randomisation_removes_correlation_beyond_the_cut_only() {
        let n = 24;
        let s = noise(n, 20);
        let mut rng = Rng::new(3);
        let r1 = randomise_phases(&s, 6, &mut rng);
        let r2 = randomise_phases(&s, 6, &mut rng);
        let f = fsc(&r1, &r2);
        assert!(f[1..6].iter().all(|&v| v > 0.999), "{f:?}");
        assert!(f[8..].iter().all(|&v| v.abs() < 0.25), "{f:?}");
        // amplitudes are kept: the total power is unchanged
        let power = |v: &Volume| v.data.iter().map(|&x| (x as f64).powi(2)).sum::<f64>();
        assert!((power(&s) / power(&r1) - 1.0).abs() < 1e-3);
    }

    #[test]
    fn the_correction_removes_what_a_sharp_mask_leaks_into_high_shells() {
        // a shared low-resolution signal plus independent noise: masking with a sharp sphere
        // spreads the low-resolution correlation into the high shells; the correction removes it
        let n = 32;
        let signal = crate::reconstruction::low_pass(&noise(n, 40), 4.0, 1.0);
        let (na, nb) = (noise(n, 41), noise(n, 42));
        let mix = |e: &Volume| {
            Volume::from_vec(
                [n; 3],
                signal.data.iter().zip(&e.data).map(|(s, x)| 20.0 * s + 0.2 * x).collect(),
            )
        };
        let (a, b) = (mix(&na), mix(&nb));
        let mut mask = Volume::zeros([n; 3]);
        for z in 0..n {
            for y in 0..n {
                for x in 0..n {
                    let r2 = [x, y, z].iter().map(|&c| (c as f64 - 16.0).powi(2)).sum::<f64>();
                    let i = mask.index(x, y, z);
                    mask.data[i] = if r2 < 64.0 { 1.0 } else { 0.0 };
                }
            }
        }
        let m = masked_fsc(&a, &b, &mask, 1);
        assert!((4..=7).contains(&m.randomised_from), "{}", m.randomised_from);
        let mean = |v: &[f64]| v[9..15].iter().sum::<f64>() / 6.0;
        assert!(mean(&m.masked) > 0.2, "masked {:?}", &m.masked[..16]);
        assert!(mean(&m.corrected).abs() < 0.1, "corrected {:?}", &m.corrected[..16]);
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
