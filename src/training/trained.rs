//! A trained deformation model read back from its checkpoint: what analysis and reconstruction
//! need (both half models, the reference Gaussians, each particle's latent and half set).

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::data::{Batch, Loader, ParticleSet};
use super::half::{HalfModel, LearningRates};
use super::step::{LatentGuess, LatentPrior, LatentRefinement, StepContext, Work, refine_latents};
use super::trainer::{CheckpointHeader, read_checkpoint};
use crate::imaging::half_plane_shells;
use crate::io::weights::Tensors;
use crate::model::{DEFAULT_SMOOTHING, DisplacementSmoothing, GaussianModel, RigidMotionRemover};
use crate::nn::EncoderConfig;
use crate::particles::ParticleTable;
use crate::{Error, Result};

/// Latents per decoder call when deforming many at once (bounds the buffer to rows × Ng × 3).
const ROWS_PER_CALL: usize = 64;

/// Particles per encoder call.
const ENCODE_BATCH: usize = 64;

/// The inputs of the run a checkpoint comes from (absolute paths, when recorded).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunInputs {
    /// The particle STAR (or .cs) file.
    pub star: Option<PathBuf>,
    /// The consensus map.
    pub initial_model: Option<PathBuf>,
    /// The directory image paths are relative to.
    pub project_dir: Option<PathBuf>,
}

impl RunInputs {
    /// Checkpoint key of the particle file.
    pub const STAR: &'static str = "refinement_star_file";
    /// Checkpoint key of the consensus map.
    pub const MAP: &'static str = "initial_model";
    /// Checkpoint key of the project directory.
    pub const PROJECT_DIR: &'static str = "project_dir";
}

/// Checkpoint key of the particles' refined shifts (P × 2, Å).
pub const SHIFTS: &str = "particles.shift_angstrom";

/// Both half models of a checkpoint and the per-particle results.
pub struct TrainedModel {
    /// The half models (index 0: half set 1).
    pub halves: [HalfModel; 2],
    /// Gaussians fitted to the input map: the frame both halves are registered to.
    pub reference: GaussianModel,
    /// Gaussians that may move (all when `None`).
    pub active: Option<Vec<bool>>,
    /// Per half, the smoothing of the decoder's displacements.
    pub smoothing: [DisplacementSmoothing; 2],
    /// Latent means, particles × `latent`.
    pub latents: Vec<f32>,
    /// Half set (1 or 2) of each particle.
    pub particle_halves: Vec<u8>,
    /// Particles held out for the noise spectrum.
    pub validation: Vec<bool>,
    /// Each particle's refined image shift, Å in its image plane from the input origin
    /// (the refined origin is the input origin minus it); empty where shifts were not refined.
    pub shifts: Vec<[f32; 2]>,
    /// Latent dimensions.
    pub latent: usize,
    /// Field of view of the training box in Å (the decoder's length unit).
    pub box_length: f64,
    /// Training box (pixels).
    pub box_size: usize,
    /// Scale the images were normalised by.
    pub data_scale: f32,
    /// Epochs trained.
    pub epoch: usize,
    /// Where the run's inputs were.
    pub inputs: RunInputs,
}

impl TrainedModel {
    /// Checkpoint key of the width (Å) of the displacements' smoothing (default
    /// [`DEFAULT_SMOOTHING`] when absent).
    pub const SMOOTHING: &'static str = "deformation_smoothing";

    /// Reads the checkpoint at `path`, which must belong to the particles with `fingerprint`.
    ///
    /// # Errors
    /// An unreadable checkpoint, another format or version, or other particles.
    pub fn read(path: &Path, fingerprint: u64, particles: usize) -> Result<Self> {
        let header = read_checkpoint(path, fingerprint, particles)?;
        Self::from_header(&header, &LearningRates::default()).map_err(|e| e.with_path(path))
    }

    /// The model held by a checkpoint's tensors, with optimisers at `rates`.
    ///
    /// # Errors
    /// A missing or misshapen tensor.
    pub fn from_header(header: &CheckpointHeader, rates: &LearningRates) -> Result<Self> {
        let t = &header.tensors;
        let encoder =
            EncoderConfig { box_size: header.box_size, latent: header.latent, ..EncoderConfig::default() };
        let half1 = HalfModel::load("half1", t, encoder, header.decoder, rates)?;
        let half2 = HalfModel::load("half2", t, encoder, header.decoder, rates)?;
        let ng = half1.consensus.len();
        let reference = GaussianModel {
            positions: t.get("reference.positions", &[ng, 3])?.to_vec(),
            amplitudes: t.get("reference.amplitudes", &[ng])?.to_vec(),
            widths: t.get("reference.widths", &[ng])?.to_vec(),
            bonds: Vec::new(),
        };
        let particles = header.halves.len();
        let box_length = t
            .meta("box_length")
            .and_then(|v| v.parse::<u64>().ok())
            .map(f64::from_bits)
            .ok_or_else(|| Error::missing("checkpoint lacks 'box_length'"))?;
        let active: Option<Vec<bool>> =
            t.get("active", &[ng]).ok().map(|a| a.iter().map(|&v| v > 0.5).collect());
        let width = match t.meta(Self::SMOOTHING) {
            Some(w) => w
                .parse()
                .map_err(|_| Error::invalid(format!("'{}' is not a width in Å: {w}", Self::SMOOTHING)))?,
            None => DEFAULT_SMOOTHING,
        };
        let smoothing = [&half1, &half2].map(|h| {
            DisplacementSmoothing::new(
                &h.consensus.positions,
                &h.consensus.amplitudes,
                active.as_deref(),
                width,
            )
        });
        Ok(TrainedModel {
            halves: [half1, half2],
            reference,
            active,
            smoothing,
            latents: t.get("particles.latent", &[particles, header.latent])?.to_vec(),
            particle_halves: header.halves.clone(),
            validation: t.get("particles.validation", &[particles])?.iter().map(|&v| v > 0.5).collect(),
            shifts: t
                .get(SHIFTS, &[particles, 2])
                .map_or_else(|_| Vec::new(), |v| v.chunks_exact(2).map(|s| [s[0], s[1]]).collect()),
            latent: header.latent,
            box_length,
            box_size: header.box_size,
            data_scale: header.data_scale,
            epoch: header.epoch,
            inputs: Self::recorded_inputs(t),
        })
    }

    /// The inputs a checkpoint records (absent keys give `None`).
    pub fn recorded_inputs(t: &Tensors) -> RunInputs {
        RunInputs {
            star: t.meta(RunInputs::STAR).map(PathBuf::from),
            initial_model: t.meta(RunInputs::MAP).map(PathBuf::from),
            project_dir: t.meta(RunInputs::PROJECT_DIR).map(PathBuf::from),
        }
    }

    /// Number of particles.
    pub fn len(&self) -> usize {
        self.particle_halves.len()
    }

    /// Whether there are no particles.
    pub fn is_empty(&self) -> bool {
        self.particle_halves.is_empty()
    }

    /// The latent mean of particle `i`.
    pub fn latent_of(&self, i: usize) -> &[f32] {
        &self.latents[i * self.latent..(i + 1) * self.latent]
    }

    /// The half model (0 or 1) that particle `i` belongs to.
    pub fn half_index(&self, i: usize) -> usize {
        usize::from(self.particle_halves[i] == 2)
    }

    /// Displacements in Å (rows × Ng × 3) of half `half`'s consensus Gaussians for the latents
    /// `z` (rows × latent), smoothed ([`DisplacementSmoothing`]).
    ///
    /// # Panics
    /// If `z` is not a whole number of latent vectors.
    pub fn displacements(&self, half: usize, z: &[f32]) -> Vec<f32> {
        assert_eq!(z.len() % self.latent, 0, "latents of {} dimensions", self.latent);
        let model = &self.halves[half];
        let ng = model.consensus.len();
        let inv = 1.0 / self.box_length as f32;
        let positions: Vec<f32> = model.consensus.positions.iter().map(|&p| p * inv).collect();
        let rows = z.len() / self.latent;
        let mut out = vec![0.0f32; rows * ng * 3];
        let chunk = ROWS_PER_CALL * self.latent;
        let remover = self.active.is_none().then(|| RigidMotionRemover::new(&model.consensus.positions));
        for (z, out) in z.chunks(chunk).zip(out.chunks_mut(ROWS_PER_CALL * ng * 3)) {
            model.decoder.forward(&positions, z, self.active.as_deref(), out);
            if let Some(r) = &remover {
                r.apply(out);
            }
            self.smoothing[half].apply(out, ng);
        }
        let scale = self.box_length as f32;
        out.par_iter_mut().for_each(|d| *d *= scale);
        out
    }

    /// Latents of `particles` under half `half`'s model (whatever half they belong to), as
    /// training ends: the encoder's means, refined on each image as `refinement` says (see
    /// [`refine_latents`]). Images are read through `loader` on the training grid of `set`.
    ///
    /// # Errors
    /// An unreadable image, or a non-finite loss.
    pub fn encode(
        &self,
        half: usize,
        set: &ParticleSet,
        loader: &mut Loader,
        particles: &[usize],
        refinement: LatentRefinement,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<f32>> {
        let (d, m) = (self.latent, self.box_size);
        let model = &self.halves[half];
        let loss = model.loss(m, (m / 2) as f64 - 1.0, true);
        let remover = self.active.is_none().then(|| RigidMotionRemover::new(&model.consensus.positions));
        let ctx = StepContext::forward_only(
            &loss,
            self.active.as_deref(),
            self.box_length as f32,
            remover.as_ref(),
        );
        let shells = half_plane_shells(m);
        let own: Vec<f32> = (0..self.len())
            .filter(|&p| self.half_index(p) == half)
            .flat_map(|p| self.latent_of(p).to_vec())
            .collect();
        let prior = LatentPrior::fit(&own, d);
        let mut work = Work::default();
        let mut out = vec![0.0f32; particles.len() * d];
        let mut batch = Batch::default();
        for (chunk, out) in particles.chunks(ENCODE_BATCH).zip(out.chunks_mut(ENCODE_BATCH * d)) {
            loader.fill(set, chunk, &mut batch)?;
            if refinement.steps > 0 {
                out.copy_from_slice(&refine_latents(
                    model,
                    &mut batch,
                    &ctx,
                    refinement,
                    LatentGuess { prior: &prior, so_far: None },
                    None,
                    &mut work,
                    &shells,
                )?);
            } else {
                let mut log_variance = vec![0.0f32; out.len()];
                let _ = model.encoder.forward(&batch.images, chunk.len(), out, &mut log_variance);
            }
            progress(chunk.len());
        }
        Ok(out)
    }

    /// Moves the origins of `table` (the particles trained on) by the refined shifts.
    pub fn apply_shifts(&self, table: &mut ParticleTable) {
        for (p, s) in table.particles.iter_mut().zip(&self.shifts) {
            p.origin_angstrom[0] -= s[0] as f64;
            p.origin_angstrom[1] -= s[1] as f64;
        }
    }

    /// Deformed positions in Å (Ng × 3) of half `half`'s consensus at latent `z`.
    pub fn deformed(&self, half: usize, z: &[f32]) -> Vec<f32> {
        let mut out = self.displacements(half, z);
        out.iter_mut().zip(&self.halves[half].consensus.positions).for_each(|(d, &c)| *d += c);
        out
    }
}
