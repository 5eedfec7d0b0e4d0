//! Fourier-slice projection of a map (RELION's projector: padding, gridding correction,
//! trilinear interpolation), and shifts of half-plane spectra.

use crate::array::Volume;
use crate::fft::{Complex32, Fft3, centre_to_origin, frequency_index, signed_frequency};
use crate::geometry::Mat3;

/// The padded 3D spectrum of a map, ready to cut central slices at any orientation.
///
/// A slice, inverse transformed (see [`crate::fft::Fft2::inverse`]) and moved back to the
/// centre, is the line integral of the map along the rotated z: the sum of voxels per ray.
pub struct FourierProjector {
    n: usize,
    padding: usize,
    big: usize,
    data: Vec<Complex32>,
}

impl FourierProjector {
    /// Transforms a cubic map of box n, zero-padded to `padding`·n (RELION's default is 2), with
    /// the real-space gridding correction for trilinear interpolation (division by sinc²).
    ///
    /// # Panics
    /// If the volume is not cubic or `padding` is 0.
    pub fn new(volume: &Volume, padding: usize) -> Self {
        let [n, ny, nz] = volume.shape;
        assert!(n == ny && n == nz, "projection needs a cubic map, got {:?}", volume.shape);
        assert!(padding >= 1, "padding factor must be at least 1");
        let big = padding * n;
        let mut padded = vec![0.0f32; big * big * big];
        let offset = big / 2 - n / 2;
        let c = (n / 2) as f64;
        for z in 0..n {
            for y in 0..n {
                for x in 0..n {
                    let r = ((x as f64 - c).powi(2) + (y as f64 - c).powi(2) + (z as f64 - c).powi(2)).sqrt();
                    let correction = if r > 0.0 {
                        let t = std::f64::consts::PI * r / big as f64;
                        let sinc = t.sin() / t;
                        1.0 / (sinc * sinc)
                    } else {
                        1.0
                    };
                    padded[((z + offset) * big + y + offset) * big + x + offset] =
                        (volume.get(x, y, z) as f64 * correction) as f32;
                }
            }
        }
        let mut rolled = vec![0.0f32; padded.len()];
        centre_to_origin(&padded, &mut rolled, [big; 3]);
        drop(padded);
        let mut fft = Fft3::new([big; 3]);
        let mut data = vec![Complex32::default(); fft.spectrum_len()];
        fft.forward(&mut rolled, &mut data);
        FourierProjector { n, padding, big, data }
    }

    /// Box size of the projections.
    pub fn box_size(&self) -> usize {
        self.n
    }

    /// The spectrum at integer padded frequency (x, y, z), any sign, by Hermitian symmetry.
    #[inline]
    fn at(&self, x: i64, y: i64, z: i64) -> Complex32 {
        let big = self.big as i64;
        let x = x.rem_euclid(big);
        // the half spectrum holds x in 0..=big/2; the rest are conjugates of the opposite frequency
        let (x, y, z, conj) = if x <= big / 2 { (x, y, z, false) } else { (big - x, -y, -z, true) };
        let x = x as usize;
        let hx = self.big / 2 + 1;
        let v = self.data[(frequency_index(z, self.big) * self.big + frequency_index(y, self.big)) * hx + x];
        if conj { v.conj() } else { v }
    }

    /// Trilinear interpolation at a padded frequency.
    #[inline]
    fn interpolate(&self, p: [f64; 3]) -> Complex32 {
        let f = p.map(f64::floor);
        let (x0, y0, z0) = (f[0] as i64, f[1] as i64, f[2] as i64);
        let (fx, fy, fz) = ((p[0] - f[0]) as f32, (p[1] - f[1]) as f32, (p[2] - f[2]) as f32);
        let lerp = |a: Complex32, b: Complex32, t: f32| a + (b - a) * t;
        let plane = |z: i64| {
            let a = lerp(self.at(x0, y0, z), self.at(x0 + 1, y0, z), fx);
            let b = lerp(self.at(x0, y0 + 1, z), self.at(x0 + 1, y0 + 1, z), fx);
            lerp(a, b, fy)
        };
        lerp(plane(z0), plane(z0 + 1), fz)
    }

    /// The central slice for rotation `a` (RELION's matrix for rot, tilt, psi), as the half
    /// plane of an n-pixel image; frequencies beyond n/2 are zero.
    ///
    /// # Panics
    /// If `out` is not (n/2 + 1)·n long.
    pub fn project(&self, a: &Mat3, out: &mut [Complex32]) {
        let n = self.n;
        let hx = n / 2 + 1;
        assert_eq!(out.len(), hx * n, "projection half-plane length");
        let r_max2 = ((n / 2) * (n / 2)) as i64;
        let pad = self.padding as f64;
        for (iy, row) in out.chunks_exact_mut(hx).enumerate() {
            let ky = signed_frequency(iy, n);
            for (kx, v) in row.iter_mut().enumerate() {
                let kx = kx as i64;
                if kx * kx + ky * ky > r_max2 {
                    *v = Complex32::default();
                    continue;
                }
                let (x, y) = (kx as f64 * pad, ky as f64 * pad);
                // 3D frequency = Aᵀ (x, y, 0)
                let p = [a[0][0] * x + a[1][0] * y, a[0][1] * x + a[1][1] * y, a[0][2] * x + a[1][2] * y];
                *v = self.interpolate(p);
            }
        }
        // the padded transform sums the same voxels: no rescaling needed
    }
}

/// Translates the image whose half-plane spectrum is `spectrum` by `shift` = (dx, dy) pixels:
/// multiplies by exp(−2πi k·shift / n). A particle with RELION origin o is its centred
/// projection translated by −o.
pub fn shift_half_plane(spectrum: &mut [Complex32], n: usize, shift: [f64; 2]) {
    let hx = n / 2 + 1;
    assert_eq!(spectrum.len(), hx * n, "half-plane length");
    if shift == [0.0, 0.0] {
        return;
    }
    for (iy, row) in spectrum.chunks_exact_mut(hx).enumerate() {
        row.iter_mut().zip(shift_phases(n, signed_frequency(iy, n), shift)).for_each(|(v, p)| *v *= p);
    }
}

/// exp(−2πi k·shift / n) along the half-plane row of frequency `ky`, for kx = 0, 1, …: the
/// ramp is separable, so each row starts at its y phase and steps by the x phase.
pub fn shift_phases(n: usize, ky: i64, shift: [f64; 2]) -> impl Iterator<Item = Complex32> {
    let w = -2.0 * std::f64::consts::PI / n as f64;
    let (sx, cx) = (w * shift[0]).sin_cos();
    let (s0, c0) = (w * ky as f64 * shift[1]).sin_cos();
    std::iter::successors(Some((c0, s0)), move |&(c, s)| Some((c * cx - s * sx, s * cx + c * sx)))
        .map(|(c, s)| Complex32::new(c as f32, s as f32))
}

/// Turns projector slices into real-space particle images; owns its FFT plan and buffers.
pub struct ImageRenderer {
    n: usize,
    fft: crate::fft::Fft2,
    spectrum: Vec<Complex32>,
    real: Vec<f32>,
}

impl ImageRenderer {
    /// Buffers for n-pixel images.
    pub fn new(n: usize) -> Self {
        let fft = crate::fft::Fft2::new(n, n);
        let spectrum = vec![Complex32::default(); fft.spectrum_len()];
        ImageRenderer { n, fft, spectrum, real: vec![0.0; n * n] }
    }

    /// The image of `projector`'s map at rotation `a`, translated by −`origin_px` (RELION's
    /// origin in pixels), multiplied by `ctf` (half plane, see [`crate::imaging::Ctf`]) if given;
    /// written to `out` (n·n, x fastest, centre at RELION's n − n/2, see [`crate::fft`]).
    ///
    /// # Panics
    /// If the sizes do not match.
    pub fn render(
        &mut self,
        projector: &FourierProjector,
        a: &Mat3,
        origin_px: [f64; 2],
        ctf: Option<&[f32]>,
        out: &mut [f32],
    ) {
        assert_eq!(projector.box_size(), self.n, "projector and renderer box sizes");
        projector.project(a, &mut self.spectrum);
        self.finish(origin_px, ctf, out);
    }

    /// From the centred spectrum in `self.spectrum` to the particle image: CTF, translation by
    /// −`origin_px`, inverse transform, back to RELION's image centre.
    fn finish(&mut self, origin_px: [f64; 2], ctf: Option<&[f32]>, out: &mut [f32]) {
        if let Some(ctf) = ctf {
            assert_eq!(ctf.len(), self.spectrum.len(), "CTF half-plane length");
            self.spectrum.iter_mut().zip(ctf).for_each(|(v, c)| *v *= *c);
        }
        shift_half_plane(&mut self.spectrum, self.n, [-origin_px[0], -origin_px[1]]);
        self.fft.inverse(&mut self.spectrum, &mut self.real);
        crate::fft::origin_to_image_centre(&self.real, out, [self.n, self.n]);
    }

    /// The half-plane spectrum of a particle image, centred (RELION's image centre) and with
    /// its translation undone: the inverse of [`ImageRenderer::render`] without CTF.
    ///
    /// # Panics
    /// If the sizes do not match.
    pub fn spectrum(&mut self, image: &[f32], origin_px: [f64; 2], out: &mut [Complex32]) {
        assert_eq!(image.len(), self.n * self.n, "image length");
        crate::fft::image_centre_to_origin(image, &mut self.real, [self.n, self.n]);
        self.fft.forward(&mut self.real, out);
        shift_half_plane(out, self.n, origin_px);
    }

    /// Applies a CTF (half plane) and the translation by −`origin_px` to a centred real-space
    /// image (e.g. a projection of Gaussians), writing the particle image to `out`.
    ///
    /// # Panics
    /// If the sizes do not match.
    pub fn filter(&mut self, centred: &[f32], origin_px: [f64; 2], ctf: Option<&[f32]>, out: &mut [f32]) {
        assert_eq!(centred.len(), self.n * self.n, "image length");
        crate::fft::image_centre_to_origin(centred, &mut self.real, [self.n, self.n]);
        self.fft.forward(&mut self.real, &mut self.spectrum);
        self.finish(origin_px, ctf, out);
    }
}
