//! Smoothing of the learnt displacement field. The decoder moves each Gaussian on its own, and
//! at low SNR each carries its own noise, while a molecule's motion is smooth over a few Å: each
//! Gaussian's displacement is replaced by a local linear fit to the displacements of the
//! Gaussians around it (weighted by their amplitude and a Gaussian of distance). A linear fit,
//! not an average, so that a domain's rotation and a Gaussian at the molecule's surface (its
//! neighbours all on one side) keep their motion. Gaussians without density (amplitude faded to
//! almost zero, so no image sees where the decoder moves them) weigh nothing in any fit: they
//! take the motion of the density around them.

use rayon::prelude::*;

use crate::linalg::symmetric_eigen;

/// Amplitude, as a fraction of the median, below which a Gaussian counts as without density.
pub const SILENT_AMPLITUDE: f32 = 0.1;

/// Default width (Å, standard deviation) of the smoothing kernel.
pub const DEFAULT_SMOOTHING: f32 = 5.0;

/// The amplitude below which a Gaussian of a model with these amplitudes is silent.
pub fn silent_threshold(amplitudes: &[f32]) -> f32 {
    let mut sorted = amplitudes.to_vec();
    sorted.sort_by(f32::total_cmp);
    SILENT_AMPLITUDE * sorted.get(amplitudes.len() / 2).copied().unwrap_or(0.0)
}

/// Neighbours in one Gaussian's fit: the nearest, within two kernel widths, but at least
/// `MIN_NEIGHBOURS` (fewer make the fitted slopes noisy where Gaussians are sparse: with at
/// least 8, one half of the benchmark's hardest dataset erred by 0.76 of the motion instead of
/// 0.49) and at most `MAX_NEIGHBOURS`.
const MIN_NEIGHBOURS: usize = 48;
const MAX_NEIGHBOURS: usize = 128;

/// A Gaussian with fewer neighbours with density than this within two kernel widths is a stray
/// (seen: a few Gaussians gathered on one spot 12 Å out from the molecule, one of them moved
/// 30 Å by the decoder): it takes the motion of the density around it as a silent one does.
const STRAY_NEIGHBOURS: usize = 3;

/// Neighbours a silent Gaussian moves with when the field is not smoothed.
const SILENT_NEIGHBOURS: usize = 8;

/// Ridge on the fit's linear terms, relative to their mean weighted spread (keeps a fit over
/// neighbours on a line or a plane defined).
const RIDGE: f64 = 1e-3;

/// A sparse linear map of displacement fields: for each Gaussian it changes, the neighbours
/// and weights that give its new displacement.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DisplacementSmoothing {
    rows: Vec<(usize, Vec<(usize, f32)>)>,
}

impl DisplacementSmoothing {
    /// The smoothing of a model's fields (positions Ng × 3 in Å, amplitudes Ng) with a kernel
    /// of `width` Å; only Gaussians that may move (`active`, the mask's) are changed or used.
    /// `width` 0 changes only the silent Gaussians: each takes the average of its 8 nearest
    /// live neighbours, weighted by amplitude and a Gaussian as wide as their mean distance.
    pub fn new(positions: &[f32], amplitudes: &[f32], active: Option<&[bool]>, width: f32) -> Self {
        let ng = amplitudes.len();
        let threshold = silent_threshold(amplitudes);
        let may_move = |i: usize| active.is_none_or(|a| a[i]);
        let at = |i: usize| [positions[3 * i], positions[3 * i + 1], positions[3 * i + 2]];
        let distance_sq = |i: usize, j: usize| {
            let (p, q) = (at(i), at(j));
            (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2)
        };
        let dense: Vec<usize> = (0..ng).filter(|&j| amplitudes[j] >= threshold && may_move(j)).collect();
        let stray = |i: usize| {
            width > 0.0
                && dense.iter().filter(|&&j| j != i && distance_sq(i, j) <= 4.0 * width * width).count()
                    < STRAY_NEIGHBOURS
        };
        let live: Vec<usize> = dense.par_iter().copied().filter(|&j| !stray(j)).collect();
        // amplitude × a Gaussian of distance, for each neighbour (squared distance, index)
        let kernel = |near: &[(f32, usize)], width_sq: f64| -> Vec<f64> {
            near.iter()
                .map(|&(d, j)| f64::from(amplitudes[j]) * (-f64::from(d) / (2.0 * width_sq)).exp())
                .collect()
        };
        let changed: Vec<usize> =
            (0..ng).filter(|&i| may_move(i) && (width > 0.0 || amplitudes[i] < threshold)).collect();
        let rows = changed
            .into_par_iter()
            .filter_map(|i| {
                let p = at(i);
                let mut near: Vec<(f32, usize)> = live.iter().map(|&j| (distance_sq(i, j), j)).collect();
                if near.len() > MAX_NEIGHBOURS {
                    near.select_nth_unstable_by(MAX_NEIGHBOURS, |a, b| a.0.total_cmp(&b.0));
                    near.truncate(MAX_NEIGHBOURS);
                }
                near.sort_by(|a, b| a.0.total_cmp(&b.0));
                let weights = if width > 0.0 {
                    let within = near.iter().take_while(|(d, _)| *d <= 4.0 * width * width).count();
                    near.truncate(within.max(MIN_NEIGHBOURS));
                    let offsets: Vec<[f64; 3]> = near
                        .iter()
                        .map(|&(_, j)| std::array::from_fn(|k| f64::from(at(j)[k] - p[k])))
                        .collect();
                    local_linear_weights(&offsets, &kernel(&near, f64::from(width * width)))?
                } else {
                    near.truncate(SILENT_NEIGHBOURS);
                    let mean = near.iter().map(|(d, _)| d.sqrt()).sum::<f32>() / near.len().max(1) as f32;
                    let kernel = kernel(&near, f64::from(mean * mean).max(1e-12));
                    let total: f64 = kernel.iter().sum();
                    (total > 0.0).then(|| kernel.iter().map(|w| w / total).collect())?
                };
                Some((i, near.iter().zip(weights).map(|(&(_, j), w)| (j, w as f32)).collect()))
            })
            .collect();
        DisplacementSmoothing { rows }
    }

    /// How many Gaussians the smoothing changes.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Smooths the fields (rows × Ng × 3) in place.
    pub fn apply(&self, fields: &mut [f32], ng: usize) {
        if self.rows.is_empty() || ng == 0 {
            return;
        }
        fields.par_chunks_exact_mut(ng * 3).for_each_init(
            || vec![0.0f32; ng * 3],
            |before, field| {
                before.copy_from_slice(field);
                for (i, neighbours) in &self.rows {
                    let mut d = [0.0f32; 3];
                    for &(j, w) in neighbours {
                        (0..3).for_each(|k| d[k] += w * before[3 * j + k]);
                    }
                    field[3 * i..3 * i + 3].copy_from_slice(&d);
                }
            },
        );
    }
}

/// The weights that give, from values at `offsets` (from the point of evaluation), the value
/// at the point of a fit of an affine function weighted by `kernel`: the first row of
/// (XᵀWX)⁻¹XᵀW, X's rows (1, offset). `None` when the weights are all zero.
fn local_linear_weights(offsets: &[[f64; 3]], kernel: &[f64]) -> Option<Vec<f64>> {
    let design: Vec<[f64; 4]> = offsets.iter().map(|o| [1.0, o[0], o[1], o[2]]).collect();
    let mut normal = [0.0f64; 16];
    for (x, &w) in design.iter().zip(kernel) {
        for (u, row) in normal.chunks_exact_mut(4).enumerate() {
            row.iter_mut().zip(x).for_each(|(n, xv)| *n += w * x[u] * xv);
        }
    }
    if normal[0] <= 0.0 {
        return None;
    }
    let spread = (normal[5] + normal[10] + normal[15]) / 3.0;
    for d in [5, 10, 15] {
        normal[d] += RIDGE * spread;
    }
    // first row of the inverse, from the eigen-decomposition (the ridge keeps it positive definite)
    let (values, vectors) = symmetric_eigen(&normal, 4);
    let c: [f64; 4] =
        std::array::from_fn(|u| (0..4).map(|m| vectors[m] * vectors[u * 4 + m] / values[m]).sum());
    Some(design.iter().zip(kernel).map(|(x, &w)| w * (0..4).map(|u| c[u] * x[u]).sum::<f64>()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Positions of `n` Gaussians scattered through a 30 Å ball (a fixed pseudo-random draw).
    fn scattered(n: usize) -> Vec<f32> {
        let mut state = 12345u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) as f64 / (1u64 << 31) as f64) as f32 * 2.0 - 1.0
        };
        let mut out = Vec::new();
        while out.len() < 3 * n {
            let p = [next(), next(), next()];
            if p.iter().map(|c| c * c).sum::<f32>() <= 1.0 {
                out.extend(p.map(|c| 15.0 * c));
            }
        }
        out
    }

    /// The affine field u(x) = t + A x at each Gaussian (one row).
    fn affine_field(positions: &[f32]) -> Vec<f32> {
        let a = [[0.02, -0.1, 0.05], [0.1, 0.01, -0.03], [-0.05, 0.03, -0.02]];
        let t = [1.0, -2.0, 0.5];
        positions
            .chunks_exact(3)
            .flat_map(|x| (0..3).map(move |k| t[k] + (0..3).map(|l| a[k][l] * x[l]).sum::<f32>()))
            .collect()
    }

    #[test]
    fn affine_motions_pass_unchanged_even_at_the_surface_and_for_silent_gaussians() {
        let positions = scattered(300);
        // amplitudes 0.5..1.5, every tenth Gaussian silent
        let amplitudes: Vec<f32> =
            (0..300).map(|i| if i % 10 == 3 { 0.0 } else { 0.5 + (i % 7) as f32 / 6.0 }).collect();
        let smoothing = DisplacementSmoothing::new(&positions, &amplitudes, None, 5.0);
        assert_eq!(smoothing.len(), 300);
        let expected = affine_field(&positions);
        let mut fields = expected.clone();
        fields[39] = 40.0; // a silent Gaussian (13) wandered off
        smoothing.apply(&mut fields, 300);
        let worst = fields.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        // the ridge biases the slope by ~1e-3 of it: ≪ 0.01 Å over a 5 Å kernel
        assert!(worst < 0.01, "largest change of an affine field {worst} Å");
    }

    #[test]
    fn independent_noise_on_each_gaussian_shrinks() {
        let positions = scattered(400);
        let amplitudes = vec![1.0f32; 400];
        let smoothing = DisplacementSmoothing::new(&positions, &amplitudes, None, 5.0);
        let truth = affine_field(&positions);
        let mut state = 7u32;
        let mut noise = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as f32 / u32::MAX as f32 - 0.5 // uniform, SD 0.29
        };
        let mut fields: Vec<f32> = truth.iter().map(|t| t + noise()).collect();
        let rms = |f: &[f32]| {
            (f.iter().zip(&truth).map(|(a, b)| (a - b).powi(2)).sum::<f32>() / f.len() as f32).sqrt()
        };
        let before = rms(&fields);
        smoothing.apply(&mut fields, 400);
        let after = rms(&fields);
        // a linear fit over ~25 effective neighbours leaves ~1/4 of the noise (1/3 at the surface)
        assert!(after < 0.45 * before, "noise {before} → {after}");
    }

    #[test]
    fn local_linear_weights_sum_to_one_with_no_first_moment() {
        // an asymmetric neighbourhood: the weights reproduce constants and linear functions
        let offsets =
            [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.5], [-1.0, -1.0, 0.0], [0.5, 0.5, -2.0]];
        let kernel = [1.0, 0.5, 2.0, 1.0, 0.3];
        let w = local_linear_weights(&offsets, &kernel).unwrap();
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        for k in 0..3 {
            let moment: f64 = w.iter().zip(&offsets).map(|(w, o)| w * o[k]).sum();
            assert!(moment.abs() < 1e-2, "first moment {k}: {moment}"); // the ridge's bias
        }
        // symmetric neighbours of equal weight: the plain average
        let offsets = [
            [1.0, 0.0, 0.0],
            [-1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, -1.0, 0.0],
            [0.0, 0.0, 1.0],
            [0.0, 0.0, -1.0],
        ];
        let w = local_linear_weights(&offsets, &[1.0; 6]).unwrap();
        assert!(w.iter().all(|w| (w - 1.0 / 6.0).abs() < 1e-12), "{w:?}");
        assert!(local_linear_weights(&offsets, &[0.0; 6]).is_none());
    }

    #[test]
    fn without_smoothing_silent_gaussians_take_their_neighbours_weighted_motion() {
        // Gaussians 0 and 1 live at ∓1 Å on x (amplitudes 1 and 3), 2 silent at the origin,
        // 3 live 10 Å away (amplitude 1)
        let positions = [-1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 10.0, 0.0, 0.0];
        let amplitudes = [1.0, 3.0, 0.01, 1.0];
        let silent = DisplacementSmoothing::new(&positions, &amplitudes, None, 0.0);
        assert_eq!(silent.len(), 1);
        let mut fields = vec![1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 9.0, 9.0, 9.0, 0.0, 0.0, 5.0];
        let before = fields.clone();
        silent.apply(&mut fields, 4);
        // kernel width: mean distance to the live ones, (1 + 1 + 10) / 3 = 4 Å
        let kernel = |d: f32| (-d * d / (2.0 * 16.0)).exp();
        let w = [kernel(1.0), 3.0 * kernel(1.0), kernel(10.0)];
        let total: f32 = w.iter().sum();
        let expected = [w[0] / total, 2.0 * w[1] / total, 5.0 * w[2] / total];
        for k in 0..3 {
            assert!((fields[6 + k] - expected[k]).abs() < 1e-6, "{:?} vs {expected:?}", &fields[6..9]);
        }
        // live Gaussians keep their own motion
        assert_eq!(fields[..6], before[..6]);
        assert_eq!(fields[9..], before[9..]);
    }

    #[test]
    fn gaussians_outside_the_mask_neither_move_nor_count() {
        let positions: Vec<f32> = (0..6).flat_map(|i| [i as f32, 0.0, 0.0]).collect();
        assert!(DisplacementSmoothing::new(&positions[..9], &[1.0, 0.5, 2.0], None, 0.0).is_empty());
        let active = [true, false, true];
        assert!(DisplacementSmoothing::new(&positions[..9], &[1.0, 0.0, 2.0], Some(&active), 0.0).is_empty());
        // smoothed: the masked Gaussian keeps its (zero) motion and does not pull the others
        let active = [true, true, false, true, true, true];
        let smoothing = DisplacementSmoothing::new(&positions, &[1.0; 6], Some(&active), 5.0);
        assert_eq!(smoothing.len(), 5);
        let mut fields: Vec<f32> = active.iter().flat_map(|&a| [f32::from(u8::from(a)), 0.0, 0.0]).collect();
        smoothing.apply(&mut fields, 6);
        assert_eq!(fields[6..9], [0.0; 3]);
        for i in [0, 1, 3, 4, 5] {
            assert!((fields[3 * i] - 1.0).abs() < 1e-5 && fields[3 * i + 1].abs() < 1e-6, "{fields:?}");
        }
    }

    #[test]
    fn a_stray_gaussian_takes_the_motion_of_the_density_around_it() {
        // a cube of 27 Gaussians 2 Å apart moving by (1, 0, 0), and one 20 Å away that the
        // decoder moved by 30 Å: it has no neighbours within two kernel widths
        let mut positions: Vec<f32> =
            (0..27).flat_map(|i| [i % 3, i / 3 % 3, i / 9].map(|c| 2.0 * c as f32)).collect();
        positions.extend([22.0, 2.0, 2.0]);
        let smoothing = DisplacementSmoothing::new(&positions, &[1.0; 28], None, 5.0);
        let mut fields: Vec<f32> = (0..28).flat_map(|_| [1.0, 0.0, 0.0]).collect();
        fields[27 * 3 + 1] = 30.0;
        smoothing.apply(&mut fields, 28);
        assert!(
            fields.chunks_exact(3).all(|d| (d[0] - 1.0).abs() < 1e-4 && d[1].abs() < 1e-4),
            "{:?}",
            &fields[81..]
        );
    }
}
