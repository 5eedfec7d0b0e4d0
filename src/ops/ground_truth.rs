//! A trained model against the truth of `cryomotion simulate`: how far each particle's learnt
//! deformation is from the true motion of its atoms (for benchmarks on simulated data).

use std::path::Path;

use crate::geometry::ScatteredField;
use crate::linalg::symmetric_eigen;
use crate::model::silent_threshold;
use crate::ops::deformable_backprojection::{TileMotions, Tiling};
use crate::ops::simulate::Source;
use crate::training::TrainedModel;
use crate::{Error, Result};

/// Width (Å) of the kernel that carries the atoms' true displacements to the Gaussian centres.
const ATOM_KERNEL: f32 = 2.0;

/// Each particle's true atom positions, from a simulation's source and its `truth.csv`.
pub struct TrueMotion {
    source: Source,
    /// Conformation coordinates of each particle (the columns after `half_set`).
    pub conformations: Vec<Vec<f64>>,
    /// Mean atom positions over the particles (Å, box-centred as in the simulation).
    pub mean_atoms: Vec<[f32; 3]>,
}

impl TrueMotion {
    /// The motion of `source` for the particles of `truth_csv`.
    ///
    /// # Errors
    /// An unreadable `truth.csv`, or a source without atoms.
    pub fn new(source: Source, truth_csv: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(truth_csv).map_err(|e| Error::io(e, truth_csv))?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
        let first = header.iter().position(|&h| h == "half_set").map(|k| k + 1).ok_or_else(|| {
            Error::missing("no 'half_set' column: not a truth.csv of cryomotion simulate")
                .with_path(truth_csv)
        })?;
        let conformations = lines
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split(',').skip(first).map(|v| v.trim().parse().unwrap_or(f64::NAN)).collect())
            .collect::<Vec<Vec<f64>>>();
        let mut motion = TrueMotion { source, conformations, mean_atoms: Vec::new() };
        let n = motion.conformations.len().max(1);
        let mut mean = vec![[0.0f64; 3]; 0];
        for p in 0..motion.conformations.len() {
            let atoms = motion.atoms(p)?;
            mean.resize(atoms.len(), [0.0; 3]);
            mean.iter_mut().zip(&atoms).for_each(|(m, a)| (0..3).for_each(|k| m[k] += a[k] as f64));
        }
        motion.mean_atoms = mean.iter().map(|m| m.map(|v| (v / n as f64) as f32)).collect();
        Ok(motion)
    }

    /// Number of particles.
    pub fn len(&self) -> usize {
        self.conformations.len()
    }

    /// Whether there are no particles.
    pub fn is_empty(&self) -> bool {
        self.conformations.is_empty()
    }

    /// True atom positions of particle `p` (Å, box-centred).
    ///
    /// # Errors
    /// A source without atoms.
    pub fn atoms(&self, p: usize) -> Result<Vec<[f32; 3]>> {
        let set = self
            .source
            .gaussians_at(&self.conformations[p])
            .ok_or_else(|| Error::unsupported("the simulation's source is a map: its atoms are unknown"))?;
        Ok(set.centres.iter().map(|c| c.map(|v| v as f32)).collect())
    }
}

/// Learnt against true displacements at the consensus Gaussians of one half.
#[derive(Clone, Debug, PartialEq)]
pub struct MotionErrors {
    /// Particles compared.
    pub particles: usize,
    /// Gaussians in the moving domains (true RMS displacement above the median).
    pub moving: usize,
    /// RMS true displacement in the moving domains: the undeformed consensus's error (Å).
    pub undeformed_moving: f64,
    /// RMS of learnt − true displacement in the moving domains (Å).
    pub deformed_moving: f64,
    /// The same, less each Gaussian's error common to all particles (where the half's
    /// consensus differs from the mean conformation): the error of the per-particle motion (Å).
    pub varying_moving: f64,
    /// The same over all Gaussians (Å).
    pub undeformed_all: f64,
    /// The same over all Gaussians (Å).
    pub deformed_all: f64,
    /// The per-particle part over all Gaussians (Å).
    pub varying_all: f64,
    /// Median over the Gaussians of their RMS error (Å): robust to a few strays.
    pub median_gaussian_error: f64,
    /// Gaussians without density (amplitude below [`crate::model::SILENT_AMPLITUDE`] of the median): the
    /// images do not see them, so the data says nothing of where the decoder moves them.
    pub dead: usize,
    /// RMS true displacement in the moving domains, each Gaussian weighted by its amplitude (Å).
    pub weighted_undeformed_moving: f64,
    /// RMS error in the moving domains, each Gaussian weighted by its amplitude (Å): the error
    /// of the model's density, as the images and deformable backprojection's tiles see it.
    pub weighted_deformed_moving: f64,
    /// RMS learnt displacement in the moving domains (Å): below the true one when the
    /// decoder's motion is shrunk.
    pub learnt_moving: f64,
    /// Cosine between learnt and true displacements over the moving domains (all particles
    /// and Gaussians as one vector): how well the motion's direction is learnt, whatever its size.
    pub cosine_moving: f64,
    /// RMS error in the moving domains of the best affine read-out of the true displacements
    /// from the latents (fitted on one half of the particles, scored on the other, both ways):
    /// what the latents allow a decoder that is linear in them, whatever the decoder learnt.
    pub readout_moving: f64,
}

/// Compares half `half`'s learnt deformations of `particles` with the true motion: at each
/// consensus Gaussian, the true displacement (atoms' displacement from their mean positions,
/// kernel-averaged onto the Gaussian's centre) against the decoder's displacement.
///
/// # Errors
/// A source without atoms.
pub fn motion_errors(
    model: &TrainedModel,
    truth: &TrueMotion,
    half: usize,
    particles: &[usize],
) -> Result<MotionErrors> {
    let centres: Vec<[f32; 3]> =
        model.halves[half].consensus.positions.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
    let ng = centres.len();
    let field = ScatteredField::new(&truth.mean_atoms, ATOM_KERNEL);
    let z: Vec<f32> = particles.iter().flat_map(|&p| model.latent_of(p).to_vec()).collect();
    let learnt = model.displacements(half, &z);
    let mut true_sq = vec![0.0f64; ng];
    let mut error_sq = vec![0.0f64; ng];
    let mut error_sum = vec![[0.0f64; 3]; ng];
    let (mut learnt_sq, mut dot) = (vec![0.0f64; ng], vec![0.0f64; ng]);
    let mut true_displacements = vec![0.0f32; particles.len() * ng * 3];
    for (row, &p) in particles.iter().enumerate() {
        let atoms = truth.atoms(p)?;
        let moved: Vec<[f32; 3]> = atoms
            .iter()
            .zip(&truth.mean_atoms)
            .map(|(a, m)| [a[0] - m[0], a[1] - m[1], a[2] - m[2]])
            .collect();
        for (g, c) in centres.iter().enumerate() {
            let u = field.sample(&moved, *c);
            let v = &learnt[(row * ng + g) * 3..(row * ng + g) * 3 + 3];
            true_displacements[(row * ng + g) * 3..(row * ng + g) * 3 + 3].copy_from_slice(&u);
            true_sq[g] += (0..3).map(|k| (u[k] as f64).powi(2)).sum::<f64>();
            error_sq[g] += (0..3).map(|k| (v[k] as f64 - u[k] as f64).powi(2)).sum::<f64>();
            (0..3).for_each(|k| error_sum[g][k] += v[k] as f64 - u[k] as f64);
            learnt_sq[g] += (0..3).map(|k| (v[k] as f64).powi(2)).sum::<f64>();
            dot[g] += (0..3).map(|k| v[k] as f64 * u[k] as f64).sum::<f64>();
        }
    }
    let mut sorted = true_sq.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(ng / 2).copied().unwrap_or(0.0);
    let moving: Vec<usize> = (0..ng).filter(|&g| true_sq[g] > median).collect();
    // each Gaussian counted alike, or weighted by its amplitude (the density it carries)
    let amplitudes = &model.halves[half].consensus.amplitudes;
    let (alike, weights) = (vec![1.0f64; ng], amplitudes.iter().map(|&a| a as f64).collect::<Vec<_>>());
    let all: Vec<usize> = (0..ng).collect();
    let rms = |values: &[f64], set: &[usize]| weighted_rms(values, &alike, set, particles.len());
    let count = particles.len().max(1) as f64;
    let varying_sq: Vec<f64> =
        (0..ng).map(|g| error_sq[g] - error_sum[g].iter().map(|s| s * s).sum::<f64>() / count).collect();
    Ok(MotionErrors {
        particles: particles.len(),
        moving: moving.len(),
        undeformed_moving: rms(&true_sq, &moving),
        deformed_moving: rms(&error_sq, &moving),
        varying_moving: rms(&varying_sq, &moving),
        undeformed_all: rms(&true_sq, &all),
        deformed_all: rms(&error_sq, &all),
        varying_all: rms(&varying_sq, &all),
        learnt_moving: rms(&learnt_sq, &moving),
        cosine_moving: {
            let sum = |v: &[f64]| moving.iter().map(|&g| v[g]).sum::<f64>();
            sum(&dot) / (sum(&true_sq) * sum(&learnt_sq)).sqrt().max(f64::MIN_POSITIVE)
        },
        readout_moving: affine_readout_error(&z, &true_displacements, &moving, ng),
        dead: {
            let threshold = silent_threshold(amplitudes);
            amplitudes.iter().filter(|&&a| a < threshold).count()
        },
        weighted_undeformed_moving: weighted_rms(&true_sq, &weights, &moving, particles.len()),
        weighted_deformed_moving: weighted_rms(&error_sq, &weights, &moving, particles.len()),
        median_gaussian_error: {
            let mut e: Vec<f64> = error_sq.iter().map(|s| (s / count).sqrt()).collect();
            e.sort_by(f64::total_cmp);
            e.get(ng / 2).copied().unwrap_or(0.0)
        },
    })
}

/// √(Σ w_g s_g / (particles · Σ w_g)) over the Gaussians `set`, where s_g is a sum of squares
/// over `particles` particles: a weighted RMS per Gaussian and particle.
fn weighted_rms(sums: &[f64], weights: &[f64], set: &[usize], particles: usize) -> f64 {
    let total: f64 = set.iter().map(|&g| weights[g]).sum();
    let sum: f64 = set.iter().map(|&g| weights[g] * sums[g]).sum();
    (sum / (total * particles as f64).max(f64::MIN_POSITIVE)).sqrt()
}

/// RMS held-out error of the affine least-squares map from latents (`z`, one row per particle)
/// to the displacements (`targets`, ng × 3 per particle) of the Gaussians `selected`: fitted on
/// the even rows and scored on the odd ones, and the other way round.
fn affine_readout_error(z: &[f32], targets: &[f32], selected: &[usize], ng: usize) -> f64 {
    let rows = targets.len() / (ng * 3).max(1);
    if rows < 2 || selected.is_empty() {
        return f64::NAN;
    }
    let d = z.len() / rows;
    let features = |r: usize| std::iter::once(1.0f64).chain(z[r * d..(r + 1) * d].iter().map(|&v| v as f64));
    let outputs = selected.len() * 3;
    let target = |r: usize, o: usize| targets[(r * ng + selected[o / 3]) * 3 + o % 3] as f64;
    let (mut error, mut count) = (0.0f64, 0usize);
    for fold in 0..2 {
        let fit: Vec<usize> = (0..rows).filter(|r| r % 2 == fold).collect();
        let k = d + 1;
        let (mut gram, mut cross) = (vec![0.0f64; k * k], vec![0.0f64; k * outputs]);
        for &r in &fit {
            let x: Vec<f64> = features(r).collect();
            for i in 0..k {
                (0..k).for_each(|j| gram[i * k + j] += x[i] * x[j]);
                (0..outputs).for_each(|o| cross[i * outputs + o] += x[i] * target(r, o));
            }
        }
        // pseudo-inverse of the Gram matrix, so that constant latent dimensions do no harm
        let (values, vectors) = symmetric_eigen(&gram, k);

        let top = values.iter().copied().fold(0.0f64, f64::max);
        let mut inverse = vec![0.0f64; k * k];
        for (m, &value) in values.iter().enumerate() {
            if value > 1e-9 * top {
                for i in 0..k {
                    (0..k)
                        .for_each(|j| inverse[i * k + j] += vectors[i * k + m] * vectors[j * k + m] / value);
                }
            }
        }
        for r in (0..rows).filter(|r| r % 2 != fold) {
            let x: Vec<f64> = features(r).collect();
            let weights: Vec<f64> = (0..k).map(|i| (0..k).map(|j| inverse[i * k + j] * x[j]).sum()).collect();
            for o in 0..outputs {
                let predicted: f64 = (0..k).map(|i| weights[i] * cross[i * outputs + o]).sum();
                error += (predicted - target(r, o)).powi(2);
            }
            count += selected.len();
        }
    }
    (error / count.max(1) as f64).sqrt()
}

/// Where deformable backprojection puts each truly moved atom back, against its true
/// consensus position, over the atoms of the moving domains (RMS over atoms and particles, Å).
#[derive(Clone, Debug, PartialEq)]
pub struct InverseErrors {
    /// Atoms in the moving domains (true RMS displacement above the median).
    pub moving_atoms: usize,
    /// |y − x̄|: where plain reconstruction leaves the atom (its true displacement).
    pub uncorrected: f64,
    /// |x̄ + d(x̄) − y|: the forward model's error at the atom (its learnt displacement field,
    /// interpolated from the consensus Gaussians), which bounds the recovery.
    pub forward: f64,
    /// |Σₖ mₖ(x̄) Tₖ⁻¹(y) − x̄|: the consensus position recovered by the tiles' inverse
    /// transforms, blended with the tile masks as the backprojection blends its tile maps.
    pub recovered: f64,
}

/// [`InverseErrors`] of half `half`'s `particles`: each atom's true position y in the
/// particle's conformation is taken back through the particle's tile transforms and compared
/// with its mean position x̄ (the consensus frame).
///
/// # Errors
/// A source without atoms.
pub fn inverse_errors(
    model: &TrainedModel,
    truth: &TrueMotion,
    tiling: &Tiling,
    motions: &TileMotions,
    pixel_size: f64,
    half: usize,
    particles: &[usize],
) -> Result<InverseErrors> {
    let mean = &truth.mean_atoms;
    let mut amount = vec![0.0f64; mean.len()];
    for &p in particles {
        for (a, (y, m)) in amount.iter_mut().zip(truth.atoms(p)?.iter().zip(mean)) {
            *a += (0..3).map(|k| ((y[k] - m[k]) as f64).powi(2)).sum::<f64>();
        }
    }
    let mut sorted = amount.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(mean.len() / 2).copied().unwrap_or(0.0);
    let moving: Vec<usize> = (0..mean.len()).filter(|&i| amount[i] > median).collect();
    let masks: Vec<Vec<f32>> =
        moving.iter().map(|&i| tiling.weights_at(mean[i].map(f64::from), pixel_size)).collect();
    let centres: Vec<[f32; 3]> =
        model.halves[half].consensus.positions.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
    let field = ScatteredField::new(&centres, 2.0 * ScatteredField::new(&centres, 10.0).mean_spacing());
    let (mut uncorrected, mut forward, mut recovered) = (0.0f64, 0.0f64, 0.0f64);
    for &p in particles {
        let atoms = truth.atoms(p)?;
        let learnt: Vec<[f32; 3]> = model
            .displacements(half, model.latent_of(p))
            .chunks_exact(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect();
        for (&i, weights) in moving.iter().zip(&masks) {
            let (x, y) = (mean[i].map(f64::from), atoms[i].map(f64::from));
            let d = field.sample(&learnt, mean[i]);
            let mut back = [0.0f64; 3];
            for (rigid, &w) in motions.transforms[p].iter().zip(weights) {
                let b = rigid.apply_inverse(y);
                (0..3).for_each(|k| back[k] += w as f64 * b[k]);
            }
            let sq = |a: [f64; 3], b: [f64; 3]| (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>();
            uncorrected += sq(y, x);
            forward += sq([0, 1, 2].map(|k| x[k] + d[k] as f64), y);
            recovered += sq(back, x);
        }
    }
    let count = (moving.len() * particles.len()).max(1) as f64;
    Ok(InverseErrors {
        moving_atoms: moving.len(),
        uncorrected: (uncorrected / count).sqrt(),
        forward: (forward / count).sqrt(),
        recovered: (recovered / count).sqrt(),
    })
}

#[cfg(test)]
mod tests {
    use super::{affine_readout_error, weighted_rms};
    use crate::rng::Rng;

    /// A weighted RMS by hand; a stray without weight (a Gaussian without density) adds nothing.
    #[test]
    fn weighted_rms_ignores_gaussians_without_weight() {
        // two particles; Gaussian 0: errors 3 and 4 (sum of squares 25), Gaussian 1 a stray
        // without amplitude, Gaussian 2: errors 1 and 1
        let sums = [25.0, 1e6, 2.0];
        let weights = [2.0, 0.0, 1.0];
        let expected = ((2.0 * 25.0 + 2.0) / (3.0f64 * 2.0)).sqrt();
        assert!((weighted_rms(&sums, &weights, &[0, 1, 2], 2) - expected).abs() < 1e-12);
        // equal weights: the plain RMS
        let plain = ((25.0 + 2.0) / 4.0f64).sqrt();
        assert!((weighted_rms(&sums, &[1.0; 3], &[0, 2], 2) - plain).abs() < 1e-12);
    }

    /// Displacements affine in two of three latent dimensions (the third constant) are read out
    /// exactly; added noise of known RMS is what remains (the fit's error on held-out rows is
    /// the noise's, up to the few fitted parameters).
    #[test]
    fn affine_readout_recovers_an_affine_motion() {
        let (rows, ng, d) = (400, 5, 3);
        let mut rng = Rng::new(3);
        let z: Vec<f32> = (0..rows * d).map(|i| if i % d == 2 { 0.5 } else { rng.normal() as f32 }).collect();
        let exact = |noise: f32, rng: &mut Rng| -> Vec<f32> {
            (0..rows * ng * 3)
                .map(|i| {
                    let (r, o) = (i / (ng * 3), i % (ng * 3));
                    let (a, b) = (z[r * d], z[r * d + 1]);
                    o as f32 * 0.3 + (1.0 + o as f32) * a - 2.0 * b + noise * rng.normal() as f32
                })
                .collect()
        };
        let selected = [0, 2, 4];
        let clean = affine_readout_error(&z, &exact(0.0, &mut rng), &selected, ng);
        assert!(clean < 1e-4, "{clean}");
        let noisy = affine_readout_error(&z, &exact(0.5, &mut rng), &selected, ng);
        // three components of noise 0.5 per Gaussian
        assert!((noisy - 0.5 * 3f64.sqrt()).abs() < 0.04, "{noisy}");
    }
}
