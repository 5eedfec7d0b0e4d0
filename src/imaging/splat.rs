//! The differentiable renderer of Gaussian models: exact separable splatting of isotropic
//! Gaussians into particle images (line integrals) and into volumes, with backward passes.
//!
//! Buffers are plain f32: positions are (x, y, z) triples in Å relative to the box centre,
//! amplitudes are peak densities, widths are standard deviations σ in Å. A Gaussian contributes
//! a·exp(−|r − c|²/2σ²) to the density, of mass a·(2π)^{3/2}·s³ in voxel units (s = σ/pixel).
//! Pixels (voxels) hold the projection (density) averaged over the pixel (voxel), computed
//! exactly from erf differences: the mass is right at any width, even below a pixel, and
//! everything is smooth in position and width. Projections are line integrals in voxel units,
//! as [`crate::imaging::ImageRenderer`] projects a map. Footprints reach 4σ (the tails left
//! out hold under 10⁻⁴ of the mass).

use rayon::prelude::*;

/// Footprint half-width in standard deviations.
const REACH: f32 = 4.0;
const TAU_3_2: f32 = 15.749_61;

/// How one particle is seen: RELION's rotation A, the image shift and the pixel size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    /// RELION's A = Rz(−psi)·Ry(−tilt)·Rz(−rot): rows 0 and 1 give the image x and y.
    pub rotation: [[f32; 3]; 3],
    /// The particle's position in the image relative to the centre, in pixels: −origin/pixel.
    pub shift_px: [f32; 2],
    /// Pixel size in Å.
    pub pixel_size: f32,
}

impl View {
    /// From RELION's matrix (f64), the origin in Å and the pixel size.
    pub fn new(rotation: &crate::geometry::Mat3, origin_angstrom: [f64; 2], pixel_size: f64) -> Self {
        View {
            rotation: rotation.map(|row| row.map(|v| v as f32)),
            shift_px: origin_angstrom.map(|o| (-o / pixel_size) as f32),
            pixel_size: pixel_size as f32,
        }
    }

    /// Pixel coordinates (x, y) of a point in Å relative to the box centre, in an n-pixel image.
    #[inline]
    fn place(&self, c: &[f32], n: usize) -> [f32; 2] {
        let centre = (n - n / 2) as f32;
        let a = &self.rotation;
        let inv = 1.0 / self.pixel_size;
        [0, 1].map(|r| (a[r][0] * c[0] + a[r][1] * c[1] + a[r][2] * c[2]) * inv + centre + self.shift_px[r])
    }
}

/// erf to 1.5·10⁻⁷ (Abramowitz & Stegun 7.1.26), with exp(−x²) that its derivative needs.
#[inline]
fn erf_and_gaussian(x: f32) -> (f32, f32) {
    let e = (-x * x).exp();
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly =
        t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152 + t * 1.061_405_4))));
    let v = 1.0 - poly * e;
    (if x < 0.0 { -v } else { v }, e)
}

/// The 1D factor of a Gaussian footprint along one axis, clipped to 0..n: the Gaussian of unit
/// mass centred at `p` with width `s` (pixels) integrated over each pixel [i − ½, i + ½], and its
/// derivatives with respect to p and s.
#[derive(Default)]
struct Axis {
    range: std::ops::Range<usize>,
    value: Vec<f32>,
    d_centre: Vec<f32>,
    d_width: Vec<f32>,
    edges: Vec<(f32, f32, f32)>,
}

impl Axis {
    /// Fills the factor (and with `derivatives`, its p and s derivatives).
    #[inline]
    fn fill(&mut self, p: f32, s: f32, n: usize, derivatives: bool) {
        let reach = REACH * s + 0.5;
        let lo = (p - reach).ceil().max(0.0);
        let hi = (p + reach).floor().min(n as f32 - 1.0);
        self.value.clear();
        self.d_centre.clear();
        self.d_width.clear();
        self.edges.clear();
        // NaN positions or widths leave the footprint empty
        if hi.partial_cmp(&lo).is_none_or(|o| o.is_lt()) {
            self.range = 0..0;
            return;
        }
        let (lo, hi) = (lo as usize, hi as usize);
        self.range = lo..hi + 1;
        let inv = std::f32::consts::FRAC_1_SQRT_2 / s;
        // erf and exp(−t²) at the pixel edges t = (i ∓ ½ − p)/(√2·s)
        for i in lo..=hi + 1 {
            let t = (i as f32 - 0.5 - p) * inv;
            let (erf, gauss) = erf_and_gaussian(t);
            self.edges.push((t, erf, gauss));
        }
        self.value.extend(self.edges.windows(2).map(|w| 0.5 * (w[1].1 - w[0].1)));
        if derivatives {
            // d erf(t)/dt = (2/√π)·exp(−t²); dt/dp = −1/(√2·s); dt/ds = −t/s
            let k = std::f32::consts::FRAC_2_SQRT_PI * 0.5;
            self.d_centre.extend(self.edges.windows(2).map(|w| -k * inv * (w[1].2 - w[0].2)));
            self.d_width.extend(self.edges.windows(2).map(|w| -k * (w[1].0 * w[1].2 - w[0].0 * w[0].2) / s));
        }
    }
}

/// Reusable footprints for one thread.
#[derive(Default)]
struct Scratch {
    x: Axis,
    y: Axis,
    z: Axis,
}

/// Adds the projection of Gaussians (`positions` Ng×3, shared `amplitudes` and `widths`) seen
/// as `view` to an n × n image. Each pixel holds the line integral averaged over the pixel.
///
/// # Panics
/// If the buffer lengths disagree.
pub fn project(
    positions: &[f32],
    amplitudes: &[f32],
    widths: &[f32],
    view: &View,
    n: usize,
    out: &mut [f32],
) {
    check_lengths(positions, amplitudes, widths);
    assert_eq!(out.len(), n * n, "image length");
    let mut s = Scratch::default();
    project_with(positions, amplitudes, widths, view, n, out, &mut s);
}

fn project_with(
    positions: &[f32],
    amplitudes: &[f32],
    widths: &[f32],
    view: &View,
    n: usize,
    out: &mut [f32],
    scratch: &mut Scratch,
) {
    for ((c, &a), &sigma) in positions.chunks_exact(3).zip(amplitudes).zip(widths) {
        let p = view.place(c, n);
        let s = sigma / view.pixel_size;
        scratch.x.fill(p[0], s, n, false);
        scratch.y.fill(p[1], s, n, false);
        let (xs, ys) = (scratch.x.range.clone(), scratch.y.range.clone());
        if xs.is_empty() || ys.is_empty() {
            continue;
        }
        // mass in voxel units: a·(2π)^{3/2}·s³
        let mass = a * TAU_3_2 * s * s * s;
        for (y, &gy) in ys.zip(&scratch.y.value) {
            let w = mass * gy;
            let row = &mut out[y * n + xs.start..y * n + xs.end];
            for (v, &gx) in row.iter_mut().zip(&scratch.x.value) {
                *v += w * gx;
            }
        }
    }
}

/// Gradients of a scalar through [`project`]: given dL/dimage, adds dL/dposition to
/// `d_positions` (Ng×3) and dL/damplitude, dL/dwidth to `d_amplitudes`, `d_widths`.
///
/// # Panics
/// If the buffer lengths disagree.
#[allow(clippy::too_many_arguments)]
pub fn project_backward(
    positions: &[f32],
    amplitudes: &[f32],
    widths: &[f32],
    view: &View,
    n: usize,
    image_grad: &[f32],
    d_positions: &mut [f32],
    d_amplitudes: &mut [f32],
    d_widths: &mut [f32],
) {
    check_lengths(positions, amplitudes, widths);
    assert_eq!(image_grad.len(), n * n, "image gradient length");
    assert_eq!(d_positions.len(), positions.len(), "position gradient length");
    assert_eq!(d_amplitudes.len(), amplitudes.len(), "amplitude gradient length");
    assert_eq!(d_widths.len(), widths.len(), "width gradient length");
    let mut s = Scratch::default();
    project_backward_with(
        positions,
        amplitudes,
        widths,
        view,
        n,
        image_grad,
        d_positions,
        d_amplitudes,
        d_widths,
        &mut s,
    );
}

#[allow(clippy::too_many_arguments)]
fn project_backward_with(
    positions: &[f32],
    amplitudes: &[f32],
    widths: &[f32],
    view: &View,
    n: usize,
    image_grad: &[f32],
    d_positions: &mut [f32],
    d_amplitudes: &mut [f32],
    d_widths: &mut [f32],
    scratch: &mut Scratch,
) {
    let a_mat = &view.rotation;
    let inv_pixel = 1.0 / view.pixel_size;
    for i in 0..amplitudes.len() {
        let p = view.place(&positions[3 * i..3 * i + 3], n);
        let s = widths[i] * inv_pixel;
        scratch.x.fill(p[0], s, n, true);
        scratch.y.fill(p[1], s, n, true);
        let (x, y) = (&scratch.x, &scratch.y);
        if x.range.is_empty() || y.range.is_empty() {
            continue;
        }
        // S0 = Σ G·gx·gy, Sx = Σ G·gx'·gy, Sy = Σ G·gx·gy', Ss = Σ G·(gxₛ·gy + gx·gyₛ)
        let (mut s0, mut sx, mut sy, mut ss) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
        for (k, row_y) in y.range.clone().enumerate() {
            let row = &image_grad[row_y * n + x.range.start..row_y * n + x.range.end];
            let (mut r0, mut r1, mut r2) = (0.0f32, 0.0f32, 0.0f32);
            for (j, &g) in row.iter().enumerate() {
                r0 += g * x.value[j];
                r1 += g * x.d_centre[j];
                r2 += g * x.d_width[j];
            }
            let gy = y.value[k];
            s0 += gy * r0;
            sx += gy * r1;
            sy += y.d_centre[k] * r0;
            ss += gy * r2 + y.d_width[k] * r0;
        }
        let a = amplitudes[i];
        let mass = a * TAU_3_2 * s * s * s;
        d_amplitudes[i] += s0 * TAU_3_2 * s * s * s;
        d_widths[i] += (3.0 * mass / s * s0 + mass * ss) * inv_pixel;
        let (dpx, dpy) = (mass * sx, mass * sy);
        for k in 0..3 {
            d_positions[3 * i + k] += (dpx * a_mat[0][k] + dpy * a_mat[1][k]) * inv_pixel;
        }
    }
}

/// Renders a batch: particle b's Gaussians (`positions[b]`, Ng×3 each, shared amplitudes and
/// widths) seen as `views[b]`, into `images` (B × n², overwritten). Particles run in parallel.
///
/// # Panics
/// If the buffer lengths disagree.
pub fn project_batch(
    positions: &[f32],
    amplitudes: &[f32],
    widths: &[f32],
    views: &[View],
    n: usize,
    images: &mut [f32],
) {
    let ng = amplitudes.len();
    assert_eq!(positions.len(), views.len() * ng * 3, "positions per particle");
    assert_eq!(images.len(), views.len() * n * n, "images length");
    images.par_chunks_mut(n * n).zip(positions.par_chunks(ng * 3)).zip(views).for_each_init(
        Scratch::default,
        |scratch, ((image, pos), view)| {
            image.fill(0.0);
            project_with(pos, amplitudes, widths, view, n, image, scratch);
        },
    );
}

/// Particles per block whose amplitude and width gradients are summed together; blocks are then
/// summed in order, so results do not depend on the thread count.
const BLOCK: usize = 4;

/// Backward of [`project_batch`]: dL/dpositions per particle (B × Ng × 3, overwritten) and
/// dL/damplitudes, dL/dwidths summed over the batch (overwritten). Deterministic for any
/// number of threads.
///
/// # Panics
/// If the buffer lengths disagree.
#[allow(clippy::too_many_arguments)]
pub fn project_batch_backward(
    positions: &[f32],
    amplitudes: &[f32],
    widths: &[f32],
    views: &[View],
    n: usize,
    image_grads: &[f32],
    d_positions: &mut [f32],
    d_amplitudes: &mut [f32],
    d_widths: &mut [f32],
) {
    let ng = amplitudes.len();
    assert_eq!(positions.len(), views.len() * ng * 3, "positions per particle");
    assert_eq!(image_grads.len(), views.len() * n * n, "image gradients length");
    assert_eq!(d_positions.len(), positions.len(), "position gradients length");
    let blocks: Vec<(Vec<f32>, Vec<f32>)> = d_positions
        .par_chunks_mut(BLOCK * ng * 3)
        .zip(positions.par_chunks(BLOCK * ng * 3))
        .zip(image_grads.par_chunks(BLOCK * n * n))
        .zip(views.par_chunks(BLOCK))
        .map_init(Scratch::default, |scratch, (((d_pos, pos), grads), views)| {
            let mut d_amp = vec![0.0f32; ng];
            let mut d_width = vec![0.0f32; ng];
            d_pos.fill(0.0);
            for (b, view) in views.iter().enumerate() {
                project_backward_with(
                    &pos[b * ng * 3..(b + 1) * ng * 3],
                    amplitudes,
                    widths,
                    view,
                    n,
                    &grads[b * n * n..(b + 1) * n * n],
                    &mut d_pos[b * ng * 3..(b + 1) * ng * 3],
                    &mut d_amp,
                    &mut d_width,
                    scratch,
                );
            }
            (d_amp, d_width)
        })
        .collect();
    d_amplitudes.fill(0.0);
    d_widths.fill(0.0);
    for (d_amp, d_width) in &blocks {
        d_amplitudes.iter_mut().zip(d_amp).for_each(|(t, v)| *t += v);
        d_widths.iter_mut().zip(d_width).for_each(|(t, v)| *t += v);
    }
}

/// Renders Gaussians into an n³ volume of `pixel_size` Å (centre at voxel n/2), each voxel
/// holding the density averaged over the voxel, overwriting `out`. Runs in parallel over slabs
/// of z.
///
/// # Panics
/// If the buffer lengths disagree.
pub fn render_volume(
    positions: &[f32],
    amplitudes: &[f32],
    widths: &[f32],
    n: usize,
    pixel_size: f32,
    out: &mut [f32],
) {
    check_lengths(positions, amplitudes, widths);
    assert_eq!(out.len(), n * n * n, "volume length");
    let slab = n.div_ceil(rayon::current_num_threads() * 4).max(1);
    out.par_chunks_mut(slab * n * n).enumerate().for_each_init(Scratch::default, |s, (k, part)| {
        part.fill(0.0);
        let z0 = k * slab;
        let z1 = z0 + part.len() / (n * n);
        for ((c, &a), &sigma) in positions.chunks_exact(3).zip(amplitudes).zip(widths) {
            let p = volume_place(c, n, pixel_size);
            let sv = sigma / pixel_size;
            s.z.fill(p[2], sv, n, false);
            let (lo, hi) = (s.z.range.start.max(z0), s.z.range.end.min(z1));
            if lo >= hi {
                continue;
            }
            s.x.fill(p[0], sv, n, false);
            s.y.fill(p[1], sv, n, false);
            let mass = a * TAU_3_2 * sv * sv * sv;
            let (xs, ys) = (s.x.range.clone(), s.y.range.clone());
            for z in lo..hi {
                let wz = mass * s.z.value[z - s.z.range.start];
                for (y, &gy) in ys.clone().zip(&s.y.value) {
                    let w = wz * gy;
                    let start = ((z - z0) * n + y) * n;
                    let row = &mut part[start + xs.start..start + xs.end];
                    for (v, &gx) in row.iter_mut().zip(&s.x.value) {
                        *v += w * gx;
                    }
                }
            }
        }
    });
}

/// Backward of [`render_volume`]: given dL/dvolume, overwrites dL/dpositions, dL/damplitudes
/// and dL/dwidths. Runs in parallel over Gaussians.
///
/// # Panics
/// If the buffer lengths disagree.
#[allow(clippy::too_many_arguments)]
pub fn render_volume_backward(
    positions: &[f32],
    amplitudes: &[f32],
    widths: &[f32],
    n: usize,
    pixel_size: f32,
    volume_grad: &[f32],
    d_positions: &mut [f32],
    d_amplitudes: &mut [f32],
    d_widths: &mut [f32],
) {
    check_lengths(positions, amplitudes, widths);
    assert_eq!(volume_grad.len(), n * n * n, "volume gradient length");
    assert_eq!(d_positions.len(), positions.len(), "position gradient length");
    d_positions
        .par_chunks_mut(3)
        .zip(d_amplitudes.par_iter_mut().zip(d_widths.par_iter_mut()))
        .enumerate()
        .for_each_init(Scratch::default, |s, (i, (d_pos, (d_amp, d_width)))| {
            let p = volume_place(&positions[3 * i..3 * i + 3], n, pixel_size);
            let sv = widths[i] / pixel_size;
            s.x.fill(p[0], sv, n, true);
            s.y.fill(p[1], sv, n, true);
            s.z.fill(p[2], sv, n, true);
            let (x, y, z) = (&s.x, &s.y, &s.z);
            // sums of G against g = gx·gy·gz and its derivatives along each factor
            let (mut s0, mut sx, mut sy, mut sz, mut ss) = (0.0f32, 0.0f32, 0.0f32, 0.0f32, 0.0f32);
            for (kz, iz) in z.range.clone().enumerate() {
                for (ky, iy) in y.range.clone().enumerate() {
                    let start = (iz * n + iy) * n;
                    let row = &volume_grad[start + x.range.start..start + x.range.end];
                    let (mut r0, mut r1, mut r2) = (0.0f32, 0.0f32, 0.0f32);
                    for (j, &g) in row.iter().enumerate() {
                        r0 += g * x.value[j];
                        r1 += g * x.d_centre[j];
                        r2 += g * x.d_width[j];
                    }
                    let (gy, gz) = (y.value[ky], z.value[kz]);
                    let w = gy * gz;
                    s0 += w * r0;
                    sx += w * r1;
                    sy += y.d_centre[ky] * gz * r0;
                    sz += gy * z.d_centre[kz] * r0;
                    ss += w * r2 + (y.d_width[ky] * gz + gy * z.d_width[kz]) * r0;
                }
            }
            let mass_per_amplitude = TAU_3_2 * sv * sv * sv;
            let mass = amplitudes[i] * mass_per_amplitude;
            *d_amp = s0 * mass_per_amplitude;
            *d_width = (3.0 * mass / sv * s0 + mass * ss) / pixel_size;
            d_pos[0] = mass * sx / pixel_size;
            d_pos[1] = mass * sy / pixel_size;
            d_pos[2] = mass * sz / pixel_size;
        });
}

/// Voxel coordinates of a point in Å relative to the centre (voxel n/2).
#[inline]
fn volume_place(c: &[f32], n: usize, pixel_size: f32) -> [f32; 3] {
    let centre = (n / 2) as f32;
    [c[0] / pixel_size + centre, c[1] / pixel_size + centre, c[2] / pixel_size + centre]
}

fn check_lengths(positions: &[f32], amplitudes: &[f32], widths: &[f32]) {
    assert_eq!(positions.len(), amplitudes.len() * 3, "one (x, y, z) per Gaussian");
    assert_eq!(widths.len(), amplitudes.len(), "one width per Gaussian");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::euler_to_matrix;
    use crate::nn::gradcheck;
    use crate::rng::Rng;

    fn random_model(
        rng: &mut Rng,
        ng: usize,
        extent: f64,
        widths: [f64; 2],
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let pos = (0..ng * 3).map(|_| rng.range(-extent, extent) as f32).collect();
        let amp = (0..ng).map(|_| rng.range(0.5, 2.0) as f32).collect();
        let wid = (0..ng).map(|_| rng.range(widths[0], widths[1]) as f32).collect();
        (pos, amp, wid)
    }

    #[test]
    fn projection_and_volume_hold_the_gaussian_mass_at_any_width() {
        // Σ pixels = a·(2π)^{3/2}·s³ (voxel units), also for widths below a pixel
        for (sigma, pixel) in [(3.0, 1.5), (0.6, 1.5), (0.3, 2.0)] {
            let view = View::new(&euler_to_matrix(10.0, 20.0, 30.0), [3.0, -2.0], pixel);
            let mut image = vec![0.0f32; 64 * 64];
            let c = [2.0, -4.3, 1.0];
            project(&c, &[2.0], &[sigma as f32], &view, 64, &mut image);
            let s = sigma / pixel;
            let expected = 2.0 * (std::f64::consts::TAU).powf(1.5) * s.powi(3);
            let total: f64 = image.iter().map(|&v| v as f64).sum();
            assert!((total / expected - 1.0).abs() < 2e-4, "σ {sigma}: {total} vs {expected}");
            let mut volume = vec![0.0f32; 32 * 32 * 32];
            render_volume(&c, &[2.0], &[sigma as f32], 32, pixel as f32, &mut volume);
            let total: f64 = volume.iter().map(|&v| v as f64).sum();
            assert!((total / expected - 1.0).abs() < 2e-4, "σ {sigma}: {total} vs {expected}");
        }
    }

    #[test]
    fn erf_is_accurate() {
        // erf(0.5), erf(1), erf(2) to 10 digits
        for (x, v) in [(0.5f32, 0.520_499_877_8f64), (1.0, 0.842_700_792_9), (2.0, 0.995_322_265_0)] {
            assert!((erf_and_gaussian(x).0 as f64 - v).abs() < 3e-7);
            assert!((erf_and_gaussian(-x).0 as f64 + v).abs() < 3e-7);
        }
    }

    #[test]
    fn projection_peak_sits_where_relion_puts_the_point() {
        // a point at (x, y, z) Å appears at centre + A·p/pixel − origin/pixel
        let a = euler_to_matrix(40.0, 70.0, -20.0);
        let view = View::new(&a, [4.5, -3.0], 1.5);
        let p = [6.0, -3.0, 9.0];
        let mut image = vec![0.0f32; 48 * 48];
        project(&p.map(|v| v as f32), &[1.0], &[1.2], &view, 48, &mut image);
        let best = image.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        let expect = [0, 1].map(|r| {
            (24.0 + (0..3).map(|k| a[r][k] * p[k]).sum::<f64>() / 1.5 - [4.5, -3.0][r] / 1.5).round() as usize
        });
        assert_eq!([best % 48, best / 48], expect);
    }

    #[test]
    fn projection_gradients_match_finite_differences() {
        let mut rng = Rng::new(3);
        // footprints (4σ) wider than the image: no pixel enters or leaves them under the finite
        // differences, so the truncated tails cannot make jumps
        let (pos, amp, wid) = random_model(&mut rng, 3, 2.0, [4.0, 6.0]);
        let n = 16;
        // an oblique view: every axis of the model moves the image
        let view = View::new(&euler_to_matrix(45.0, 55.0, 30.0), [1.5, -2.0], 1.3);
        let weights: Vec<f32> = (0..n * n).map(|_| rng.normal() as f32).collect();
        let loss = |pos: &[f32], amp: &[f32], wid: &[f32]| {
            let mut image = vec![0.0f32; n * n];
            project(pos, amp, wid, &view, n, &mut image);
            image.iter().zip(&weights).map(|(&a, &b)| (a * b) as f64).sum::<f64>()
        };
        let (mut dp, mut da, mut dw) = (vec![0.0; 9], vec![0.0; 3], vec![0.0; 3]);
        project_backward(&pos, &amp, &wid, &view, n, &weights, &mut dp, &mut da, &mut dw);
        // steps of ~0.1 Å (smooth at this scale: σ ≥ 4 Å); smaller ones drown in the f32
        // rounding of the image sums
        gradcheck(|x| loss(x, &amp, &wid), &pos, &dp, 5e-2, 1e-3).unwrap();
        // linear in the amplitudes: any step is exact
        gradcheck(|x| loss(&pos, x, &wid), &amp, &da, 0.5, 1e-3).unwrap();
        gradcheck(|x| loss(&pos, &amp, x), &wid, &dw, 1e-2, 1e-3).unwrap();
    }

    #[test]
    fn volume_gradients_match_finite_differences() {
        let mut rng = Rng::new(5);
        let (pos, amp, wid) = random_model(&mut rng, 4, 2.0, [5.0, 7.0]);
        let n = 20;
        let weights: Vec<f32> = (0..n * n * n).map(|_| rng.normal() as f32).collect();
        let loss = |pos: &[f32], amp: &[f32], wid: &[f32]| {
            let mut v = vec![0.0f32; n * n * n];
            render_volume(pos, amp, wid, n, 1.4, &mut v);
            v.iter().zip(&weights).map(|(&a, &b)| (a * b) as f64).sum::<f64>()
        };
        let (mut dp, mut da, mut dw) = (vec![0.0; 12], vec![0.0; 4], vec![0.0; 4]);
        render_volume_backward(&pos, &amp, &wid, n, 1.4, &weights, &mut dp, &mut da, &mut dw);
        // steps of ~0.1 Å (smooth at this scale: σ ≥ 4 Å); smaller ones drown in the f32
        // rounding of the image sums
        gradcheck(|x| loss(x, &amp, &wid), &pos, &dp, 5e-2, 1e-3).unwrap();
        // linear in the amplitudes: any step is exact
        gradcheck(|x| loss(&pos, x, &wid), &amp, &da, 0.5, 1e-3).unwrap();
        gradcheck(|x| loss(&pos, &amp, x), &wid, &dw, 1e-2, 1e-3).unwrap();
    }

    #[test]
    fn batch_matches_single_images_and_is_thread_independent() {
        let mut rng = Rng::new(9);
        let (ng, n, b) = (30, 24, 7);
        let (_, amp, wid) = random_model(&mut rng, ng, 6.0, [2.0, 4.0]);
        let pos: Vec<f32> = (0..b * ng * 3).map(|_| rng.range(-6.0, 6.0) as f32).collect();
        let views: Vec<View> = (0..b)
            .map(|_| {
                let [r, t, p] = rng.uniform_euler();
                View::new(&euler_to_matrix(r, t, p), [rng.normal(), rng.normal()], 1.2)
            })
            .collect();
        let mut images = vec![0.0f32; b * n * n];
        project_batch(&pos, &amp, &wid, &views, n, &mut images);
        let mut single = vec![0.0f32; n * n];
        project(&pos[3 * ng..6 * ng], &amp, &wid, &views[1], n, &mut single);
        assert_eq!(&images[n * n..2 * n * n], &single[..]);
        let grads: Vec<f32> = (0..b * n * n).map(|_| rng.normal() as f32).collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let (mut dp, mut da, mut dw) = (vec![0.0; pos.len()], vec![0.0; ng], vec![0.0; ng]);
                project_batch_backward(&pos, &amp, &wid, &views, n, &grads, &mut dp, &mut da, &mut dw);
                (dp, da, dw)
            })
        };
        let (one, two) = (run(1), run(2));
        assert_eq!(one, two);
        // amplitude gradients are the sum of the single-particle ones
        let mut da = vec![0.0f32; ng];
        let (mut dp, mut dw) = (vec![0.0; ng * 3], vec![0.0; ng]);
        for k in 0..b {
            project_backward(
                &pos[k * ng * 3..(k + 1) * ng * 3],
                &amp,
                &wid,
                &views[k],
                n,
                &grads[k * n * n..(k + 1) * n * n],
                &mut dp,
                &mut da,
                &mut dw,
            );
        }
        for (x, y) in da.iter().zip(&one.1) {
            assert!((x - y).abs() <= 1e-4 * x.abs().max(1.0), "{x} vs {y}");
        }
    }
}
