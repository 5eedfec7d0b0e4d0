//! The data term of training: a whitened squared error between CTF-modulated rendered images
//! and particle images in Fourier space, inside a resolution limit; the noise spectrum that
//! whitens it; and Fourier cropping of particle images to the training box.
//!
//! For real images x (rendered) and spectrum Y (data), with C the CTF and W a radial weight,
//! L = (1/n²)·Σ_k W(|k|)·|C_k·X_k − Y_k|² over the full plane (Parseval: with W ≡ 1 this is
//! the real-space sum of squared differences). Sums run over the stored half plane, columns
//! kx = 1 … ⌈n/2⌉ − 1 counted twice. Spectra are of images whose centre (pixel n − n/2) was
//! rolled to the origin ([`crate::fft::image_centre_to_origin`]).

use crate::fft::{
    Complex32, Fft2, frequency_index, friedel_mates as multiplicity, image_centre_to_origin,
    origin_to_image_centre, signed_frequency,
};

/// Radial shell of every half-plane entry of an n-pixel box: round(|k|).
pub fn half_plane_shells(n: usize) -> Vec<u32> {
    let hx = n / 2 + 1;
    (0..hx * n)
        .map(|i| {
            let (kx, ky) = ((i % hx) as f64, signed_frequency(i / hx, n) as f64);
            (kx * kx + ky * ky).sqrt().round() as u32
        })
        .collect()
}

/// The noise power per radial shell, estimated from residuals (data − CTF·model) of held-out
/// particles; its inverse whitens the loss.
#[derive(Clone, Debug, PartialEq)]
pub struct NoiseSpectrum {
    n: usize,
    power: Vec<f64>,
    count: Vec<f64>,
}

impl NoiseSpectrum {
    /// Empty accumulators for an n-pixel box.
    pub fn new(n: usize) -> Self {
        NoiseSpectrum { n, power: vec![0.0; n / 2 + 1], count: vec![0.0; n / 2 + 1] }
    }

    /// Box size.
    pub fn box_size(&self) -> usize {
        self.n
    }

    /// Adds one residual spectrum (half plane, unnormalised forward FFT).
    ///
    /// # Panics
    /// If its length is not (n/2 + 1)·n.
    pub fn add(&mut self, residual: &[Complex32], shells: &[u32]) {
        let hx = self.n / 2 + 1;
        assert_eq!(residual.len(), hx * self.n, "residual spectrum length");
        for (i, (r, &shell)) in residual.iter().zip(shells).enumerate() {
            let s = shell as usize;
            if s < self.power.len() {
                let m = multiplicity(i % hx, self.n) as f64;
                self.power[s] += m * r.norm_sqr() as f64;
                self.count[s] += m;
            }
        }
    }

    /// Merges another accumulator (same box).
    pub fn merge(&mut self, other: &NoiseSpectrum) {
        assert_eq!(self.n, other.n, "noise spectra of different boxes");
        self.power.iter_mut().zip(&other.power).for_each(|(a, b)| *a += b);
        self.count.iter_mut().zip(&other.count).for_each(|(a, b)| *a += b);
    }

    /// Mean power per shell, 0..=n/2 (per pixel: divided by n²).
    pub fn power(&self) -> Vec<f64> {
        let n2 = (self.n * self.n) as f64;
        self.power.iter().zip(&self.count).map(|(&p, &c)| if c > 0.0 { p / c / n2 } else { 0.0 }).collect()
    }

    /// Whitening weights per half-plane entry: 1/power inside shells ≤ `max_shell`, 0 beyond,
    /// scaled to a mean of 1 over the full-plane frequencies kept.
    pub fn weights(&self, max_shell: f64) -> Vec<f32> {
        weights_from_power(self.n, &self.power(), max_shell)
    }
}

/// Whitening weights from a noise power per shell (as [`NoiseSpectrum::power`] gives, e.g. after
/// smoothing over epochs); shells without an estimate borrow the nearest lower one.
pub fn weights_from_power(n: usize, power: &[f64], max_shell: f64) -> Vec<f32> {
    let mut inverse = vec![0.0f64; n / 2 + 1];
    let mut last = 1.0;
    for (s, v) in inverse.iter_mut().enumerate() {
        if let Some(&p) = power.get(s).filter(|&&p| p > 0.0) {
            last = 1.0 / p;
        }
        *v = last;
    }
    shell_weights(n, max_shell, |s| inverse[s])
}

/// Flat weights (no whitening): 1 inside shells ≤ `max_shell`, 0 beyond.
pub fn flat_weights(n: usize, max_shell: f64) -> Vec<f32> {
    shell_weights(n, max_shell, |_| 1.0)
}

fn shell_weights(n: usize, max_shell: f64, value: impl Fn(usize) -> f64) -> Vec<f32> {
    let hx = n / 2 + 1;
    let shells = half_plane_shells(n);
    let mut w: Vec<f64> = shells
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let (kx, ky) = ((i % hx) as f64, signed_frequency(i / hx, n) as f64);
            if (kx * kx + ky * ky).sqrt() <= max_shell && (s as usize) < hx { value(s as usize) } else { 0.0 }
        })
        .collect();
    let (mut sum, mut count) = (0.0, 0.0);
    for (i, &v) in w.iter().enumerate() {
        if v > 0.0 {
            let m = multiplicity(i % hx, n) as f64;
            sum += m * v;
            count += m;
        }
    }
    if sum > 0.0 {
        let scale = count / sum;
        w.iter_mut().for_each(|v| *v *= scale);
    }
    w.into_iter().map(|v| v as f32).collect()
}

/// Per-thread buffers for [`FourierLoss::evaluate`].
pub struct LossScratch {
    n: usize,
    fft: Fft2,
    real: Vec<f32>,
    spectrum: Vec<Complex32>,
}

impl LossScratch {
    /// Buffers and FFT plans for an n-pixel box.
    pub fn new(n: usize) -> Self {
        let fft = Fft2::new(n, n);
        let len = fft.spectrum_len();
        LossScratch { n, fft, real: vec![0.0; n * n], spectrum: vec![Complex32::default(); len] }
    }
}

/// The whitened Fourier loss of an n-pixel box with its weights.
#[derive(Clone, Debug, PartialEq)]
pub struct FourierLoss {
    n: usize,
    weights: Vec<f32>,
}

impl FourierLoss {
    /// A loss with per-entry weights (from [`NoiseSpectrum::weights`] or [`flat_weights`]).
    ///
    /// # Panics
    /// If `weights` is not (n/2 + 1)·n long.
    pub fn new(n: usize, weights: Vec<f32>) -> Self {
        assert_eq!(weights.len(), (n / 2 + 1) * n, "weights length");
        FourierLoss { n, weights }
    }

    /// Box size.
    pub fn box_size(&self) -> usize {
        self.n
    }

    /// The weights.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// Loss of one rendered image (n², real space, centred) against a data spectrum, with the
    /// CTF (half plane; `None` for none). Writes dL/dimage into `image_grad` (may be `None`)
    /// and, if given, the residual C·X − Y into `residual`.
    ///
    /// # Panics
    /// If buffer lengths do not match the box.
    pub fn evaluate(
        &self,
        rendered: &[f32],
        data: &[Complex32],
        ctf: Option<&[f32]>,
        scratch: &mut LossScratch,
        image_grad: Option<&mut [f32]>,
        residual: Option<&mut [Complex32]>,
    ) -> f64 {
        let n = self.n;
        let hx = n / 2 + 1;
        assert_eq!(rendered.len(), n * n, "rendered image length");
        assert_eq!(data.len(), hx * n, "data spectrum length");
        image_centre_to_origin(rendered, &mut scratch.real, [n, n]);
        scratch.fft.forward(&mut scratch.real, &mut scratch.spectrum);
        let mut loss = 0.0f64;
        let mut residual = residual;
        for (i, x) in scratch.spectrum.iter_mut().enumerate() {
            let c = ctf.map_or(1.0, |c| c[i]);
            let r = *x * c - data[i];
            if let Some(res) = residual.as_deref_mut() {
                res[i] = r;
            }
            let w = self.weights[i];
            loss += (w * multiplicity(i % hx, n) * r.norm_sqr()) as f64;
            // dL/dx = 2·inverse(W·C·R) (the inverse divides by n²)
            *x = r * (2.0 * w * c);
        }
        if let Some(grad) = image_grad {
            assert_eq!(grad.len(), n * n, "image gradient length");
            scratch.fft.inverse(&mut scratch.spectrum, &mut scratch.real);
            origin_to_image_centre(&scratch.real, grad, [n, n]);
        }
        loss / (n * n) as f64
    }
}

/// The half-plane spectrum of a centred n × n image (centre rolled to the origin first).
pub fn image_spectrum(image: &[f32], scratch: &mut LossScratch, out: &mut [Complex32]) {
    image_centre_to_origin(image, &mut scratch.real, [scratch.n, scratch.n]);
    scratch.fft.forward(&mut scratch.real, out);
}

/// Crops (m < n) or zero-pads (m > n) a half-plane spectrum of an n-pixel box to an m-pixel box,
/// scaled so that real-space pixel values keep their scale (the pixel size becomes n/m times
/// larger). The Nyquist row and column of an even cropped box are zeroed (they would hold only
/// one of a conjugate pair).
///
/// # Panics
/// If the lengths do not match n and m.
pub fn crop_spectrum(spectrum: &[Complex32], n: usize, m: usize, out: &mut [Complex32]) {
    let (hn, hm) = (n / 2 + 1, m / 2 + 1);
    assert_eq!(spectrum.len(), hn * n, "input spectrum length");
    assert_eq!(out.len(), hm * m, "output spectrum length");
    let scale = (m * m) as f32 / (n * n) as f32;
    let limit = n.min(m) as i64;
    // frequencies that both boxes hold without a Nyquist term: |k| < limit/2
    let keep = |k: i64| 2 * k.abs() < limit;
    out.fill(Complex32::default());
    for iy in 0..m {
        let ky = signed_frequency(iy, m);
        if !keep(ky) {
            continue;
        }
        let src = frequency_index(ky, n) * hn;
        for kx in 0..hm.min(hn) {
            if keep(kx as i64) {
                out[iy * hm + kx] = spectrum[src + kx] * scale;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck;
    use crate::rng::Rng;

    fn random_image(rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n * n).map(|_| rng.normal() as f32).collect()
    }

    #[test]
    fn flat_loss_is_the_real_space_squared_error() {
        // Parseval: with W ≡ 1 over every frequency and no CTF, L = Σ (x − y)²
        for n in [16, 15] {
            let mut rng = Rng::new(n as u64);
            let (x, y) = (random_image(&mut rng, n), random_image(&mut rng, n));
            let mut scratch = LossScratch::new(n);
            let mut data = vec![Complex32::default(); (n / 2 + 1) * n];
            image_spectrum(&y, &mut scratch, &mut data);
            let loss = FourierLoss::new(n, vec![1.0; (n / 2 + 1) * n]);
            let l = loss.evaluate(&x, &data, None, &mut scratch, None, None);
            let direct: f64 = x.iter().zip(&y).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
            assert!((l / direct - 1.0).abs() < 1e-4, "n {n}: {l} vs {direct}");
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        for n in [12, 11] {
            let mut rng = Rng::new(7);
            let (x, y) = (random_image(&mut rng, n), random_image(&mut rng, n));
            // an astigmatic CTF-like function: even in k, as every CTF is
            let ctf: Vec<f32> = (0..(n / 2 + 1) * n)
                .map(|i| {
                    let (kx, ky) = ((i % (n / 2 + 1)) as f32, signed_frequency(i / (n / 2 + 1), n) as f32);
                    -(0.05 * (kx * kx + 2.0 * ky * ky) + 0.03 * kx * ky).sin()
                })
                .collect();
            let mut noise = NoiseSpectrum::new(n);
            let mut scratch = LossScratch::new(n);
            let mut data = vec![Complex32::default(); (n / 2 + 1) * n];
            image_spectrum(&random_image(&mut rng, n), &mut scratch, &mut data);
            noise.add(&data, &half_plane_shells(n));
            let loss = FourierLoss::new(n, noise.weights(0.4 * n as f64));
            image_spectrum(&y, &mut scratch, &mut data);
            let mut grad = vec![0.0f32; n * n];
            loss.evaluate(&x, &data, Some(&ctf), &mut scratch, Some(&mut grad), None);
            // the loss is quadratic in x: central differences are exact at any step, so a large
            // step keeps f32 rounding out of the comparison
            let mut s2 = LossScratch::new(n);
            gradcheck(|x| loss.evaluate(x, &data, Some(&ctf), &mut s2, None, None), &x, &grad, 1.0, 1e-3)
                .unwrap();
        }
    }

    #[test]
    fn whitening_weights_invert_the_noise_power() {
        // white noise filtered by a known radial gain g(k): power ∝ g², weights ∝ 1/g²
        let n = 64;
        let mut rng = Rng::new(1);
        let mut noise = NoiseSpectrum::new(n);
        let mut scratch = LossScratch::new(n);
        let shells = half_plane_shells(n);
        let mut spec = vec![Complex32::default(); (n / 2 + 1) * n];
        for _ in 0..50 {
            image_spectrum(&random_image(&mut rng, n), &mut scratch, &mut spec);
            for (v, &s) in spec.iter_mut().zip(&shells) {
                *v *= 1.0 + s as f32 / 8.0;
            }
            noise.add(&spec, &shells);
        }
        let p = noise.power();
        for s in [2usize, 10, 20, 30] {
            let g = 1.0 + s as f64 / 8.0;
            assert!((p[s] / (g * g) - 1.0).abs() < 0.1, "shell {s}: power {} vs {}", p[s], g * g);
        }
        let w = noise.weights(30.0);
        let at = |s: u32| w[shells.iter().position(|&x| x == s).unwrap()] as f64;
        let ratio = at(24) / at(8);
        let expect = (2.0f64 / 4.0).powi(2);
        assert!((ratio / expect - 1.0).abs() < 0.15, "{ratio} vs {expect}");
        assert_eq!(w[shells.iter().position(|&x| x == 31).unwrap()], 0.0);
    }

    #[test]
    fn optics_groups_share_one_training_grid() {
        use crate::geometry::euler_to_matrix;
        use crate::imaging::splat::{View, project};
        // 64 px at 2 Å (128 Å) and 48 px at 2.5 Å (120 Å) on a 64-pixel training box at 2 Å
        let grid = TrainingGrid::new(&[(64, 2.0), (48, 2.5)], 64);
        assert_eq!(grid.groups[1], GroupGrid { image_box: 48, cropped_box: 60, pixel_size: 2.0 });
        assert_eq!(grid.groups[0].cropped_box, 64);
        // the same molecule imaged by group 2, prepared, matches its rendering on the grid
        let (pos, amp, wid) = ([6.0f32, -8.0, 3.0, -10.0, 5.0, 0.0], [1.0f32, 0.7], [5.0f32, 4.0]);
        let a = euler_to_matrix(20.0, 40.0, 60.0);
        let mut image = vec![0.0f32; 48 * 48];
        project(&pos, &amp, &wid, &View::new(&a, [3.0, -2.0], 2.5), 48, &mut image);
        let mut prepared = vec![Complex32::default(); 33 * 64];
        grid.prepare(1, &image, &mut grid.scratch(), &mut prepared);
        let mut expect = vec![0.0f32; 64 * 64];
        project(&pos, &amp, &wid, &View::new(&a, [3.0, -2.0], 2.0), 64, &mut expect);
        let mut expect_spectrum = vec![Complex32::default(); 33 * 64];
        image_spectrum(&expect, &mut LossScratch::new(64), &mut expect_spectrum);
        let dot = |x: &[Complex32], y: &[Complex32]| {
            x.iter().zip(y).map(|(a, b)| (a * b.conj()).re as f64).sum::<f64>()
        };
        let cc = dot(&prepared, &expect_spectrum)
            / (dot(&prepared, &prepared) * dot(&expect_spectrum, &expect_spectrum)).sqrt();
        assert!(cc > 0.999, "{cc}");
    }

    #[test]
    fn cropping_matches_fourier_resizing_of_the_image() {
        let (n, m) = (32, 20);
        let mut rng = Rng::new(2);
        // a smooth image (band-limited below the cropped Nyquist)
        let mut image = vec![0.0f32; n * n];
        for y in 0..n {
            for x in 0..n {
                let (u, v) = (x as f32 - 16.0, y as f32 - 16.0);
                image[y * n + x] = (-(u * u + v * v) / 30.0).exp() + 0.3 * (-(u - 5.0).powi(2) / 20.0).exp();
            }
        }
        let _ = rng.normal();
        let mut scratch = LossScratch::new(n);
        let mut spec = vec![Complex32::default(); (n / 2 + 1) * n];
        image_spectrum(&image, &mut scratch, &mut spec);
        let mut cropped = vec![Complex32::default(); (m / 2 + 1) * m];
        crop_spectrum(&spec, n, m, &mut cropped);
        let mut resized = vec![0.0f32; m * m];
        crate::fft::fourier_resize_image(&image, n, m, &mut resized);
        let mut scratch_m = LossScratch::new(m);
        let mut expect = vec![Complex32::default(); (m / 2 + 1) * m];
        image_spectrum(&resized, &mut scratch_m, &mut expect);
        let worst = cropped.iter().zip(&expect).map(|(a, b)| (*a - *b).norm()).fold(0.0f32, f32::max);
        let scale = expect.iter().map(|v| v.norm()).fold(0.0f32, f32::max);
        assert!(worst < 1e-3 * scale, "{worst} vs {scale}");
    }
}

/// One optics group on the training grid: its images (box `image_box`) are Fourier-cropped or
/// padded to `cropped_box`, then padded in real space to the common training box; `pixel_size`
/// is then exactly image_box·pixel/cropped_box (what the renderer and CTF use for the group).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupGrid {
    /// Box of the group's particle images.
    pub image_box: usize,
    /// Box after Fourier cropping (≤ the training box).
    pub cropped_box: usize,
    /// Pixel size of the cropped images in Å.
    pub pixel_size: f64,
}

/// One common training box for particles of several optics groups (boxes and pixel sizes):
/// the pixel size that fits the widest field of view into `box_size` pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingGrid {
    /// Training box in pixels.
    pub box_size: usize,
    /// Per optics group.
    pub groups: Vec<GroupGrid>,
}

impl TrainingGrid {
    /// The grid for groups given as (image box, pixel size in Å), at `box_size` pixels (at most
    /// the largest image box: cropping only).
    ///
    /// # Panics
    /// If `groups` is empty or a box or pixel size is not positive.
    pub fn new(groups: &[(usize, f64)], box_size: usize) -> Self {
        assert!(!groups.is_empty(), "no optics groups");
        assert!(groups.iter().all(|&(n, p)| n > 0 && p > 0.0), "boxes and pixel sizes must be positive");
        let largest = groups.iter().map(|&(n, _)| n).max().unwrap_or(box_size);
        let box_size = box_size.min(largest);
        let field = groups.iter().map(|&(n, p)| n as f64 * p).fold(0.0, f64::max);
        let pixel = field / box_size as f64;
        let groups = groups
            .iter()
            .map(|&(n, p)| {
                let cropped = ((n as f64 * p / pixel).round() as usize).clamp(1, box_size);
                GroupGrid { image_box: n, cropped_box: cropped, pixel_size: n as f64 * p / cropped as f64 }
            })
            .collect();
        TrainingGrid { box_size, groups }
    }

    /// FFT plans and buffers for [`TrainingGrid::prepare`] (one per thread).
    pub fn scratch(&self) -> GridScratch {
        GridScratch {
            groups: self
                .groups
                .iter()
                .map(|g| (LossScratch::new(g.image_box), LossScratch::new(g.cropped_box)))
                .collect(),
            training: LossScratch::new(self.box_size),
            spectrum: Vec::new(),
            cropped: Vec::new(),
            centred: Vec::new(),
            padded: vec![0.0; self.box_size * self.box_size],
        }
    }

    /// The training-box spectrum (see [`image_spectrum`]) of a particle image of `group`.
    ///
    /// # Panics
    /// If the image or output does not match the group's and the grid's boxes, or `scratch`
    /// comes from another grid.
    pub fn prepare(&self, group: usize, image: &[f32], scratch: &mut GridScratch, out: &mut [Complex32]) {
        let g = self.groups[group];
        let (n, c, m) = (g.image_box, g.cropped_box, self.box_size);
        assert_eq!(image.len(), n * n, "particle image length");
        let (full, small) = &mut scratch.groups[group];
        scratch.spectrum.resize((n / 2 + 1) * n, Complex32::default());
        image_spectrum(image, full, &mut scratch.spectrum);
        if c == m {
            crop_spectrum(&scratch.spectrum, n, m, out);
            return;
        }
        // crop to c, back to real space, pad (centre on centre) into the m box
        scratch.cropped.resize((c / 2 + 1) * c, Complex32::default());
        crop_spectrum(&scratch.spectrum, n, c, &mut scratch.cropped);
        small.fft.inverse(&mut scratch.cropped, &mut small.real);
        let centred = &mut scratch.centred;
        centred.resize(c * c, 0.0);
        origin_to_image_centre(&small.real, centred, [c, c]);
        let padded = &mut scratch.padded;
        padded.fill(0.0);
        let offset = (m - m / 2) - (c - c / 2);
        for y in 0..c {
            padded[(y + offset) * m + offset..(y + offset) * m + offset + c]
                .copy_from_slice(&centred[y * c..(y + 1) * c]);
        }
        image_spectrum(padded, &mut scratch.training, out);
    }
}

/// Reusable plans and buffers of a [`TrainingGrid`].
pub struct GridScratch {
    groups: Vec<(LossScratch, LossScratch)>,
    training: LossScratch,
    spectrum: Vec<Complex32>,
    cropped: Vec<Complex32>,
    centred: Vec<f32>,
    padded: Vec<f32>,
}
