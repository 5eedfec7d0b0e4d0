//! One batch through one half model: encode, decode displacements, render the deformed
//! Gaussians, compare with the data in Fourier space; and the backward pass that steps every
//! parameter group. Pure computation over the batch buffers.

use rayon::prelude::*;

use crate::fft::Complex32;
use crate::imaging::splat::View;
use crate::imaging::splat::{project_batch, project_batch_backward};
use crate::imaging::{FourierLoss, LossScratch, NoiseSpectrum};
use crate::model::{NeighbourGraph, RigidMotionRemover, elastic_loss};
use crate::nn::{DecoderGrads, EncoderCache, kl_divergence, reparameterise, reparameterise_backward};
use crate::rng::Rng;
use crate::{Error, Result};

use super::data::Batch;
use super::half::HalfModel;

/// What a batch step needs besides the model and the data.
pub struct StepContext<'a> {
    /// Whitened loss of the training box.
    pub loss: &'a FourierLoss,
    /// Elastic graph of the consensus (Å).
    pub graph: &'a NeighbourGraph,
    /// Gaussians allowed to move (all when `None`).
    pub active: Option<&'a [bool]>,
    /// Field of view of the training box in Å (decoder coordinates are in box lengths).
    pub box_length: f32,
    /// KL weight β.
    pub kl_weight: f32,
    /// Batch-mean KL below which it exerts no pull.
    pub kl_free_nats: f64,
    /// Regularisation factor: 1 gives equal gradient norms of the data and elastic terms.
    pub regularization_factor: f64,
    /// A fixed elastic weight λ instead of the balanced one.
    pub fixed_lambda: Option<f32>,
    /// Deformation (Å RMS) at which the elastic gradient norm is compared with the data's:
    /// the mean rest length of the graph's edges.
    pub reference_displacement: f64,
    /// Smallest Gaussian width in Å.
    pub min_width: f32,
    /// Whether the consensus positions train.
    pub train_positions: bool,
    /// Whether this batch measures the gradient norms that set λ (one more decoder pass).
    pub measure_norms: bool,
    /// Removes global rigid motion from the decoder's output (without a mask).
    pub rigid_free: Option<&'a RigidMotionRemover>,
}

impl<'a> StepContext<'a> {
    /// A context for passes that do not train (evaluation, latent refinement): no elastic, KL
    /// or position terms.
    pub fn forward_only(
        loss: &'a FourierLoss,
        active: Option<&'a [bool]>,
        box_length: f32,
        rigid_free: Option<&'a RigidMotionRemover>,
    ) -> Self {
        static NO_EDGES: NeighbourGraph = NeighbourGraph { edges: Vec::new(), rest_lengths: Vec::new() };
        StepContext {
            loss,
            graph: &NO_EDGES,
            active,
            box_length,
            kl_weight: 0.0,
            kl_free_nats: 0.0,
            regularization_factor: 0.0,
            fixed_lambda: None,
            reference_displacement: 1.0,
            min_width: 0.0,
            train_positions: false,
            measure_norms: false,
            rigid_free,
        }
    }
}

/// Stage of training for a batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Phase<'a> {
    /// No deformation: only the consensus Gaussians and the image scale train.
    Warmup,
    /// Encoder, decoder and consensus train on data, elastic and KL terms.
    Deform,
    /// Decoder and consensus train on data and elastic terms with these latents (B × latent),
    /// refined on each particle's own image; the encoder rests.
    Refit(&'a [f32]),
}

/// Where the latents of a forward pass come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Latents<'a> {
    /// No deformation: every particle is the consensus.
    Consensus,
    /// The encoder's mean.
    Mean,
    /// The encoder's mean plus its standard deviation times noise drawn from this seed.
    Sample(u64),
    /// These (B × latent).
    Given(&'a [f32]),
}

/// Figures of one batch.
#[derive(Clone, Debug, Default)]
pub struct BatchFigures {
    /// Mean data loss per particle (per pixel of the training box).
    pub data: f64,
    /// Mean KL divergence per particle.
    pub kl: f64,
    /// Elastic loss (Å², mean over particles and edges).
    pub elastic: f64,
    /// Per particle: its data loss.
    pub losses: Vec<f64>,
    /// Per particle: mean squared displacement of its Gaussians (Å²).
    pub displacement: Vec<f64>,
    /// Latent means (B × latent).
    pub latents: Vec<f32>,
}

/// Buffers reused across batches.
#[derive(Default)]
pub struct Work {
    positions_box: Vec<f32>,
    mean: Vec<f32>,
    log_variance: Vec<f32>,
    epsilon: Vec<f32>,
    z: Vec<f32>,
    delta: Vec<f32>,
    deformed: Vec<f32>,
    rendered: Vec<f32>,
    image_grads: Vec<f32>,
    d_deformed: Vec<f32>,
    d_elastic: Vec<f32>,
    d_amplitudes: Vec<f32>,
    d_widths: Vec<f32>,
    scratch: Vec<(LossScratch, Vec<Complex32>)>,
}

impl Work {
    /// Deformed positions (B × Ng × 3, Å) of the last batch.
    pub fn deformed(&self) -> &[f32] {
        &self.deformed
    }

    fn resize(&mut self, half: &HalfModel, b: usize, n: usize) {
        let (ng, d) = (half.consensus.len(), half.encoder.config.latent);
        for (v, len) in [
            (&mut self.mean, b * d),
            (&mut self.log_variance, b * d),
            (&mut self.epsilon, b * d),
            (&mut self.z, b * d),
            (&mut self.delta, b * ng * 3),
            (&mut self.deformed, b * ng * 3),
            (&mut self.rendered, b * n * n),
            (&mut self.image_grads, b * n * n),
            (&mut self.d_deformed, b * ng * 3),
            (&mut self.d_elastic, b * ng * 3),
            (&mut self.d_amplitudes, ng),
            (&mut self.d_widths, ng),
        ] {
            v.resize(len, 0.0);
        }
        let threads = rayon::current_num_threads().max(1);
        if self.scratch.len() != threads || self.scratch.first().is_some_and(|s| s.1.len() != (n / 2 + 1) * n)
        {
            self.scratch = (0..threads)
                .map(|_| (LossScratch::new(n), vec![Complex32::default(); (n / 2 + 1) * n]))
                .collect();
        }
    }
}

/// Sets `work.z` as `latents` says (encoding the batch unless they are given; `work.mean` holds
/// the mean or the given latents) and decodes deformed positions (Å) into `work.deformed`.
fn deform(
    half: &HalfModel,
    batch: &Batch,
    ctx: &StepContext,
    latents: Latents,
    work: &mut Work,
) -> Option<EncoderCache> {
    let b = batch.indices.len();
    let cache = match latents {
        Latents::Given(z) => {
            work.mean.copy_from_slice(z);
            work.z.copy_from_slice(z);
            None
        }
        _ => Some(half.encoder.forward(&batch.images, b, &mut work.mean, &mut work.log_variance)),
    };
    match latents {
        Latents::Sample(seed) => {
            let mut rng = Rng::new(seed);
            work.epsilon.iter_mut().for_each(|e| *e = rng.normal() as f32);
            reparameterise(&work.mean, &work.log_variance, &work.epsilon, &mut work.z);
        }
        Latents::Mean => work.z.copy_from_slice(&work.mean),
        Latents::Given(_) | Latents::Consensus => {}
    }
    decode_positions(half, ctx, work);
    cache
}

/// `work.deformed` = consensus + decoder(`work.z`), in Å.
fn decode_positions(half: &HalfModel, ctx: &StepContext, work: &mut Work) {
    let ng = half.consensus.len();
    let inv = 1.0 / ctx.box_length;
    work.positions_box.clear();
    work.positions_box.extend(half.consensus.positions.iter().map(|&p| p * inv));
    half.decoder.forward(&work.positions_box, &work.z, ctx.active, &mut work.delta);
    if let Some(remover) = ctx.rigid_free {
        remover.apply(&mut work.delta);
    }
    let c = &half.consensus.positions;
    for (x, dl) in work.deformed.chunks_exact_mut(ng * 3).zip(work.delta.chunks_exact(ng * 3)) {
        for ((x, &c), &dl) in x.iter_mut().zip(c).zip(dl) {
            *x = c + dl * ctx.box_length;
        }
    }
}

/// Renders `work.deformed` and evaluates the loss per particle; with `gradients`, fills
/// `work.image_grads` (dL/d(rendered image before scaling), mean over the batch) and returns
/// dL/dlog(scale). Residual spectra go to `noise` when given.
fn render_and_compare(
    half: &HalfModel,
    batch: &Batch,
    ctx: &StepContext,
    gradients: bool,
    work: &mut Work,
    noise: Option<&mut NoiseSpectrum>,
    shells: &[u32],
) -> Result<(Vec<f64>, f32)> {
    let n = ctx.loss.box_size();
    let (b, hm, nn) = (batch.indices.len(), (n / 2 + 1) * n, n * n);
    let m = &half.consensus;
    project_batch(&work.deformed, &m.amplitudes, &m.widths, &batch.views, n, &mut work.rendered);
    let scale = half.scale();
    let per = b.div_ceil(work.scratch.len()).max(1);
    let norm = 1.0 / (nn as f64);
    let grad_scale = (scale as f64 / (b as f64 * nn as f64)) as f32;
    let parts: Vec<(Vec<f64>, f64, NoiseSpectrum)> = work
        .scratch
        .par_iter_mut()
        .zip(work.rendered.par_chunks(per * nn))
        .zip(work.image_grads.par_chunks_mut(per * nn))
        .zip(batch.spectra.par_chunks(per * hm))
        .zip(batch.ctf.par_chunks(per * hm))
        .map(|((((scratch, rendered), grads), spectra), ctf)| {
            let (loss_scratch, residual) = scratch;
            let mut losses = Vec::with_capacity(per);
            let mut d_log_scale = 0.0f64;
            let mut spectrum = NoiseSpectrum::new(n);
            let mut scaled = vec![0.0f32; nn];
            for k in 0..rendered.len() / nn {
                let image = &rendered[k * nn..(k + 1) * nn];
                scaled.iter_mut().zip(image).for_each(|(s, &v)| *s = v * scale);
                let grad = if gradients { Some(&mut grads[k * nn..(k + 1) * nn]) } else { None };
                let loss = ctx.loss.evaluate(
                    &scaled,
                    &spectra[k * hm..(k + 1) * hm],
                    Some(&ctf[k * hm..(k + 1) * hm]),
                    loss_scratch,
                    grad,
                    Some(residual),
                );
                losses.push(loss * norm);
                spectrum.add(residual, shells);
                if gradients {
                    let g = &mut grads[k * nn..(k + 1) * nn];
                    // dL/dlog s = Σ dL/d(s·x)·s·x
                    d_log_scale += g.iter().zip(&scaled).map(|(&g, &x)| (g * x) as f64).sum::<f64>();
                    g.iter_mut().for_each(|v| *v *= grad_scale);
                }
            }
            (losses, d_log_scale, spectrum)
        })
        .collect();
    let mut losses = Vec::with_capacity(b);
    let mut d_log_scale = 0.0;
    let mut total = NoiseSpectrum::new(n);
    for (l, d, s) in parts {
        losses.extend(l);
        d_log_scale += d;
        total.merge(&s);
    }
    if let Some(k) = losses.iter().position(|l| !l.is_finite()) {
        let i = batch.indices[k];
        return Err(Error::invalid(format!(
            "the loss of particle {} is not finite (NaN or infinite in its image, CTF or the model)",
            i + 1
        ))
        .at_row(i + 1));
    }
    if let Some(noise) = noise {
        noise.merge(&total);
    }
    Ok((losses, (d_log_scale * norm / b as f64) as f32))
}

/// From `work.image_grads`, the gradients of the rendering with respect to the deformed
/// positions, amplitudes and widths (into `work.d_deformed`, `d_amplitudes`, `d_widths`).
fn render_backward(half: &HalfModel, batch: &Batch, n: usize, work: &mut Work) {
    let m = &half.consensus;
    project_batch_backward(
        &work.deformed,
        &m.amplitudes,
        &m.widths,
        &batch.views,
        n,
        &work.image_grads,
        &mut work.d_deformed,
        &mut work.d_amplitudes,
        &mut work.d_widths,
    );
}

fn displacement_per_particle(work: &Work, ng: usize, box_length: f32) -> Vec<f64> {
    let l2 = (box_length as f64).powi(2);
    work.delta
        .chunks_exact(ng * 3)
        .map(|d| d.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() * l2 / ng as f64)
        .collect()
}

/// Forward only, with `latents` (not sampled): per-particle losses, latents and displacements;
/// residual spectra are added to `noise`.
pub fn evaluate_batch(
    half: &HalfModel,
    batch: &Batch,
    ctx: &StepContext,
    latents: Latents,
    work: &mut Work,
    noise: Option<&mut NoiseSpectrum>,
    shells: &[u32],
) -> Result<BatchFigures> {
    debug_assert!(!matches!(latents, Latents::Sample(_)), "evaluation does not sample");
    let (mut figures, _) = positions_for(half, batch, ctx, latents, work);
    let b = batch.indices.len();
    let (losses, _) = render_and_compare(half, batch, ctx, false, work, noise, shells)?;
    figures.data = losses.iter().sum::<f64>() / b as f64;
    figures.losses = losses;
    Ok(figures)
}

/// Fills `work.deformed` for the batch: decoded from `latents`, or the consensus itself.
fn positions_for(
    half: &HalfModel,
    batch: &Batch,
    ctx: &StepContext,
    latents: Latents,
    work: &mut Work,
) -> (BatchFigures, Option<EncoderCache>) {
    let (b, ng, n) = (batch.indices.len(), half.consensus.len(), ctx.loss.box_size());
    work.resize(half, b, n);
    let mut figures = BatchFigures::default();
    let cache = if latents == Latents::Consensus {
        broadcast_consensus(half, work, b);
        figures.displacement = vec![0.0; b];
        None
    } else {
        let cache = deform(half, batch, ctx, latents, work);
        figures.latents = work.mean.clone();
        figures.displacement = displacement_per_particle(work, ng, ctx.box_length);
        cache
    };
    (figures, cache)
}

fn broadcast_consensus(half: &HalfModel, work: &mut Work, b: usize) {
    let ng = half.consensus.len();
    work.delta.fill(0.0);
    for x in work.deformed.chunks_exact_mut(ng * 3).take(b) {
        x.copy_from_slice(&half.consensus.positions);
    }
}

/// One optimisation step of `half` on `batch`. `epsilon_seed` seeds the reparameterisation
/// noise, so a step is reproducible from its seed.
///
/// # Errors
/// A non-finite loss (naming the particle); the model is not changed then.
pub fn train_batch(
    half: &mut HalfModel,
    batch: &Batch,
    ctx: &StepContext,
    phase: Phase,
    epsilon_seed: u64,
    work: &mut Work,
    shells: &[u32],
) -> Result<BatchFigures> {
    let (b, ng, n) = (batch.indices.len(), half.consensus.len(), ctx.loss.box_size());
    let latents = match phase {
        Phase::Warmup => Latents::Consensus,
        Phase::Deform => Latents::Sample(epsilon_seed),
        Phase::Refit(z) => Latents::Given(z),
    };
    let deforming = phase != Phase::Warmup;
    let (mut figures, cache) = positions_for(half, batch, ctx, latents, work);
    let (losses, d_log_scale) = render_and_compare(half, batch, ctx, true, work, None, shells)?;
    figures.data = losses.iter().sum::<f64>() / b as f64;
    figures.losses = losses;
    render_backward(half, batch, n, work);
    let mut d_positions = vec![0.0f32; ng * 3];
    if deforming {
        work.d_elastic.fill(0.0);
        figures.elastic = elastic_loss(ctx.graph, &work.deformed, ng, None, &mut work.d_elastic);
        let lambda = ctx.fixed_lambda.unwrap_or_else(|| current_lambda(half, ctx.regularization_factor));
        half.lambda = lambda;
        // through Δ (box lengths) into the decoder, z and the encoder; the decoder is linear in
        // dL/dΔ, so on sampled batches the data and elastic parts run separately to measure
        // their gradient norms over the decoder's weights
        let d = half.encoder.config.latent;
        // the rigid-motion removal is an orthogonal projection: its gradient is itself
        let to_delta = |g: &[f32], s: f32| -> Vec<f32> {
            let mut out: Vec<f32> = g.iter().map(|&v| v * s * ctx.box_length).collect();
            if let Some(remover) = ctx.rigid_free {
                remover.apply(&mut out);
            }
            out
        };
        let mut d_z = vec![0.0f32; b * d];
        let mut d_positions_box = vec![0.0f32; ng * 3];
        let decoder_grads = if ctx.measure_norms {
            let mut data_grads = half.decoder.backward(
                &work.positions_box,
                &work.z,
                ctx.active,
                &to_delta(&work.d_deformed, 1.0),
                &mut d_z,
                Some(&mut d_positions_box),
            );
            let elastic_grads = half.decoder.backward(
                &work.positions_box,
                &work.z,
                ctx.active,
                &to_delta(&work.d_elastic, lambda),
                &mut d_z,
                Some(&mut d_positions_box),
            );
            let data_norm = grads_norm(&data_grads);
            let elastic_norm = if lambda > 0.0 {
                grads_norm(&elastic_grads) / lambda as f64
            } else {
                // λ unknown yet: measure the elastic norm at unit weight
                let unit = half.decoder.backward(
                    &work.positions_box,
                    &work.z,
                    ctx.active,
                    &to_delta(&work.d_elastic, 1.0),
                    &mut vec![0.0f32; b * d],
                    None,
                );
                grads_norm(&unit)
            };
            // the elastic gradient grows with the deformation: scale it to a deformation of
            // one neighbour distance, so λ does not feed back on the deformation it allows
            let rms = (figures.displacement.iter().sum::<f64>() / b as f64).sqrt();
            if rms > 1e-4 * ctx.reference_displacement {
                half.norm_sums[0] += data_norm;
                half.norm_sums[1] += elastic_norm * ctx.reference_displacement / rms;
            }
            data_grads.add(&elastic_grads);
            data_grads
        } else {
            let mut combined: Vec<f32> = work
                .d_deformed
                .iter()
                .zip(&work.d_elastic)
                .map(|(&g, &e)| (g + lambda * e) * ctx.box_length)
                .collect();
            if let Some(remover) = ctx.rigid_free {
                remover.apply(&mut combined);
            }
            half.decoder.backward(
                &work.positions_box,
                &work.z,
                ctx.active,
                &combined,
                &mut d_z,
                Some(&mut d_positions_box),
            )
        };
        for (dd, &e) in work.d_deformed.iter_mut().zip(&work.d_elastic) {
            *dd += lambda * e;
        }
        if let Some(cache) = cache {
            let (mut d_mean, mut d_log_variance) = (vec![0.0f32; b * d], vec![0.0f32; b * d]);
            reparameterise_backward(
                &work.log_variance,
                &work.epsilon,
                &d_z,
                &mut d_mean,
                &mut d_log_variance,
            );
            figures.kl = kl_divergence(
                &work.mean,
                &work.log_variance,
                b,
                ctx.kl_weight,
                ctx.kl_free_nats,
                &mut d_mean,
                &mut d_log_variance,
            );
            let encoder_grads = half.encoder.backward(&cache, &d_mean, &d_log_variance);
            half.step_encoder(&encoder_grads);
        }
        half.step_decoder(&decoder_grads);
        let inv = 1.0 / ctx.box_length;
        d_positions.iter_mut().zip(&d_positions_box).for_each(|(p, &g)| *p += g * inv);
    }
    for x in work.d_deformed.chunks_exact(ng * 3) {
        d_positions.iter_mut().zip(x).for_each(|(p, &g)| *p += g);
    }
    let positions = ctx.train_positions.then_some(d_positions.as_slice());
    half.step_consensus(positions, &work.d_amplitudes, &work.d_widths, d_log_scale, ctx.min_width);
    Ok(figures)
}

/// λ so that λ·‖∇θ L_elastic‖ = factor·‖∇θ L_data‖ over the decoder's weights θ, for the
/// same whitened loss that trains: from the sums of the last epoch, or of this epoch's sampled
/// batches so far in the first deforming epoch (0 before any elastic gradient was seen).
fn current_lambda(half: &HalfModel, factor: f64) -> f32 {
    let ratio = match half.norm_ratio {
        Some(r) => Some(r),
        None if half.norm_sums[1] > 0.0 => {
            Some(half.norm_sums[0] / half.norm_sums[1].max(5e-4 * half.norm_sums[0]))
        }
        None => None,
    };
    ratio.map_or(0.0, |r| (factor * r) as f32)
}

fn grads_norm(g: &DecoderGrads) -> f64 {
    let mut sum = 0.0f64;
    for v in [&g.first_position, &g.first_latent, &g.head, &g.last].into_iter().chain(&g.hidden) {
        sum += v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>();
    }
    sum.sqrt()
}

/// Ends an epoch for λ: the ratio of this epoch's sums becomes the next epoch's.
pub fn close_lambda_epoch(half: &mut HalfModel) {
    let [data, elastic] = half.norm_sums;
    if elastic > 0.0 {
        half.norm_ratio = Some(data / elastic.max(5e-4 * data));
    }
    half.norm_sums = [0.0; 2];
}

/// Per particle, the start of refinement: its encoder mean (in `work.z`), its latent so far
/// or the prior's probe with the lowest negative log-posterior. An image the
/// encoder never trained on can have a mean far from its optimum, in another valley than
/// Adam's few steps can leave.
fn best_start(
    half: &HalfModel,
    batch: &Batch,
    ctx: &StepContext,
    guess: LatentGuess,
    work: &mut Work,
    shells: &[u32],
) -> Result<Vec<f32>> {
    let prior = guess.prior;
    let d = prior.mean.len();
    let n = ctx.loss.box_size();
    // losses are Σ W·|r|² / n² per particle; the negative log-likelihood counts half the plane
    let to_nll = (n * n) as f64 * 0.5;
    let mut starts = work.z.clone();
    let score = |losses: &[f64], z: &[f32]| -> Vec<f64> {
        losses.iter().zip(z.chunks_exact(d)).map(|(&l, z)| l * to_nll + prior.energy(z)).collect()
    };
    let (losses, _) = render_and_compare(half, batch, ctx, false, work, None, shells)?;
    let mut best = score(&losses, &starts);
    let b = batch.indices.len();
    let candidates = guess.so_far.into_iter().chain(prior.probes.chunks_exact(d));
    for candidate in candidates {
        let per_particle = candidate.len() == b * d;
        for (row, z) in work.z.chunks_exact_mut(d).enumerate() {
            z.copy_from_slice(if per_particle { &candidate[row * d..(row + 1) * d] } else { candidate });
        }
        decode_positions(half, ctx, work);
        let (losses, _) = render_and_compare(half, batch, ctx, false, work, None, shells)?;
        let scores = score(&losses, &work.z);
        for (((b, s), start), z) in
            best.iter_mut().zip(scores).zip(starts.chunks_exact_mut(d)).zip(work.z.chunks_exact(d))
        {
            if s < *b {
                *b = s;
                start.copy_from_slice(z);
            }
        }
    }
    Ok(starts)
}

/// How per-particle latents are refined after training.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatentRefinement {
    /// Adam steps per particle (0: keep the encoder's means).
    pub steps: usize,
    /// Adam step size in latent units.
    pub step_size: f32,
    /// Whether, and how, each particle's image shift is refined with its latent.
    pub shifts: Option<ShiftRefinement>,
}

impl Default for LatentRefinement {
    /// 20 steps of 0.1: on two motions at SNR 0.05 as good as 40 of 0.05; shifts kept.
    fn default() -> Self {
        LatentRefinement { steps: 20, step_size: 0.1, shifts: None }
    }
}

/// Per-particle refinement of the image shift (the origin of the consensus refinement) beside
/// the latent: a Gaussian prior of `sigma_angstrom` per axis around the input shift, Adam
/// steps of `step_angstrom`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShiftRefinement {
    /// Standard deviation of the input shifts' error, Å per axis.
    pub sigma_angstrom: f32,
    /// Adam step size, Å.
    pub step_angstrom: f32,
}

impl ShiftRefinement {
    /// The prior `sigma_angstrom`, with steps of a tenth of it.
    pub fn new(sigma_angstrom: f32) -> Self {
        ShiftRefinement { sigma_angstrom, step_angstrom: 0.1 * sigma_angstrom }
    }
}

/// dL/ds (per Å) of a shift s of one particle's projection in its image plane, from dL/dx of
/// its deformed positions (`d_deformed`, Ng × 3): the view places x at (A·x)ₓᵧ/pixel + shift,
/// so moving the image by s moves every Gaussian by s and dL/ds_r = Σ_j (A·∂L/∂x_j)_r.
pub fn shift_gradient(d_deformed: &[f32], view: &View) -> [f64; 2] {
    let a = &view.rotation;
    let mut g = [0.0f64; 2];
    for d in d_deformed.chunks_exact(3) {
        for (r, gr) in g.iter_mut().enumerate() {
            *gr += (a[r][0] * d[0] + a[r][1] * d[1] + a[r][2] * d[2]) as f64;
        }
    }
    g
}

/// Adam state of the per-particle shift refinement of one batch.
struct ShiftSteps {
    refinement: ShiftRefinement,
    first: Vec<[f32; 2]>,
    second: Vec<[f32; 2]>,
}

impl ShiftSteps {
    /// One Adam step (number `t`) of every particle's shift on the NLL plus the prior:
    /// `offsets` (Å, from the input shift) and the views' shifts move together.
    fn step(
        &mut self,
        views: &mut [View],
        d_deformed: &[f32],
        to_nll: f32,
        offsets: &mut [[f32; 2]],
        t: usize,
    ) {
        let (beta1, beta2) = (0.9f32, 0.999f32);
        let (c1, c2) = (1.0 - beta1.powi(t as i32), 1.0 - beta2.powi(t as i32));
        let per = d_deformed.len() / views.len().max(1);
        let precision = 1.0 / (self.refinement.sigma_angstrom * self.refinement.sigma_angstrom);
        for (i, (view, offset)) in views.iter_mut().zip(offsets.iter_mut()).enumerate() {
            let g = shift_gradient(&d_deformed[i * per..(i + 1) * per], view);
            for r in 0..2 {
                let grad = to_nll * g[r] as f32 + offset[r] * precision;
                let (m1, m2) = (&mut self.first[i][r], &mut self.second[i][r]);
                *m1 = beta1 * *m1 + (1.0 - beta1) * grad;
                *m2 = beta2 * *m2 + (1.0 - beta2) * grad * grad;
                let change = -self.refinement.step_angstrom * (*m1 / c1) / ((*m2 / c2).sqrt() + 1e-8);
                offset[r] += change;
                view.shift_px[r] += change / view.pixel_size;
            }
        }
    }
}

/// A Gaussian prior over the latents of one half: ½·(z − mean)ᵀ·precision·(z − mean).
#[derive(Clone, Debug, PartialEq)]
pub struct LatentPrior {
    mean: Vec<f32>,
    precision: Vec<f32>,
    /// Starting points tried besides the encoder's mean (rows of latents): the mean and
    /// ±1.5 standard deviations along each principal axis.
    probes: Vec<f32>,
}

impl LatentPrior {
    /// N(0, I), the VAE's prior.
    pub fn standard(latent: usize) -> Self {
        let mut precision = vec![0.0; latent * latent];
        (0..latent).for_each(|k| precision[k * latent + k] = 1.0);
        let mean = vec![0.0; latent];
        let probes = probes(&mean, &precision, &vec![1.0; latent]);
        LatentPrior { mean, precision: precision.clone(), probes }
    }

    /// The Gaussian of `latents` (rows of `latent` values): with a small KL weight the VAE's
    /// latents spread well beyond N(0, I), which would pull every refined latent towards 0
    /// and shrink the motion. Variances are floored at 10⁻³ of the largest.
    pub fn fit(latents: &[f32], latent: usize) -> Self {
        if latents.len() < 2 * latent {
            return Self::standard(latent);
        }
        let pca = crate::analysis::Pca::fit(latents, latent);
        let floor = pca.variances.first().copied().unwrap_or(1.0).max(f64::MIN_POSITIVE) * 1e-3;
        let mut precision = vec![0.0f32; latent * latent];
        for (k, &variance) in pca.variances.iter().enumerate() {
            let c = &pca.components[k * latent..(k + 1) * latent];
            for a in 0..latent {
                for b in 0..latent {
                    precision[a * latent + b] += (c[a] * c[b] / variance.max(floor)) as f32;
                }
            }
        }
        let mean: Vec<f32> = pca.mean.iter().map(|&m| m as f32).collect();
        let axes: Vec<f32> = pca.components.iter().map(|&c| c as f32).collect();
        let spreads: Vec<f32> = pca.variances.iter().map(|&v| v.max(floor).sqrt() as f32).collect();
        let probes = probes(&mean, &axes, &spreads);
        LatentPrior { mean, precision, probes }
    }

    /// ½·(z − mean)ᵀ·precision·(z − mean) for one latent.
    fn energy(&self, z: &[f32]) -> f64 {
        let d = self.mean.len();
        let r = |k: usize| (z[k] - self.mean[k]) as f64;
        0.5 * (0..d)
            .map(|a| (0..d).map(|b| self.precision[a * d + b] as f64 * r(a) * r(b)).sum::<f64>())
            .sum::<f64>()
    }

    /// Adds precision·(z − mean) for each row of `z` to `grad`.
    fn add_gradient(&self, z: &[f32], grad: &mut [f32]) {
        let d = self.mean.len();
        for (z, g) in z.chunks_exact(d).zip(grad.chunks_exact_mut(d)) {
            for (a, g) in g.iter_mut().enumerate() {
                *g += (0..d).map(|b| self.precision[a * d + b] * (z[b] - self.mean[b])).sum::<f32>();
            }
        }
    }
}

/// What latent refinement knows of a batch before it starts.
#[derive(Clone, Copy, Debug)]
pub struct LatentGuess<'a> {
    /// The half's prior over latents.
    pub prior: &'a LatentPrior,
    /// Each particle's latent so far (B × latent), one more start besides the encoder's mean.
    pub so_far: Option<&'a [f32]>,
}

/// The mean, and the mean ± 1.5 `spreads[k]` along each unit axis k (rows of `axes`).
fn probes(mean: &[f32], axes: &[f32], spreads: &[f32]) -> Vec<f32> {
    let d = mean.len();
    let mut out = mean.to_vec();
    for (axis, &spread) in axes.chunks_exact(d).zip(spreads) {
        for sign in [-1.5f32, 1.5] {
            out.extend(mean.iter().zip(axis).map(|(&m, &a)| m + sign * spread * a));
        }
    }
    out
}

/// The latent of every particle of `batch`, refined from its best start (see `best_start`:
/// its encoder mean, its latent so far or a probe of the prior) by Adam on its own
/// negative log-likelihood under the whitened Gaussian noise model, ½·Σ_k W_k·|C_k·X_k − Y_k|²
/// over independent Fourier coefficients, plus `prior`. The encoder, amortised over the data
/// set, memorises its training images at low SNR and cannot reach each image's own optimum;
/// these few steps do, also for particles it never trained on. Returns B × latent.
///
/// With `refinement.shifts` and `shifts` (each particle's shift so far, Å from its input
/// shift), the image shifts are refined in the same steps: `shifts` and `batch.views` are
/// updated.
///
/// # Errors
/// A non-finite loss (naming the particle).
#[allow(clippy::too_many_arguments)]
pub fn refine_latents(
    half: &HalfModel,
    batch: &mut Batch,
    ctx: &StepContext,
    refinement: LatentRefinement,
    guess: LatentGuess,
    shifts: Option<&mut [[f32; 2]]>,
    work: &mut Work,
    shells: &[u32],
) -> Result<Vec<f32>> {
    let (b, n) = (batch.indices.len(), ctx.loss.box_size());
    let prior = guess.prior;
    let _ = positions_for(half, batch, ctx, Latents::Mean, work);
    let mut z = best_start(half, batch, ctx, guess, work, shells)?;
    let mut d_z = vec![0.0f32; z.len()];
    let (mut first, mut second) = (vec![0.0f32; z.len()], vec![0.0f32; z.len()]);
    let (beta1, beta2) = (0.9f32, 0.999f32);
    // image_grads hold d(batch-mean loss)/d(image), the loss being Σ W·|r|² / n²; the negative
    // log-likelihood of one particle counts each independent coefficient once: ½ of the plane
    let to_nll = (b * n * n) as f32 * 0.5;
    let mut shifts = shifts.zip(refinement.shifts).map(|(offsets, refinement)| {
        let steps = ShiftSteps { refinement, first: vec![[0.0; 2]; b], second: vec![[0.0; 2]; b] };
        (offsets, steps)
    });
    for t in 1..=refinement.steps {
        work.z.copy_from_slice(&z);
        decode_positions(half, ctx, work);
        render_and_compare(half, batch, ctx, true, work, None, shells)?;
        render_backward(half, batch, n, work);
        if let Some((offsets, steps)) = shifts.as_mut() {
            steps.step(&mut batch.views, &work.d_deformed, to_nll, offsets, t);
        }
        work.d_deformed.iter_mut().for_each(|g| *g *= ctx.box_length);
        if let Some(remover) = ctx.rigid_free {
            remover.apply(&mut work.d_deformed);
        }
        half.decoder.latent_gradient(&work.positions_box, &work.z, ctx.active, &work.d_deformed, &mut d_z);
        d_z.iter_mut().for_each(|g| *g *= to_nll);
        prior.add_gradient(&z, &mut d_z);
        let (c1, c2) = (1.0 - beta1.powi(t as i32), 1.0 - beta2.powi(t as i32));
        for (((z, &grad), m1), m2) in z.iter_mut().zip(&d_z).zip(&mut first).zip(&mut second) {
            *m1 = beta1 * *m1 + (1.0 - beta1) * grad;
            *m2 = beta2 * *m2 + (1.0 - beta2) * grad * grad;
            *z -= refinement.step_size * (*m1 / c1) / ((*m2 / c2).sqrt() + 1e-8);
        }
    }
    Ok(z)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::splat::View;
    use crate::imaging::{flat_weights, half_plane_shells};
    use crate::model::GaussianModel;
    use crate::nn::{DecoderConfig, EncoderConfig};
    use crate::training::LearningRates;

    /// A refit step decodes the given latents and steps the decoder, not the encoder; a
    /// deforming step steps both.
    #[test]
    fn a_refit_step_trains_the_decoder_on_the_given_latents_alone() {
        let (n, b, latent) = (16, 2, 2);
        let positions: Vec<f32> =
            (0..8).flat_map(|i| [i & 1, (i >> 1) & 1, i >> 2]).map(|v| v as f32 * 8.0 - 4.0).collect();
        let consensus =
            GaussianModel { positions, amplitudes: vec![1.0; 8], widths: vec![2.0; 8], bonds: Vec::new() };
        let encoder = EncoderConfig { box_size: n, latent, hidden: [8, 4] };
        let decoder = DecoderConfig { latent, frequencies: 2, width: 8, depth: 2, box_size: n };
        let mut half = HalfModel::new(consensus, encoder, decoder, &LearningRates::default(), 1);
        let mut rng = Rng::new(2);
        let hm = (n / 2 + 1) * n;
        let identity = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let batch = Batch {
            indices: (0..b).collect(),
            spectra: (0..b * hm).map(|_| Complex32::new(rng.normal() as f32, rng.normal() as f32)).collect(),
            images: (0..b * n * n).map(|_| rng.normal() as f32).collect(),
            ctf: vec![1.0; b * hm],
            views: vec![View { rotation: identity, shift_px: [0.0, 0.0], pixel_size: 2.0 }; b],
        };
        let loss = FourierLoss::new(n, flat_weights(n, (n / 2) as f64));
        let graph = NeighbourGraph::dynamight(&half.consensus.points());
        let ctx = StepContext {
            graph: &graph,
            kl_weight: 1e-3,
            fixed_lambda: Some(1e-3),
            min_width: 0.5,
            train_positions: true,
            ..StepContext::forward_only(&loss, None, 32.0, None)
        };
        let shells = half_plane_shells(n);
        let mut work = Work::default();
        let z = [0.5f32, -1.0, 1.5, 0.3];
        let encoder_before = half.encoder.first.weight.clone();
        let decoder_before = half.decoder.last.weight.clone();
        for _ in 0..2 {
            let f = train_batch(&mut half, &batch, &ctx, Phase::Refit(&z), 7, &mut work, &shells).unwrap();
            assert_eq!(f.latents, z);
            assert_eq!(f.kl, 0.0);
        }
        assert_eq!(half.encoder.first.weight, encoder_before, "the encoder rests");
        assert_ne!(half.decoder.last.weight, decoder_before, "the decoder trains");
        // the deformation is the decoder's at the given latents
        let _ = evaluate_batch(&half, &batch, &ctx, Latents::Given(&z), &mut work, None, &shells).unwrap();
        let mut delta = vec![0.0f32; b * 8 * 3];
        let inside: Vec<f32> = half.consensus.positions.iter().map(|&p| p / 32.0).collect();
        half.decoder.forward(&inside, &z, None, &mut delta);
        for (k, (&x, &d)) in work.deformed().iter().zip(&delta).enumerate() {
            let want = half.consensus.positions[k % 24] + d * 32.0;
            assert!((x - want).abs() < 1e-5, "{x} vs {want}");
        }
        assert!(delta.iter().any(|&d| d != 0.0));
        let f = train_batch(&mut half, &batch, &ctx, Phase::Deform, 7, &mut work, &shells).unwrap();
        assert!(f.kl > 0.0);
        assert_ne!(half.encoder.first.weight, encoder_before, "a deforming step trains the encoder");
    }

    /// A fresh half model of `ng` random Gaussians (its decoder's small random deformation)
    /// and a batch of `b` particles seen at random views and origins, with random data.
    fn posed_batch(n: usize, b: usize, ng: usize, seed: u64) -> (HalfModel, Batch) {
        let mut rng = Rng::new(seed);
        let positions: Vec<f32> = (0..ng * 3).map(|_| rng.normal() as f32 * 5.0).collect();
        let consensus = GaussianModel {
            positions,
            amplitudes: (0..ng).map(|_| 0.5 + rng.uniform() as f32).collect(),
            widths: vec![2.5; ng],
            bonds: Vec::new(),
        };
        let encoder = EncoderConfig { box_size: n, latent: 2, hidden: [8, 4] };
        let decoder = DecoderConfig { latent: 2, frequencies: 2, width: 8, depth: 2, box_size: n };
        let half = HalfModel::new(consensus, encoder, decoder, &LearningRates::default(), 1);
        let hm = (n / 2 + 1) * n;
        let views = (0..b)
            .map(|_| {
                let angles = [360.0 * rng.uniform(), 180.0 * rng.uniform(), 360.0 * rng.uniform()];
                let a = crate::geometry::euler_to_matrix(angles[0], angles[1], angles[2]);
                View::new(&a, [rng.normal(), rng.normal()], 2.0)
            })
            .collect();
        let batch = Batch {
            indices: (0..b).collect(),
            spectra: (0..b * hm).map(|_| Complex32::new(rng.normal() as f32, rng.normal() as f32)).collect(),
            images: vec![0.0; b * n * n],
            ctf: vec![1.0; b * hm],
            views,
        };
        (half, batch)
    }

    /// dL/ds of [`shift_gradient`] against central differences of the batch loss, per
    /// particle and axis.
    #[test]
    fn shift_gradient_matches_finite_differences() {
        let (n, b) = (16, 2);
        let (half, batch) = posed_batch(n, b, 8, 5);
        let loss = FourierLoss::new(n, flat_weights(n, (n / 2) as f64));
        let ctx = StepContext::forward_only(&loss, None, 32.0, None);
        let shells = half_plane_shells(n);
        let mut work = Work::default();
        let z = [0.5f32, -1.0, 1.5, 0.3];
        let total = |batch: &Batch, work: &mut Work| -> f64 {
            let _ = positions_for(&half, batch, &ctx, Latents::Given(&z), work);
            let (l, _) = render_and_compare(&half, batch, &ctx, true, work, None, &shells).unwrap();
            l.iter().sum::<f64>() / l.len() as f64
        };
        let _ = total(&batch, &mut work);
        render_backward(&half, &batch, n, &mut work);
        let analytic: Vec<[f64; 2]> =
            (0..b).map(|i| shift_gradient(&work.d_deformed[i * 24..(i + 1) * 24], &batch.views[i])).collect();
        let eps = 1e-2f32;
        for (i, expected) in analytic.iter().enumerate() {
            for (r, &a) in expected.iter().enumerate() {
                let mut moved = [0.0f64; 2];
                for (sign, l) in [1.0f32, -1.0].iter().zip(moved.iter_mut()) {
                    let mut shifted = Batch {
                        indices: batch.indices.clone(),
                        spectra: batch.spectra.clone(),
                        images: batch.images.clone(),
                        ctf: batch.ctf.clone(),
                        views: batch.views.clone(),
                    };
                    shifted.views[i].shift_px[r] += sign * eps / shifted.views[i].pixel_size;
                    *l = total(&shifted, &mut work);
                }
                let fd = (moved[0] - moved[1]) / (2.0 * eps as f64);
                assert!((fd - a).abs() < 1e-2 * a.abs().max(1e-3), "particle {i}, axis {r}: {fd:e} vs {a:e}");
            }
        }
    }

    /// Data rendered at known views; the batch's views are off by a known shift: the
    /// refinement moves each view back, and the returned offsets are the shifts it found.
    #[test]
    fn shift_refinement_finds_a_known_image_shift() {
        let (n, b) = (32, 4);
        let (mut half, mut batch) = posed_batch(n, b, 12, 7);
        // strong signal: the data term dwarfs the prior
        half.consensus.amplitudes.iter_mut().for_each(|a| *a *= 30.0);
        // no deformation at any latent: the shifts alone explain the data
        half.decoder.last.weight.fill(0.0);
        let hm = (n / 2 + 1) * n;
        let (mut image, mut scratch) = (vec![0.0f32; n * n], crate::imaging::LossScratch::new(n));
        for (view, spectrum) in batch.views.iter().zip(batch.spectra.chunks_exact_mut(hm)) {
            image.fill(0.0);
            let c = &half.consensus;
            crate::imaging::splat::project(&c.positions, &c.amplitudes, &c.widths, view, n, &mut image);
            crate::imaging::image_spectrum(&image, &mut scratch, spectrum);
        }
        let truth = batch.views.clone();
        // each particle sits (error) Å off where its view puts it
        let errors: Vec<[f32; 2]> = (0..b).map(|i| [0.8 - 0.4 * i as f32, -0.6 + 0.5 * i as f32]).collect();
        for (view, e) in batch.views.iter_mut().zip(&errors) {
            (0..2).for_each(|r| view.shift_px[r] -= e[r] / view.pixel_size);
        }
        let loss = FourierLoss::new(n, flat_weights(n, (n / 2) as f64));
        let ctx = StepContext::forward_only(&loss, None, (2 * n) as f32, None);
        let refinement =
            LatentRefinement { steps: 40, step_size: 0.1, shifts: Some(ShiftRefinement::new(1.0)) };
        let prior = LatentPrior::standard(2);
        let mut offsets = vec![[0.0f32; 2]; b];
        let mut work = Work::default();
        let shells = half_plane_shells(n);
        let guess = LatentGuess { prior: &prior, so_far: None };
        refine_latents(&half, &mut batch, &ctx, refinement, guess, Some(&mut offsets), &mut work, &shells)
            .unwrap();
        for i in 0..b {
            for r in 0..2 {
                let found = offsets[i][r];
                assert!(
                    (found - errors[i][r]).abs() < 0.1,
                    "particle {i}, axis {r}: {found} for {}",
                    errors[i][r]
                );
                let back = batch.views[i].shift_px[r] - truth[i].shift_px[r];
                assert!(back.abs() * 2.0 < 0.1, "particle {i}: view {back} px from the truth");
            }
        }
    }

    #[test]
    fn fitted_prior_inverts_the_sample_covariance() {
        // latents with known covariance: z = A·g, g ~ N(0, I)
        let a = [[2.0f64, 0.0, 0.0], [1.0, 0.5, 0.0], [0.0, -0.3, 0.1]];
        let mut rng = Rng::new(3);
        let latents: Vec<f32> = (0..20000)
            .flat_map(|_| {
                let g = [rng.normal(), rng.normal(), rng.normal()];
                (0..3).map(move |i| (1.0 + (0..3).map(|j| a[i][j] * g[j]).sum::<f64>()) as f32)
            })
            .collect();
        let prior = LatentPrior::fit(&latents, 3);
        for (m, want) in prior.mean.iter().zip([1.0, 1.0, 1.0]) {
            assert!((m - want).abs() < 0.05, "mean {m}");
        }
        // precision · (sample covariance) = I
        let rows = latents.len() / 3;
        let mean = |i: usize| latents.iter().skip(i).step_by(3).map(|&v| v as f64).sum::<f64>() / rows as f64;
        let cov = |i: usize, j: usize| {
            let (mi, mj) = (mean(i), mean(j));
            latents.chunks_exact(3).map(|z| (z[i] as f64 - mi) * (z[j] as f64 - mj)).sum::<f64>()
                / rows as f64
        };
        let sample: Vec<f64> = (0..9).map(|k| cov(k / 3, k % 3)).collect();
        for i in 0..3 {
            for j in 0..3 {
                let p: f64 = (0..3).map(|k| prior.precision[i * 3 + k] as f64 * sample[k * 3 + j]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((p - want).abs() < 1e-3, "(P·Σ)[{i}][{j}] = {p}");
            }
        }
    }

    #[test]
    fn prior_gradient_matches_finite_differences() {
        let mut rng = Rng::new(4);
        let latents: Vec<f32> = (0..400).map(|_| rng.normal() as f32 * 1.5).collect();
        let prior = LatentPrior::fit(&latents, 4);
        let energy = |z: &[f32]| -> f64 {
            let d = 4;
            (0..d)
                .flat_map(|a| (0..d).map(move |b| (a, b)))
                .map(|(a, b)| {
                    0.5 * prior.precision[a * d + b] as f64
                        * (z[a] - prior.mean[a]) as f64
                        * (z[b] - prior.mean[b]) as f64
                })
                .sum()
        };
        let z = [0.3f32, -1.2, 2.0, 0.7];
        let mut grad = [0.0f32; 4];
        prior.add_gradient(&z, &mut grad);
        for k in 0..4 {
            let (mut up, mut down) = (z, z);
            up[k] += 1e-2;
            down[k] -= 1e-2;
            let numeric = (energy(&up) - energy(&down)) / 2e-2;
            assert!(
                (numeric - grad[k] as f64).abs() < 1e-3 * numeric.abs().max(1.0),
                "{numeric} vs {}",
                grad[k]
            );
        }
        // the standard prior is ½|z|²
        let mut grad = [0.0f32; 4];
        LatentPrior::standard(4).add_gradient(&z, &mut grad);
        assert_eq!(grad, z);
    }
}
