//! The training schedule over both half sets, epoch by epoch, and its checkpoints.
//!
//! Every random draw is keyed by (seed, epoch, half, batch), so an epoch depends only on the
//! state at its start: a run resumed from a checkpoint continues bit for bit as an
//! uninterrupted one with the same seed and thread count.

use std::path::Path;

use crate::geometry::fit_rigid;
use crate::imaging::{FourierLoss, NoiseSpectrum, half_plane_shells};
use crate::io::weights::Tensors;
use crate::model::{GaussianModel, NeighbourGraph, RigidMotionRemover};
use crate::nn::{DecoderConfig, EncoderConfig};
use crate::rng::Rng;
use crate::{Error, Result};

use super::data::{Batch, Loader, ParticleSet};
use super::half::{HalfModel, LearningRates};
use super::step::{
    BatchFigures, LatentGuess, LatentPrior, LatentRefinement, Latents, Phase, StepContext, Work,
    close_lambda_epoch, evaluate_batch, refine_latents, train_batch,
};
use super::trained::{SHIFTS, TrainedModel};

/// Each Gaussian is tied elastically to at least this many nearest neighbours (see
/// [`NeighbourGraph::with_min_degree`]).
const MIN_ELASTIC_NEIGHBOURS: usize = 3;

/// Every this many batches, one measures the gradient norms that set λ.
const NORM_SAMPLING: usize = 4;

/// Checkpoint format name and version.
pub const CHECKPOINT_FORMAT: &str = "cryomotion-deformations";
/// Version of the checkpoint layout; older or newer checkpoints are refused.
pub const CHECKPOINT_VERSION: &str = "2";

/// The training schedule and settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    /// Epochs in all (warm-up included): exactly this many run.
    pub n_epochs: usize,
    /// Epochs without deformation at the start.
    pub warmup_epochs: usize,
    /// Particles per batch.
    pub batch_size: usize,
    /// Elastic weight factor (1: equal gradient norms of data and elastic terms).
    pub regularization_factor: f64,
    /// A fixed elastic weight λ instead of the balanced one.
    pub regularization_weight: Option<f64>,
    /// KL factor (β = factor / box²).
    pub kld_factor: f64,
    /// Deforming epochs over which β ramps up linearly from 0 (0: full β at once).
    pub kld_ramp_epochs: usize,
    /// Mean KL per particle (nats) below which the KL term exerts no pull.
    pub kld_free_nats: f64,
    /// Epochs between consensus updates from the least-deformed particles (0: never).
    pub consensus_update_interval: usize,
    /// Particles pooled for a consensus update.
    pub consensus_update_pool: usize,
    /// Epochs between checkpoints (one is always written at the end).
    pub checkpoint_interval: usize,
    /// Whiten the loss with the noise spectrum of the validation particles.
    pub data_normalization: bool,
    /// Highest Fourier shell in the loss (training-box pixels; ≤ box/2 − 1).
    pub max_shell: f64,
    /// Learning rates.
    pub rates: LearningRates,
    /// Seed of every random draw.
    pub seed: u64,
    /// How the final latents are refined per particle after training.
    pub latent_refinement: LatentRefinement,
    /// The last epochs that train the decoder on refined, fixed latents (see the module's
    /// schedule; at least one epoch of the encoder comes before them).
    pub decoder_refit_epochs: usize,
}

impl TrainOptions {
    /// Whether `epoch` balances λ (the deforming epochs while the KL weight ramps up); later
    /// epochs keep the last λ. Balanced on, λ would grow without end: as the decoder learns
    /// motions that stretch few edges, the elastic gradient per Å of motion falls, λ rises to
    /// restore the balance, and it suppresses the motion (seen: ×200 over 50 epochs, the
    /// moving domains' motion shrunk).
    pub fn lambda_balanced(&self, epoch: usize) -> bool {
        epoch < self.warmup_epochs + self.kld_ramp_epochs.max(1)
    }

    /// The first epoch that refits the decoder on refined latents (`n_epochs` when none does).
    pub fn refit_start(&self) -> usize {
        if self.decoder_refit_epochs == 0 {
            return self.n_epochs;
        }
        self.n_epochs.saturating_sub(self.decoder_refit_epochs).max(self.warmup_epochs + 1)
    }

    /// The latents a forward pass without training uses in `epoch`: none in the warm-up, the
    /// encoder's means, or from the refit on the particles' refined latents (`so_far`).
    pub fn evaluation_latents<'a>(&self, epoch: usize, so_far: &'a [f32]) -> Latents<'a> {
        if epoch < self.warmup_epochs {
            Latents::Consensus
        } else if epoch >= self.refit_start() {
            Latents::Given(so_far)
        } else {
            Latents::Mean
        }
    }

    /// The fraction of β in `epoch`: 0 in the first deforming epoch, rising linearly to 1 over
    /// `kld_ramp_epochs`. Without it Adam, which scales steps by gradient size alone, lets the
    /// KL term collapse a half's posterior before the weak data gradient of a low-SNR dataset
    /// has organised the latent space (seen at SNR 0.1: one half stayed at 0.01 Å RMS).
    pub fn kl_ramp(&self, epoch: usize) -> f64 {
        let deforming = epoch.saturating_sub(self.warmup_epochs);
        if self.kld_ramp_epochs == 0 {
            1.0
        } else {
            (deforming as f64 / self.kld_ramp_epochs as f64).min(1.0)
        }
    }
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            n_epochs: 50,
            warmup_epochs: 3,
            batch_size: 64,
            regularization_factor: 1.0,
            regularization_weight: None,
            kld_factor: 0.01,
            kld_ramp_epochs: 10,
            kld_free_nats: 4.0,
            consensus_update_interval: 15,
            consensus_update_pool: 100,
            checkpoint_interval: 5,
            data_normalization: true,
            max_shell: f64::INFINITY,
            rates: LearningRates::default(),
            seed: 0,
            latent_refinement: LatentRefinement::default(),
            decoder_refit_epochs: 30,
        }
    }
}

/// Figures of one epoch of one half.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRecord {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Half set.
    pub half: u8,
    /// Whether the decoder was deforming.
    pub deforming: bool,
    /// Mean data loss of the training particles.
    pub data: f64,
    /// Mean data loss of the validation particles (after the epoch).
    pub validation: f64,
    /// Mean KL divergence.
    pub kl: f64,
    /// Mean elastic loss (Å²).
    pub elastic: f64,
    /// Elastic weight λ at the end of the epoch.
    pub lambda: f64,
    /// Image scale.
    pub scale: f64,
    /// RMS displacement of the Gaussians over the training particles (Å).
    pub rms_displacement: f64,
    /// RMS move of the consensus in a consensus update (Å), 0 without one.
    pub consensus_update: f64,
    /// Wall time of the epoch for this half (s).
    pub seconds: f64,
}

impl EpochRecord {
    /// Column names of [`EpochRecord::to_csv`].
    pub const CSV_HEADER: &'static str = "epoch,half,deforming,data_loss,validation_loss,kl,elastic,lambda,scale,rms_displacement_A,consensus_update_A,seconds";

    /// One CSV row.
    pub fn to_csv(&self) -> String {
        format!(
            "{},{},{},{:.9e},{:.9e},{:.6e},{:.6e},{:.6e},{:.6e},{:.4},{:.4},{:.3}",
            self.epoch,
            self.half,
            self.deforming as u8,
            self.data,
            self.validation,
            self.kl,
            self.elastic,
            self.lambda,
            self.scale,
            self.rms_displacement,
            self.consensus_update,
            self.seconds
        )
    }

    fn from_csv(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.split(',').collect();
        let num = |k: usize| f.get(k)?.parse::<f64>().ok();
        Some(EpochRecord {
            epoch: f.first()?.parse().ok()?,
            half: f.get(1)?.parse().ok()?,
            deforming: f.get(2)? == &"1",
            data: num(3)?,
            validation: num(4)?,
            kl: num(5)?,
            elastic: num(6)?,
            lambda: num(7)?,
            scale: num(8)?,
            rms_displacement: num(9)?,
            consensus_update: num(10)?,
            seconds: num(11)?,
        })
    }
}

/// Progress of a batch, for progress bars.
#[derive(Clone, Copy, Debug)]
pub struct BatchProgress {
    /// Epoch.
    pub epoch: usize,
    /// Half set.
    pub half: u8,
    /// Particles in the batch.
    pub particles: usize,
    /// Its mean data loss.
    pub loss: f64,
}

/// Both half models, the particles and the schedule's position.
pub struct Trainer {
    /// Settings.
    pub options: TrainOptions,
    /// The particles.
    pub set: ParticleSet,
    /// Their images.
    pub loader: Loader,
    /// Half set 1 and 2.
    pub halves: [HalfModel; 2],
    /// The consensus as fitted to the input map: both halves are registered to its frame.
    pub reference: GaussianModel,
    /// Gaussians that may move (mask), all when `None`.
    pub active: Option<Vec<bool>>,
    /// Epochs completed.
    pub epoch: usize,
    /// Latent of every particle (P × latent) as last seen: its own half's encoder mean, or,
    /// from the decoder refit on, its refined latent.
    pub latents: Vec<f32>,
    /// Figures of every epoch so far.
    pub history: Vec<EpochRecord>,
    /// Fingerprint of the particle table (names, poses): a checkpoint only resumes its data.
    pub fingerprint: u64,
    work: Work,
    batch: Batch,
    shells: Vec<u32>,
    /// Whether the latents were refined for the decoder refit in this process.
    refit_ready: bool,
}

/// A hash of what the particles are: image names, poses and origins.
pub fn table_fingerprint(table: &crate::particles::ParticleTable) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for p in &table.particles {
        eat(p.image.to_relion().as_bytes());
        for v in p.euler_deg.iter().chain(&p.origin_angstrom) {
            eat(&v.to_le_bytes());
        }
    }
    h
}

impl Trainer {
    /// A new run: both halves start from `consensus` (fitted to the low-passed map).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        options: TrainOptions,
        set: ParticleSet,
        loader: Loader,
        consensus: GaussianModel,
        latent: usize,
        decoder: DecoderConfig,
        active: Option<Vec<bool>>,
        fingerprint: u64,
    ) -> Self {
        let m = set.box_size();
        let encoder = EncoderConfig { box_size: m, latent, ..EncoderConfig::default() };
        let decoder = DecoderConfig { latent, box_size: m, ..decoder };
        let halves = [1u64, 2].map(|h| {
            HalfModel::new(
                consensus.clone(),
                encoder,
                decoder,
                &options.rates,
                Rng::keyed(options.seed, &[h]).next_u64(),
            )
        });
        let latents = vec![0.0; set.len() * latent];
        Trainer {
            options,
            set,
            loader,
            halves,
            reference: consensus,
            active,
            epoch: 0,
            latents,
            history: Vec::new(),
            fingerprint,
            work: Work::default(),
            batch: Batch::default(),
            refit_ready: false,
            shells: half_plane_shells(m),
        }
    }

    /// Latent dimensions.
    pub fn latent(&self) -> usize {
        self.halves[0].encoder.config.latent
    }

    fn max_shell(&self) -> f64 {
        self.options.max_shell.min((self.set.box_size() / 2) as f64 - 1.0)
    }

    fn loss_of(&self, h: usize) -> FourierLoss {
        self.halves[h].loss(self.set.box_size(), self.max_shell(), self.options.data_normalization)
    }

    /// Whether training has run all its epochs.
    pub fn finished(&self) -> bool {
        self.epoch >= self.options.n_epochs
    }

    /// Runs one epoch over both halves; `progress` hears of every batch and returns whether to
    /// go on. `None` when it asked to stop: the epoch is then incomplete (do not checkpoint).
    ///
    /// # Errors
    /// Unreadable images or a non-finite loss (naming the particle): checkpoints on disk are
    /// untouched.
    pub fn run_epoch(
        &mut self,
        progress: &mut dyn FnMut(BatchProgress) -> bool,
    ) -> Result<Option<Vec<EpochRecord>>> {
        let epoch = self.epoch;
        self.prepare_refit(&mut |_| {})?;
        let mut records = Vec::new();
        for h in 0..2 {
            match self.run_half_epoch(epoch, h, progress)? {
                Some(r) => records.push(r),
                None => return Ok(None),
            }
        }
        self.history.extend(records.iter().cloned());
        self.epoch += 1;
        Ok(Some(records))
    }

    fn run_half_epoch(
        &mut self,
        epoch: usize,
        h: usize,
        progress: &mut dyn FnMut(BatchProgress) -> bool,
    ) -> Result<Option<EpochRecord>> {
        let start = std::time::Instant::now();
        let half_id = h as u8 + 1;
        let o = self.options.clone();
        let deforming = epoch >= o.warmup_epochs;
        let refit = epoch >= o.refit_start();
        let balancing = o.lambda_balanced(epoch);
        let mut members = self.set.members(half_id, false);
        shuffle(&mut members, &mut Rng::keyed(o.seed, &[epoch as u64, half_id as u64, 1]));
        let points = self.halves[h].consensus.points();
        let graph = NeighbourGraph::dynamight(&points).with_min_degree(&points, MIN_ELASTIC_NEIGHBOURS);
        let loss = self.loss_of(h);
        let m = self.set.box_size();
        let latent = self.latent();
        let active = self.active.clone();
        let remover = self.rigid_motion_remover(h);
        let mut ctx = StepContext {
            loss: &loss,
            graph: &graph,
            active: active.as_deref(),
            box_length: self.set.box_length() as f32,
            kl_weight: (o.kl_ramp(epoch) * o.kld_factor / (m * m) as f64) as f32,
            kl_free_nats: o.kld_free_nats,
            regularization_factor: o.regularization_factor,
            fixed_lambda: o.regularization_weight.map(|w| w as f32),
            reference_displacement: mean_length(&graph),
            min_width: (0.5 * self.set.box_length() / m as f64) as f32,
            train_positions: true,
            measure_norms: false,
            rigid_free: remover.as_ref(),
        };
        let (mut data, mut kl, mut elastic, mut squared, mut count) = (0.0, 0.0, 0.0, 0.0, 0usize);
        let mut pool: Vec<(f64, usize)> = Vec::new();
        let mut given = Vec::new();
        for (k, chunk) in members.chunks(o.batch_size.max(1)).enumerate() {
            self.loader.fill(&self.set, chunk, &mut self.batch)?;
            let seed = Rng::keyed(o.seed, &[epoch as u64, half_id as u64, 2, k as u64]).next_u64();
            ctx.measure_norms = balancing && k % NORM_SAMPLING == 0;
            let phase = if refit {
                self.gather_latents(chunk, &mut given);
                Phase::Refit(&given)
            } else if deforming {
                Phase::Deform
            } else {
                Phase::Warmup
            };
            let f: BatchFigures = train_batch(
                &mut self.halves[h],
                &self.batch,
                &ctx,
                phase,
                seed,
                &mut self.work,
                &self.shells,
            )?;
            let b = chunk.len();
            data += f.data * b as f64;
            kl += f.kl * b as f64;
            elastic += f.elastic * b as f64;
            squared += f.displacement.iter().sum::<f64>();
            count += b;
            if deforming {
                for (j, &i) in chunk.iter().enumerate() {
                    self.latents[i * latent..(i + 1) * latent]
                        .copy_from_slice(&f.latents[j * latent..(j + 1) * latent]);
                    pool.push((f.displacement[j], i));
                }
                keep_smallest(&mut pool, o.consensus_update_pool);
            }
            if !progress(BatchProgress { epoch, half: half_id, particles: b, loss: f.data }) {
                return Ok(None);
            }
        }
        if deforming && balancing {
            close_lambda_epoch(&mut self.halves[h]);
        }
        let validation = self.validate(h, epoch, &ctx)?;
        let update = o.consensus_update_interval > 0
            && deforming
            && (epoch + 1 - o.warmup_epochs) % o.consensus_update_interval == 0
            && epoch + 1 < o.n_epochs;
        let consensus_update = if update {
            pool.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            pool.truncate(o.consensus_update_pool);
            self.update_consensus(h, &pool, &ctx)?
        } else {
            0.0
        };
        let n = count.max(1) as f64;
        Ok(Some(EpochRecord {
            epoch,
            half: half_id,
            deforming,
            data: data / n,
            validation,
            kl: kl / n,
            elastic: elastic / n,
            lambda: self.halves[h].lambda as f64,
            scale: self.halves[h].scale() as f64,
            rms_displacement: (squared / n).sqrt(),
            consensus_update,
            seconds: start.elapsed().as_secs_f64(),
        }))
    }

    /// Mean loss of half `h`'s validation particles; from the last warm-up epoch on, their
    /// residuals update the half's noise spectrum (half old, half new).
    fn validate(&mut self, h: usize, epoch: usize, ctx: &StepContext) -> Result<f64> {
        let o = &self.options;
        let members = self.set.members(h as u8 + 1, true);
        let deforming = epoch >= o.warmup_epochs;
        let mut noise = NoiseSpectrum::new(self.set.box_size());
        let latent = self.latent();
        let (mut total, mut count) = (0.0, 0usize);
        let mut given = Vec::new();
        for chunk in members.chunks(o.batch_size.max(1)) {
            self.loader.fill(&self.set, chunk, &mut self.batch)?;
            self.gather_latents(chunk, &mut given);
            let latents = o.evaluation_latents(epoch, &given);
            let f = evaluate_batch(
                &self.halves[h],
                &self.batch,
                ctx,
                latents,
                &mut self.work,
                Some(&mut noise),
                &self.shells,
            )?;
            total += f.data * chunk.len() as f64;
            count += chunk.len();
            if deforming {
                for (j, &i) in chunk.iter().enumerate() {
                    self.latents[i * latent..(i + 1) * latent]
                        .copy_from_slice(&f.latents[j * latent..(j + 1) * latent]);
                }
            }
        }
        if o.data_normalization && epoch + 1 >= o.warmup_epochs {
            let fresh = noise.power();
            let half = &mut self.halves[h];
            half.noise_power = if half.noise_power.is_empty() {
                fresh
            } else {
                half.noise_power.iter().zip(&fresh).map(|(a, b)| 0.5 * a + 0.5 * b).collect()
            };
        }
        Ok(total / count.max(1) as f64)
    }

    /// Replaces half `h`'s consensus with the mean deformed positions of the pooled
    /// least-deformed particles, rigidly registered onto the reference frame (the input map's);
    /// returns the RMS move in Å.
    fn update_consensus(&mut self, h: usize, pool: &[(f64, usize)], ctx: &StepContext) -> Result<f64> {
        if pool.is_empty() {
            return Ok(0.0);
        }
        let ng = self.reference.len();
        let mut mean = vec![0.0f64; ng * 3];
        let indices: Vec<usize> = pool.iter().map(|&(_, i)| i).collect();
        let mut given = Vec::new();
        for chunk in indices.chunks(self.options.batch_size.max(1)) {
            self.loader.fill(&self.set, chunk, &mut self.batch)?;
            self.gather_latents(chunk, &mut given);
            let latents = self.options.evaluation_latents(self.epoch, &given);
            let _ = evaluate_batch(
                &self.halves[h],
                &self.batch,
                ctx,
                latents,
                &mut self.work,
                None,
                &self.shells,
            )?;
            for x in self.work.deformed().chunks_exact(ng * 3).take(chunk.len()) {
                mean.iter_mut().zip(x).for_each(|(m, &v)| *m += v as f64);
            }
        }
        let mean: Vec<f32> = mean.iter().map(|&v| (v / indices.len() as f64) as f32).collect();
        let fit = fit_rigid(&mean, &self.reference.positions, None);
        let registered: Vec<f32> = mean
            .chunks_exact(3)
            .flat_map(|p| fit.apply([p[0] as f64, p[1] as f64, p[2] as f64]).map(|v| v as f32))
            .collect();
        let half = &mut self.halves[h];
        let moved = registered
            .iter()
            .zip(&half.consensus.positions)
            .map(|(&a, &b)| ((a - b) as f64).powi(2))
            .sum::<f64>();
        half.consensus.positions = registered;
        half.reset_position_moments();
        Ok((moved / ng as f64).sqrt())
    }

    /// Whether the next epoch is the first of the decoder refit, whose latents are still to be
    /// refined (see [`Trainer::prepare_refit`]).
    pub fn refit_due(&self) -> bool {
        !self.refit_ready && self.epoch == self.options.refit_start() && !self.finished()
    }

    /// Before the first epoch of the decoder refit, refines every particle's latent on its
    /// image ([`Trainer::infer_latents`]); `progress` hears of every batch. Nothing otherwise
    /// ([`Trainer::run_epoch`] calls it too).
    ///
    /// # Errors
    /// Unreadable images, or a non-finite loss.
    pub fn prepare_refit(&mut self, progress: &mut dyn FnMut(usize)) -> Result<()> {
        if self.refit_due() {
            self.infer_latents(progress)?;
            self.refit_ready = true;
        }
        Ok(())
    }

    /// The latent of every particle from its own half's model (a pass over all images): the
    /// encoder's mean, refined on the particle's own image as `options.latent_refinement` says
    /// (see [`refine_latents`]; its latent so far is one more start).
    ///
    /// # Errors
    /// Unreadable images, or a non-finite loss.
    pub fn infer_latents(&mut self, progress: &mut dyn FnMut(usize)) -> Result<()> {
        for h in 0..2 {
            self.refine_half_latents(h, progress)?;
        }
        Ok(())
    }

    /// [`Trainer::infer_latents`] for the particles of half `h`.
    fn refine_half_latents(&mut self, h: usize, progress: &mut dyn FnMut(usize)) -> Result<()> {
        let latent = self.latent();
        let bs = self.options.batch_size.max(1);
        let refinement = self.options.latent_refinement;
        let members: Vec<usize> =
            (0..self.set.len()).filter(|&i| self.set.halves[i] == h as u8 + 1).collect();
        let loss = self.loss_of(h);
        // the prior: the spread of the latents of the particles the half trained on
        let mut trained = Vec::new();
        self.gather_latents(&self.set.members(h as u8 + 1, false), &mut trained);
        let prior = LatentPrior::fit(&trained, latent);
        let remover = self.rigid_motion_remover(h);
        let active = self.active.clone();
        let box_length = self.set.box_length() as f32;
        let ctx = StepContext::forward_only(&loss, active.as_deref(), box_length, remover.as_ref());
        let mut so_far = Vec::new();
        let mut shifts = Vec::new();
        for chunk in members.chunks(bs) {
            self.loader.fill(&self.set, chunk, &mut self.batch)?;
            let b = chunk.len();
            let mut mean = vec![0.0f32; b * latent];
            if refinement.steps > 0 {
                self.gather_latents(chunk, &mut so_far);
                shifts.clear();
                shifts.extend(chunk.iter().map(|&i| self.set.shifts.get(i).copied().unwrap_or_default()));
                let half = &self.halves[h];
                mean = refine_latents(
                    half,
                    &mut self.batch,
                    &ctx,
                    refinement,
                    LatentGuess { prior: &prior, so_far: Some(&so_far) },
                    Some(&mut shifts),
                    &mut self.work,
                    &self.shells,
                )?;
                if refinement.shifts.is_some() {
                    self.set.shifts.resize(self.set.len(), [0.0; 2]);
                    for (j, &i) in chunk.iter().enumerate() {
                        self.set.shifts[i] = shifts[j];
                    }
                }
            } else {
                let mut log_variance = vec![0.0f32; b * latent];
                let _ = self.halves[h].encoder.forward(&self.batch.images, b, &mut mean, &mut log_variance);
            }
            for (j, &i) in chunk.iter().enumerate() {
                self.latents[i * latent..(i + 1) * latent]
                    .copy_from_slice(&mean[j * latent..(j + 1) * latent]);
            }
            progress(b);
        }
        Ok(())
    }

    /// The latents of `particles` (rows), into `out`.
    fn gather_latents(&self, particles: &[usize], out: &mut Vec<f32>) {
        let d = self.latent();
        out.clear();
        out.extend(particles.iter().flat_map(|&i| self.latents[i * d..(i + 1) * d].iter().copied()));
    }

    /// Without a mask, half `h`'s deformations are kept free of global rigid motion (see
    /// [`RigidMotionRemover`]); with one, the fixed Gaussians anchor the frame.
    pub fn rigid_motion_remover(&self, h: usize) -> Option<RigidMotionRemover> {
        self.active.is_none().then(|| RigidMotionRemover::new(&self.halves[h].consensus.positions))
    }

    /// Writes a checkpoint (atomically).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self, path: &Path, extra: &[(String, String)]) -> Result<()> {
        let mut t = Tensors::default();
        let o = &self.options;
        let mut meta = |k: &str, v: String| t.metadata.push((k.to_string(), v));
        meta("checkpoint_format", CHECKPOINT_FORMAT.into());
        meta("checkpoint_version", CHECKPOINT_VERSION.into());
        meta("epoch", self.epoch.to_string());
        meta("fingerprint", self.fingerprint.to_string());
        meta("particles", self.set.len().to_string());
        meta("box_size", self.set.box_size().to_string());
        meta("box_length", self.set.box_length().to_bits().to_string());
        meta("data_scale", self.loader.data_scale.to_bits().to_string());
        meta("latent", self.latent().to_string());
        meta("seed", o.seed.to_string());
        let d = self.halves[0].decoder.config;
        meta("decoder", format!("{} {} {}", d.frequencies, d.width, d.depth));
        meta("history", self.history.iter().map(EpochRecord::to_csv).collect::<Vec<_>>().join(";"));
        for (k, v) in extra {
            meta(k, v.clone());
        }
        for (h, half) in self.halves.iter().enumerate() {
            half.save(&format!("half{}", h + 1), &mut t);
        }
        let ng = self.reference.len();
        t.push("reference.positions", &[ng, 3], &self.reference.positions);
        t.push("reference.amplitudes", &[ng], &self.reference.amplitudes);
        t.push("reference.widths", &[ng], &self.reference.widths);
        if let Some(active) = &self.active {
            let a: Vec<f32> = active.iter().map(|&b| b as u8 as f32).collect();
            t.push("active", &[ng], &a);
        }
        let halves: Vec<f32> = self.set.halves.iter().map(|&h| h as f32).collect();
        let validation: Vec<f32> = self.set.validation.iter().map(|&v| v as u8 as f32).collect();
        t.push("particles.half", &[halves.len()], &halves);
        t.push("particles.validation", &[validation.len()], &validation);
        t.push("particles.latent", &[self.set.len(), self.latent()], &self.latents);
        if !self.set.shifts.is_empty() {
            let shifts: Vec<f32> = self.set.shifts.iter().flatten().copied().collect();
            t.push(SHIFTS, &[self.set.len(), 2], &shifts);
        }
        t.write(path)
    }
}

/// What a checkpoint holds besides the half models, read before the data is set up.
pub struct CheckpointHeader {
    /// The tensors and metadata.
    pub tensors: Tensors,
    /// Epochs completed.
    pub epoch: usize,
    /// Latent dimensions.
    pub latent: usize,
    /// Training box.
    pub box_size: usize,
    /// Data scale.
    pub data_scale: f32,
    /// Decoder shape.
    pub decoder: DecoderConfig,
    /// Half set of each particle.
    pub halves: Vec<u8>,
}

/// Reads a checkpoint's header, checking its format and version and that it belongs to the
/// particles with `fingerprint`.
///
/// # Errors
/// Another format or version, or a checkpoint of other particles.
pub fn read_checkpoint(path: &Path, fingerprint: u64, particles: usize) -> Result<CheckpointHeader> {
    let t = Tensors::read(path)?;
    let at = |e: Error| e.with_path(path);
    let get = |k: &str| t.meta(k).ok_or_else(|| at(Error::missing(format!("checkpoint lacks '{k}'"))));
    if t.meta("checkpoint_format") != Some(CHECKPOINT_FORMAT) {
        return Err(at(Error::invalid(format!(
            "not a cryomotion optimize-deformations checkpoint (format '{}')",
            t.meta("checkpoint_format").unwrap_or("none")
        ))));
    }
    let version = get("checkpoint_version")?;
    if version != CHECKPOINT_VERSION {
        return Err(at(Error::invalid(format!(
            "checkpoint version {version}; this cryomotion reads version {CHECKPOINT_VERSION}"
        ))));
    }
    let number = |k: &str| -> Result<u64> {
        get(k)?.parse().map_err(|_| at(Error::invalid(format!("checkpoint value '{k}' is not a number"))))
    };
    if number("fingerprint")? != fingerprint || number("particles")? as usize != particles {
        return Err(at(Error::mismatch(format!(
            "the checkpoint was trained on other particles ({} particles, or other names or poses) than this \
             STAR file ({particles} particles)",
            number("particles")?
        ))));
    }
    let shape: Vec<usize> = get("decoder")?.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    if shape.len() != 3 {
        return Err(at(Error::invalid("checkpoint decoder shape unreadable")));
    }
    let box_size = number("box_size")? as usize;
    let latent = number("latent")? as usize;
    let decoder = DecoderConfig { latent, frequencies: shape[0], width: shape[1], depth: shape[2], box_size };
    let halves = t.get("particles.half", &[particles]).map_err(at)?.iter().map(|&v| v as u8).collect();
    Ok(CheckpointHeader {
        epoch: number("epoch")? as usize,
        latent,
        box_size,
        data_scale: f32::from_bits(number("data_scale")? as u32),
        decoder,
        halves,
        tensors: t,
    })
}

impl Trainer {
    /// Resumes from a checkpoint header on the same particles.
    ///
    /// # Errors
    /// A missing or misshapen tensor.
    pub fn resume(
        options: TrainOptions,
        set: ParticleSet,
        loader: Loader,
        header: CheckpointHeader,
        fingerprint: u64,
    ) -> Result<Self> {
        let t = &header.tensors;
        let m = header.box_size;
        let model = TrainedModel::from_header(&header, &options.rates)?;
        let mut set = set;
        set.validation = model.validation;
        set.shifts = model.shifts;
        let history = t
            .meta("history")
            .unwrap_or("")
            .split(';')
            .filter(|l| !l.is_empty())
            .filter_map(EpochRecord::from_csv)
            .collect();
        Ok(Trainer {
            options,
            shells: half_plane_shells(m),
            set,
            loader,
            halves: model.halves,
            reference: model.reference,
            active: model.active,
            epoch: header.epoch,
            latents: model.latents,
            history,
            fingerprint,
            work: Work::default(),
            batch: Batch::default(),
            refit_ready: false,
        })
    }
}

fn mean_length(graph: &NeighbourGraph) -> f64 {
    let n = graph.rest_lengths.len().max(1) as f64;
    graph.rest_lengths.iter().map(|&l| l as f64).sum::<f64>() / n
}

fn shuffle(v: &mut [usize], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// Keeps the `k` smallest (value, index) pairs, ties broken by index.
fn keep_smallest(pool: &mut Vec<(f64, usize)>, k: usize) {
    if pool.len() > 2 * k.max(1) {
        pool.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        pool.truncate(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kl_weight_ramps_from_zero_over_the_first_deforming_epochs() {
        let o = TrainOptions { warmup_epochs: 3, kld_ramp_epochs: 4, ..Default::default() };
        let ramp: Vec<f64> = (0..9).map(|e| o.kl_ramp(e)).collect();
        assert_eq!(ramp, vec![0.0, 0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0]);
        assert_eq!(TrainOptions { kld_ramp_epochs: 0, ..o }.kl_ramp(3), 1.0);
    }

    #[test]
    fn keep_smallest_keeps_the_k_smallest() {
        let mut pool: Vec<(f64, usize)> = (0..50).map(|i| (((i * 37) % 50) as f64, i)).collect();
        keep_smallest(&mut pool, 5);
        pool.sort_by(|a, b| a.0.total_cmp(&b.0));
        pool.truncate(5);
        assert_eq!(pool.iter().map(|p| p.0).collect::<Vec<_>>(), vec![0.0, 1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn epoch_records_survive_csv() {
        let r = EpochRecord {
            epoch: 3,
            half: 2,
            deforming: true,
            data: 1.25,
            validation: 1.5,
            kl: 0.5,
            elastic: 0.25,
            lambda: 10.0,
            scale: 2.0,
            rms_displacement: 1.5,
            consensus_update: 0.0,
            seconds: 1.0,
        };
        assert_eq!(EpochRecord::from_csv(&r.to_csv()), Some(r));
    }
}
