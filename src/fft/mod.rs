//! Real FFTs of images and volumes, with plans and scratch reused, and the centring conventions.
//!
//! # Layout
//! The forward transform of an (nx, ny) image is the half plane of (nx/2 + 1) × ny complex values,
//! kx fastest: element (kx, ky) holds frequency (kx, ky) for ky ≤ ny/2 and (kx, ky − ny) above
//! (FFTW's and RELION's layout). Volumes add kz the same way as ky.
//!
//! # Normalisation
//! Forward transforms are unnormalised; inverse transforms divide by the number of pixels, so
//! `inverse(forward(x)) == x`.
//!
//! # Centre
//! Maps have their centre at index n/2. [`centre_to_origin`] moves that centre to index 0 before
//! a transform; [`origin_to_centre`] undoes it.
//!
//! Particle images follow RELION's Fourier-space convention: its CenterFFT rolls by n/2 both
//! ways, so the Fourier origin of an image sits at pixel n − n/2: n/2 for the even boxes RELION
//! extracts, (n+1)/2 for odd boxes (maps stay at n/2 because RELION pads them to an even box).
//! [`image_centre_to_origin`] and [`origin_to_image_centre`] implement it; relion_project's 65-pixel
//! golden projections pin it.

mod plan;
mod resize;
mod shells;

pub use plan::{Fft2, Fft3};
pub use resize::{fourier_resize_image, fourier_resize_volume};
pub use shells::{frequency_index, friedel_mates, signed_frequency};

pub use realfft::num_complex::Complex32;

/// Rolls an (nx, ny, nz) array so that index n/2 along each axis moves to index 0.
///
/// # Panics
/// If `input` or `output` is not nx·ny·nz long.
pub fn centre_to_origin(input: &[f32], output: &mut [f32], shape: [usize; 3]) {
    roll(input, output, shape, |n| n - n / 2);
}

/// Rolls an (nx, ny, nz) array so that index 0 along each axis moves to index n/2.
pub fn origin_to_centre(input: &[f32], output: &mut [f32], shape: [usize; 3]) {
    roll(input, output, shape, |n| n / 2);
}

/// Rolls an (nx, ny) image so that pixel n − n/2 along each axis (RELION's image centre) moves to 0.
pub fn image_centre_to_origin(input: &[f32], output: &mut [f32], [nx, ny]: [usize; 2]) {
    roll(input, output, [nx, ny, 1], |n| n / 2);
}

/// Rolls an (nx, ny) image so that pixel 0 moves to n − n/2 along each axis (RELION's image centre).
pub fn origin_to_image_centre(input: &[f32], output: &mut [f32], [nx, ny]: [usize; 2]) {
    roll(input, output, [nx, ny, 1], |n| n - n / 2);
}

/// Moves element i to (i + shift(n)) mod n along every axis.
fn roll(input: &[f32], output: &mut [f32], shape: [usize; 3], shift: impl Fn(usize) -> usize) {
    let [nx, ny, nz] = shape;
    assert_eq!(input.len(), nx * ny * nz, "roll input length");
    assert_eq!(output.len(), nx * ny * nz, "roll output length");
    let (sx, sy, sz) = (shift(nx), shift(ny), shift(nz));
    for z in 0..nz {
        let oz = (z + sz) % nz;
        for y in 0..ny {
            let oy = (y + sy) % ny;
            let src = &input[(z * ny + y) * nx..(z * ny + y + 1) * nx];
            let dst = &mut output[(oz * ny + oy) * nx..(oz * ny + oy + 1) * nx];
            // one row: two contiguous pieces
            dst[sx % nx..].copy_from_slice(&src[..nx - sx % nx]);
            dst[..sx % nx].copy_from_slice(&src[nx - sx % nx..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_centre_is_n_minus_half_n() {
        for (n, centre) in [(4, 2), (5, 3), (64, 32), (65, 33)] {
            let mut v = vec![0.0; n * n];
            v[centre * n + centre] = 1.0;
            let mut rolled = vec![0.0; n * n];
            image_centre_to_origin(&v, &mut rolled, [n, n]);
            assert_eq!(rolled[0], 1.0, "{n}");
            let mut back = vec![0.0; n * n];
            origin_to_image_centre(&rolled, &mut back, [n, n]);
            assert_eq!(back, v);
        }
    }

    #[test]
    fn centre_moves_to_origin_and_back_for_odd_and_even_sizes() {
        for shape in [[4, 5, 1], [5, 4, 3], [6, 6, 6]] {
            let n: usize = shape.iter().product();
            let mut v = vec![0.0; n];
            let [nx, ny, nz] = shape;
            v[((nz / 2) * ny + ny / 2) * nx + nx / 2] = 1.0;
            let mut rolled = vec![0.0; n];
            centre_to_origin(&v, &mut rolled, shape);
            assert_eq!(rolled[0], 1.0, "{shape:?}");
            let mut back = vec![0.0; n];
            origin_to_centre(&rolled, &mut back, shape);
            assert_eq!(back, v);
        }
    }
}
