//! Gaussians without density: once training has faded a Gaussian's amplitude to almost zero,
//! no image sees it, so the data says nothing of where the decoder moves it (it wanders at
//! random). Such a Gaussian is moved with the density around it instead: its displacement is
//! the average of its nearest live neighbours', weighted by their amplitudes and a Gaussian of
//! their distance.

/// Amplitude, as a fraction of the median, below which a Gaussian counts as without density.
pub const SILENT_AMPLITUDE: f32 = 0.1;

/// The amplitude below which a Gaussian of a model with these amplitudes is silent.
pub fn silent_threshold(amplitudes: &[f32]) -> f32 {
    let mut sorted = amplitudes.to_vec();
    sorted.sort_by(f32::total_cmp);
    SILENT_AMPLITUDE * sorted.get(amplitudes.len() / 2).copied().unwrap_or(0.0)
}

/// Live neighbours whose displacements a silent Gaussian takes on.
const NEIGHBOURS: usize = 8;

/// For each silent Gaussian, the live neighbours it moves with and their weights (summing to 1).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SilentGaussians {
    targets: Vec<(usize, Vec<(usize, f32)>)>,
}

impl SilentGaussians {
    /// The silent Gaussians of a model (positions Ng × 3, amplitudes Ng), and the live
    /// neighbours each moves with. Only Gaussians that may move (`active`, the mask's) are
    /// moved. The kernel's width is the mean distance to the neighbours used.
    pub fn new(positions: &[f32], amplitudes: &[f32], active: Option<&[bool]>) -> Self {
        let ng = amplitudes.len();
        let threshold = silent_threshold(amplitudes);
        let live: Vec<usize> = (0..ng).filter(|&j| amplitudes[j] >= threshold).collect();
        let at = |i: usize| [positions[3 * i], positions[3 * i + 1], positions[3 * i + 2]];
        let mut targets = Vec::new();
        for i in (0..ng).filter(|&i| amplitudes[i] < threshold && active.is_none_or(|a| a[i])) {
            let p = at(i);
            let mut near: Vec<(f32, usize)> = live
                .iter()
                .map(|&j| {
                    let q = at(j);
                    ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2), j)
                })
                .collect();
            near.sort_by(|a, b| a.0.total_cmp(&b.0));
            near.truncate(NEIGHBOURS);
            if near.is_empty() {
                continue;
            }
            let width_sq = (near.iter().map(|(d, _)| d.sqrt()).sum::<f32>() / near.len() as f32).powi(2);
            let weights: Vec<f32> =
                near.iter().map(|&(d, j)| amplitudes[j] * (-d / (2.0 * width_sq.max(1e-12))).exp()).collect();
            let total: f32 = weights.iter().sum();
            if total > 0.0 {
                targets.push((i, near.iter().zip(&weights).map(|(&(_, j), &w)| (j, w / total)).collect()));
            }
        }
        SilentGaussians { targets }
    }

    /// How many Gaussians move with their neighbours.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether every Gaussian has density.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Sets the silent Gaussians' displacements in `fields` (rows × Ng × 3) to their live
    /// neighbours' weighted average.
    pub fn apply(&self, fields: &mut [f32], ng: usize) {
        if self.targets.is_empty() || ng == 0 {
            return;
        }
        for field in fields.chunks_exact_mut(ng * 3) {
            for (i, neighbours) in &self.targets {
                let mut d = [0.0f32; 3];
                for &(j, w) in neighbours {
                    (0..3).for_each(|k| d[k] += w * field[3 * j + k]);
                }
                field[3 * i..3 * i + 3].copy_from_slice(&d);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_gaussians_take_their_neighbours_weighted_motion() {
        // Gaussians 0 and 1 live at ∓1 Å on x (amplitudes 1 and 3), 2 silent at the origin,
        // 3 live 10 Å away (amplitude 1)
        let positions = [-1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 10.0, 0.0, 0.0];
        let amplitudes = [1.0, 3.0, 0.01, 1.0];
        let silent = SilentGaussians::new(&positions, &amplitudes, None);
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
    fn gaussians_outside_the_mask_and_models_with_density_everywhere_are_left_alone() {
        let positions = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 2.0, 0.0, 0.0];
        assert!(SilentGaussians::new(&positions, &[1.0, 0.5, 2.0], None).is_empty());
        let active = [true, false, true];
        assert!(SilentGaussians::new(&positions, &[1.0, 0.0, 2.0], Some(&active)).is_empty());
    }
}
