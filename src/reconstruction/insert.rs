//! Fourier insertion: particle spectra summed into a padded 3D half grid with their CTF² weights.
//!
//! One accumulator holds Σ CTF·F and Σ CTF² for one reconstruction (a half set, a body, a tile);
//! accumulators of the same geometry add up ([`FourierAccumulator::add`]), so threads, half sets
//! and deformation-aware schemes each fill their own and combine them at the end.

use rayon::prelude::*;

use crate::fft::{Complex32, signed_frequency};
use crate::geometry::Mat3;
use crate::imaging::shift_phases;

/// One grid point of an accumulator: Σ CTF·F and Σ CTF² side by side, so that a trilinear
/// splat touches one cache line per grid row instead of two.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub(crate) struct Cell {
    /// Σ CTF·F.
    pub data: Complex32,
    /// Σ CTF².
    pub weight: f32,
}

/// Σ CTF·F and Σ CTF² on a padded half grid of (pad·n)/2 + 1 × pad·n × pad·n.
#[derive(Clone)]
pub struct FourierAccumulator {
    n: usize,
    padding: usize,
    big: usize,
    pub(crate) cells: Vec<Cell>,
    count: u64,
}

impl FourierAccumulator {
    /// An empty accumulator for n-pixel particles, padded by `padding` (2 as RELION).
    pub fn new(n: usize, padding: usize) -> Self {
        assert!(padding >= 1, "padding factor must be at least 1");
        let big = padding * n;
        let len = (big / 2 + 1) * big * big;
        FourierAccumulator { n, padding, big, cells: zeroed_cells(len), count: 0 }
    }

    /// Box size of the particles.
    pub fn box_size(&self) -> usize {
        self.n
    }

    /// Padding factor.
    pub fn padding(&self) -> usize {
        self.padding
    }

    /// Number of images inserted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Padded box size.
    pub(crate) fn padded_size(&self) -> usize {
        self.big
    }

    /// Inserts one particle: `spectrum` is its half plane (n/2 + 1 × n), already centred,
    /// un-shifted and multiplied by its CTF; `ctf2` its CTF² (`None`: no CTF, weight 1). `a` is
    /// RELION's rotation matrix of the particle's pose.
    ///
    /// # Panics
    /// If the half planes do not match the box size.
    pub fn insert(&mut self, a: &Mat3, spectrum: &[Complex32], ctf2: Option<&[f32]>) {
        self.insert_shifted(a, spectrum, ctf2, [0.0; 2]);
    }

    /// [`FourierAccumulator::insert`] of the image translated by `shift` pixels (its spectrum
    /// times exp(−2πi k·shift / n), as [`crate::imaging::shift_half_plane`]), without a shifted copy.
    ///
    /// # Panics
    /// If the half planes do not match the box size.
    pub fn insert_shifted(
        &mut self,
        a: &Mat3,
        spectrum: &[Complex32],
        ctf2: Option<&[f32]>,
        shift: [f64; 2],
    ) {
        let n = self.n;
        let hx = n / 2 + 1;
        assert_eq!(spectrum.len(), hx * n, "spectrum half-plane length");
        if let Some(w) = ctf2 {
            assert_eq!(w.len(), hx * n, "CTF² half-plane length");
        }
        let r_max2 = ((n / 2) * (n / 2)) as i64;
        let pad = self.padding as f64;
        // the image's x and y axes in the padded grid
        let along_x = [a[0][0] * pad, a[0][1] * pad, a[0][2] * pad];
        let along_y = [a[1][0] * pad, a[1][1] * pad, a[1][2] * pad];
        for iy in 0..n {
            let ky = signed_frequency(iy, n);
            let Some(width) = r_max2.checked_sub(ky * ky) else { continue };
            let last = ((width as f64).sqrt() as usize).min(hx - 1);
            let row = iy * hx;
            let origin = along_y.map(|c| c * ky as f64);
            for (kx, phase) in (0..=last).zip(shift_phases(n, ky, shift)) {
                let i = row + kx;
                let weight = ctf2.map_or(1.0, |c| c[i]);
                let k = kx as f64;
                let mut p = [0, 1, 2].map(|c| origin[c] + along_x[c] * k);
                let mut value = spectrum[i] * phase;
                if p[0] < 0.0 {
                    p = p.map(|c| -c);
                    value = value.conj();
                }
                self.splat(p, value, weight);
            }
        }
        self.count += 1;
    }

    /// Distributes a value and its weight over the 8 grid points around `p` (trilinear).
    #[inline(always)]
    fn splat(&mut self, p: [f64; 3], value: Complex32, weight: f32) {
        let big = self.big as i64;
        // |p| ≤ big/2, so p + big is positive and truncation is floor
        let f = p.map(|c| (c + big as f64) as i64 - big);
        let t = [0, 1, 2].map(|c| (p[c] - f[c] as f64) as f32);
        let hx = self.big / 2 + 1;
        let wrap = |k: i64| -> usize {
            let k = if k < 0 { k + big } else { k };
            (if k >= big { k - big } else { k }) as usize
        };
        let x0 = f[0] as usize;
        let both = x0 + 1 < hx; // x0 + 1 beyond the half grid only at the very edge of r_max
        for dz in 0..2 {
            let wz = if dz == 0 { 1.0 - t[2] } else { t[2] };
            let z = wrap(f[2] + dz);
            for dy in 0..2 {
                let wy = wz * if dy == 0 { 1.0 - t[1] } else { t[1] };
                let y = wrap(f[1] + dy);
                let i = (z * self.big + y) * hx + x0;
                let w0 = wy * (1.0 - t[0]);
                let cell = &mut self.cells[i];
                cell.data += value * w0;
                cell.weight += weight * w0;
                if both {
                    let w1 = wy * t[0];
                    let cell = &mut self.cells[i + 1];
                    cell.data += value * w1;
                    cell.weight += weight * w1;
                }
            }
        }
    }

    /// Adds another accumulator of the same geometry (threads, half sets, bodies).
    ///
    /// # Panics
    /// If the geometries differ.
    pub fn add(&mut self, other: &FourierAccumulator) {
        assert_eq!((self.n, self.padding), (other.n, other.padding), "accumulator geometry");
        self.cells.par_iter_mut().zip(&other.cells).for_each(|(a, b)| {
            a.data += b.data;
            a.weight += b.weight;
        });
        self.count += other.count;
    }
}

/// An order of the poses (RELION's matrices) in which consecutive particles lie on nearby
/// central planes: what one insertion leaves in the cache, the next one uses. The plane's normal
/// (±, one hemisphere) is binned in equal-area bands of cos θ, walked along φ in alternating
/// directions.
pub fn insertion_order(poses: &[Mat3]) -> Vec<usize> {
    let bands = ((poses.len() as f64 / std::f64::consts::TAU).sqrt().ceil() as usize).max(1);
    let mut keyed: Vec<(usize, f64, usize)> = poses
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let normal = if a[2][2] < 0.0 { a[2].map(|c| -c) } else { a[2] };
            let band = ((normal[2] * bands as f64) as usize).min(bands - 1);
            let phi = normal[1].atan2(normal[0]);
            (band, if band % 2 == 0 { phi } else { -phi }, i)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
    keyed.into_iter().map(|(_, _, i)| i).collect()
}

/// A zeroed grid, backed by transparent huge pages where the kernel gives them on request:
/// insertion touches the grid all over, and with 4 kB pages nearly every splat misses the TLB.
fn zeroed_cells(len: usize) -> Vec<Cell> {
    let layout = std::alloc::Layout::array::<Cell>(len).expect("accumulator size");
    if layout.size() == 0 {
        return Vec::new();
    }
    // SAFETY: a Cell of zero bits is three 0.0 f32; the vector owns the allocation with the
    // layout it was made with.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout).cast::<Cell>();
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        advise_huge_pages(ptr as usize, layout.size());
        Vec::from_raw_parts(ptr, len, len)
    }
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(start: usize, bytes: usize) {
    const HUGE: usize = 2 << 20;
    let (first, end) = (start.next_multiple_of(HUGE), (start + bytes) / HUGE * HUGE);
    if end > first {
        // SAFETY: advice on whole pages inside an allocation we own (not yet touched, so the
        // kernel backs them with huge pages as they fault in); it never changes their contents.
        unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE) };
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_start: usize, _bytes: usize) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::euler_to_matrix;
    use crate::rng::Rng;

    #[test]
    fn views_in_insertion_order_are_neighbours() {
        let mut rng = Rng::new(3);
        let poses: Vec<Mat3> = (0..4000)
            .map(|_| {
                let [r, t, p] = rng.uniform_euler();
                euler_to_matrix(r, t, p)
            })
            .collect();
        let order = insertion_order(&poses);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..poses.len()).collect::<Vec<_>>());
        // angle between consecutive central planes (their normals, up to sign)
        let mean_step = |order: &[usize]| {
            let steps = order.windows(2).map(|w| {
                let (a, b) = (poses[w[0]][2], poses[w[1]][2]);
                (a[0] * b[0] + a[1] * b[1] + a[2] * b[2]).abs().min(1.0).acos()
            });
            steps.sum::<f64>() / (order.len() - 1) as f64
        };
        let (given, ordered) = (mean_step(&(0..poses.len()).collect::<Vec<_>>()), mean_step(&order));
        // random planes are 1 rad apart on average; 4000 views cover the hemisphere at ~0.03 rad
        assert!(given > 0.9, "{given}");
        assert!(ordered < 0.1, "{ordered}");
    }

    #[test]
    fn a_shifted_insertion_is_the_insertion_of_the_shifted_image() {
        let (n, mut rng) = (10, Rng::new(5));
        let spectrum: Vec<Complex32> =
            (0..6 * n).map(|_| Complex32::new(rng.normal() as f32, rng.normal() as f32)).collect();
        let ctf2: Vec<f32> = (0..6 * n).map(|_| rng.uniform() as f32).collect();
        let a = euler_to_matrix(30.0, 70.0, -40.0);
        let shift = [1.3, -2.6];
        let mut shifted = spectrum.clone();
        crate::imaging::shift_half_plane(&mut shifted, n, shift);
        let (mut expected, mut direct) = (FourierAccumulator::new(n, 2), FourierAccumulator::new(n, 2));
        expected.insert(&a, &shifted, Some(&ctf2));
        direct.insert_shifted(&a, &spectrum, Some(&ctf2), shift);
        for (e, d) in expected.cells.iter().zip(&direct.cells) {
            assert!((e.data - d.data).norm() < 1e-5 && (e.weight - d.weight).abs() < 1e-6, "{e:?} {d:?}");
        }
        assert!(expected.cells.iter().any(|c| c.data.norm() > 0.1));
    }

    #[test]
    fn the_grid_starts_at_zero() {
        let acc = FourierAccumulator::new(6, 2);
        assert_eq!(acc.cells.len(), 7 * 12 * 12);
        assert!(acc.cells.iter().all(|c| *c == Cell::default()));
        assert_eq!(std::mem::size_of::<Cell>(), 12);
    }
}
