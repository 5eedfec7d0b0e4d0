//! Fourier cropping and padding: resample images and maps to another box, same field of view.

use super::{Complex32, Fft2, Fft3, centre_to_origin, frequency_index, origin_to_centre, signed_frequency};
use crate::array::Volume;

/// Resamples a cubic map of box n to box m by cropping (m < n) or zero-padding (m > n) its
/// spectrum. Densities keep their values (a constant map stays the same constant), so the voxel
/// size becomes n/m times the old one.
///
/// # Panics
/// If the volume is not cubic.
pub fn fourier_resize_volume(volume: &Volume, m: usize) -> Volume {
    let [n, ny, nz] = volume.shape;
    assert!(n == ny && n == nz, "Fourier resizing needs a cubic map, got {:?}", volume.shape);
    let mut rolled = vec![0.0f32; n * n * n];
    centre_to_origin(&volume.data, &mut rolled, [n; 3]);
    let mut fft = Fft3::new([n; 3]);
    let mut spectrum = vec![Complex32::default(); fft.spectrum_len()];
    fft.forward(&mut rolled, &mut spectrum);
    let mut out_fft = Fft3::new([m; 3]);
    let mut resized = vec![Complex32::default(); out_fft.spectrum_len()];
    let (hn, hm) = (n / 2 + 1, m / 2 + 1);
    let limit = n.min(m) as i64;
    // frequencies both boxes hold: −⌈limit/2⌉ < k ≤ ⌊limit/2⌋
    let keep = |k: i64| k > -((limit + 1) / 2) && k <= limit / 2;
    let scale = (m as f32 / n as f32).powi(3);
    for iz in 0..m {
        let kz = signed_frequency(iz, m);
        if !keep(kz) {
            continue;
        }
        for iy in 0..m {
            let ky = signed_frequency(iy, m);
            if !keep(ky) {
                continue;
            }
            for kx in 0..hm.min(hn) {
                let src = (frequency_index(kz, n) * n + frequency_index(ky, n)) * hn + kx;
                resized[(iz * m + iy) * hm + kx] = spectrum[src] * scale;
            }
        }
    }
    let mut real = vec![0.0f32; m * m * m];
    out_fft.inverse(&mut resized, &mut real);
    let mut out = vec![0.0f32; m * m * m];
    origin_to_centre(&real, &mut out, [m; 3]);
    Volume::from_vec([m; 3], out)
}

/// Resamples an (n × n) image to (m × m) by cropping or zero-padding its spectrum; pixel values
/// keep their scale.
///
/// # Panics
/// If the buffers or plans do not match n and m.
pub fn fourier_resize_image(image: &[f32], n: usize, m: usize, out: &mut [f32]) {
    assert_eq!(image.len(), n * n, "image length");
    assert_eq!(out.len(), m * m, "output length");
    let mut rolled = vec![0.0f32; n * n];
    centre_to_origin(image, &mut rolled, [n, n, 1]);
    let mut fft_in = Fft2::new(n, n);
    let mut spectrum = vec![Complex32::default(); fft_in.spectrum_len()];
    fft_in.forward(&mut rolled, &mut spectrum);
    let mut fft_out = Fft2::new(m, m);
    let mut resized = vec![Complex32::default(); fft_out.spectrum_len()];
    let (hn, hm) = (n / 2 + 1, m / 2 + 1);
    let limit = n.min(m) as i64;
    let scale = (m * m) as f32 / (n * n) as f32;
    for iy in 0..m {
        let ky = signed_frequency(iy, m);
        if !(ky > -((limit + 1) / 2) && ky <= limit / 2) {
            continue;
        }
        for kx in 0..hm.min(hn) {
            resized[iy * hm + kx] = spectrum[frequency_index(ky, n) * hn + kx] * scale;
        }
    }
    let mut real = vec![0.0f32; m * m];
    fft_out.inverse(&mut resized, &mut real);
    origin_to_centre(&real, out, [m, m, 1]);
}
