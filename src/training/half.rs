//! One half set's model: encoder, decoder, consensus Gaussians, image scale, loss weights, and
//! the optimiser state of each, saved to and restored from checkpoints exactly.

use crate::io::weights::Tensors;
use crate::model::GaussianModel;
use crate::nn::{
    Adam, AdamConfig, Decoder, DecoderConfig, DecoderGrads, Encoder, EncoderConfig, EncoderGrads,
};
use crate::rng::Rng;
use crate::{Error, Result};

/// Initial log σ² of the latent posterior.
const INITIAL_LOG_VARIANCE: f32 = -6.0;

/// Scale of the decoder's initial last-layer weights (box lengths).
const INITIAL_LAST_LAYER: f32 = 1e-2;

/// Learning rates of the parameter groups.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LearningRates {
    /// Encoder and decoder weights.
    pub networks: f32,
    /// Consensus positions, in Å per step.
    pub positions: f32,
    /// Amplitudes and widths, relative to their mean at the start.
    pub shape: f32,
    /// log of the image scale.
    pub scale: f32,
}

impl Default for LearningRates {
    fn default() -> Self {
        LearningRates { networks: 1e-3, positions: 2e-2, shape: 1e-3, scale: 1e-2 }
    }
}

/// The model and optimiser state of one half set.
pub struct HalfModel {
    /// Image encoder.
    pub encoder: Encoder,
    /// Displacement decoder.
    pub decoder: Decoder,
    /// Consensus Gaussians (positions in Å relative to the box centre).
    pub consensus: GaussianModel,
    /// log of the factor from rendered to data units.
    pub log_scale: f32,
    /// Noise power per shell (smoothed over epochs); empty until first estimated.
    pub noise_power: Vec<f64>,
    /// Weight of the elastic term.
    pub lambda: f32,
    /// Sums of gradient norms (data, elastic) over the current epoch's batches.
    pub norm_sums: [f64; 2],
    /// Ratio of the data to the elastic gradient norm from the last epoch that had one.
    pub norm_ratio: Option<f64>,
    encoder_adam: Vec<Adam>,
    decoder_adam: Vec<Adam>,
    position_adam: Adam,
    amplitude_adam: Adam,
    width_adam: Adam,
    scale_adam: Adam,
}

fn encoder_params(e: &mut Encoder) -> Vec<&mut Vec<f32>> {
    let mut out = Vec::new();
    for l in [&mut e.first, &mut e.second, &mut e.mean, &mut e.log_variance] {
        out.push(&mut l.weight);
        out.push(l.bias.as_mut().expect("encoder layers have biases"));
    }
    out
}

fn encoder_grads(g: &EncoderGrads) -> [&[f32]; 8] {
    [
        &g.first.0,
        &g.first.1,
        &g.second.0,
        &g.second.1,
        &g.mean.0,
        &g.mean.1,
        &g.log_variance.0,
        &g.log_variance.1,
    ]
}

fn decoder_params(d: &mut Decoder) -> Vec<&mut Vec<f32>> {
    let mut out = vec![&mut d.first_position.weight, &mut d.first_latent.weight];
    out.extend(d.hidden.iter_mut().map(|l| &mut l.weight));
    out.push(&mut d.head.weight);
    out.push(&mut d.last.weight);
    out
}

fn decoder_grads(g: &DecoderGrads) -> Vec<&[f32]> {
    let mut out: Vec<&[f32]> = vec![&g.first_position, &g.first_latent];
    out.extend(g.hidden.iter().map(|v| v.as_slice()));
    out.push(&g.head);
    out.push(&g.last);
    out
}

impl HalfModel {
    /// The data term of this half on a `box_size` grid up to shell `max_shell`: whitened by its
    /// noise spectrum when `whiten` and one was estimated, else flat.
    pub fn loss(&self, box_size: usize, max_shell: f64, whiten: bool) -> crate::imaging::FourierLoss {
        use crate::imaging::{FourierLoss, flat_weights, weights_from_power};
        let weights = if whiten && !self.noise_power.is_empty() {
            weights_from_power(box_size, &self.noise_power, max_shell)
        } else {
            flat_weights(box_size, max_shell)
        };
        FourierLoss::new(box_size, weights)
    }

    /// A fresh half model around `consensus`, networks initialised from `seed`.
    pub fn new(
        consensus: GaussianModel,
        encoder: EncoderConfig,
        decoder: DecoderConfig,
        rates: &LearningRates,
        seed: u64,
    ) -> Self {
        let mut rng = Rng::new(seed);
        let mut encoder = Encoder::new(encoder, || rng.normal() as f32);
        // start with a narrow posterior (σ ≈ 0.05): the decoder sees the encoder's signal from
        // the first step instead of unit noise (the KL term widens it where the data allow)
        if let Some(b) = encoder.log_variance.bias.as_mut() {
            b.fill(INITIAL_LOG_VARIANCE);
        }
        let mut decoder = Decoder::new(decoder, || rng.normal() as f32);
        // a last layer of small random weights (not DynaMight's zeros): displacements start
        // near 0.1 Å, and the encoder gets gradients from the first step, so neither half
        // waits on noise to break the symmetry
        decoder.last.weight.iter_mut().for_each(|w| *w = INITIAL_LAST_LAYER * rng.normal() as f32);
        let encoder_adam =
            encoder_params(&mut encoder).iter().map(|p| Adam::new(p.len(), AdamConfig::default())).collect();
        let decoder_adam =
            decoder_params(&mut decoder).iter().map(|p| Adam::new(p.len(), AdamConfig::default())).collect();
        let ng = consensus.len();
        let mut half = HalfModel {
            encoder,
            decoder,
            log_scale: 0.0,
            noise_power: Vec::new(),
            lambda: 0.0,
            norm_sums: [0.0; 2],
            norm_ratio: None,
            encoder_adam,
            decoder_adam,
            position_adam: Adam::new(3 * ng, AdamConfig::default()),
            amplitude_adam: Adam::new(ng, AdamConfig::default()),
            width_adam: Adam::new(ng, AdamConfig::default()),
            scale_adam: Adam::new(1, AdamConfig::default()),
            consensus,
        };
        half.set_rates(rates);
        half
    }

    /// Sets the learning rates (moments kept).
    pub fn set_rates(&mut self, rates: &LearningRates) {
        let with = |lr: f32| AdamConfig { learning_rate: lr, ..AdamConfig::default() };
        let mean =
            |v: &[f32]| (v.iter().map(|&x| x.abs() as f64).sum::<f64>() / v.len().max(1) as f64) as f32;
        self.encoder_adam
            .iter_mut()
            .chain(&mut self.decoder_adam)
            .for_each(|a| a.set_config(with(rates.networks)));
        self.position_adam.set_config(with(rates.positions));
        self.amplitude_adam.set_config(with(rates.shape * mean(&self.consensus.amplitudes)));
        self.width_adam.set_config(with(rates.shape * mean(&self.consensus.widths)));
        self.scale_adam.set_config(with(rates.scale));
    }

    /// Forgets the consensus optimisers' moments (after the positions are replaced).
    pub fn reset_position_moments(&mut self) {
        self.position_adam = Adam::new(self.position_adam.state().0.len(), self.position_adam.config());
    }

    /// Image scale factor.
    pub fn scale(&self) -> f32 {
        self.log_scale.exp()
    }

    /// Steps the encoder.
    pub fn step_encoder(&mut self, grads: &EncoderGrads) {
        let g = encoder_grads(grads);
        for ((p, a), g) in encoder_params(&mut self.encoder).into_iter().zip(&mut self.encoder_adam).zip(g) {
            a.step(p, g);
        }
    }

    /// Steps the decoder.
    pub fn step_decoder(&mut self, grads: &DecoderGrads) {
        let g = decoder_grads(grads);
        for ((p, a), g) in decoder_params(&mut self.decoder).into_iter().zip(&mut self.decoder_adam).zip(g) {
            a.step(p, g);
        }
    }

    /// Steps the consensus: positions (if `positions`), amplitudes, widths and scale. Widths
    /// stay above `min_width` Å and amplitudes non-negative.
    pub fn step_consensus(
        &mut self,
        d_positions: Option<&[f32]>,
        d_amplitudes: &[f32],
        d_widths: &[f32],
        d_log_scale: f32,
        min_width: f32,
    ) {
        if let Some(d) = d_positions {
            self.position_adam.step(&mut self.consensus.positions, d);
        }
        self.amplitude_adam.step(&mut self.consensus.amplitudes, d_amplitudes);
        self.consensus.amplitudes.iter_mut().for_each(|a| *a = a.max(0.0));
        self.width_adam.step(&mut self.consensus.widths, d_widths);
        self.consensus.widths.iter_mut().for_each(|w| *w = w.max(min_width));
        let mut s = [self.log_scale];
        self.scale_adam.step(&mut s, &[d_log_scale]);
        self.log_scale = s[0];
    }

    /// Adds everything under `prefix` (e.g. "half1") to a checkpoint.
    pub fn save(&self, prefix: &str, t: &mut Tensors) {
        self.encoder.save(&format!("{prefix}.encoder"), t);
        self.decoder.save(&format!("{prefix}.decoder"), t);
        let ng = self.consensus.len();
        t.push(format!("{prefix}.positions"), &[ng, 3], &self.consensus.positions);
        t.push(format!("{prefix}.amplitudes"), &[ng], &self.consensus.amplitudes);
        t.push(format!("{prefix}.widths"), &[ng], &self.consensus.widths);
        let noise: Vec<f32> = self.noise_power.iter().map(|&v| v as f32).collect();
        t.push(format!("{prefix}.noise_power"), &[noise.len()], &noise);
        // f64 state kept exactly as metadata
        let meta =
            |t: &mut Tensors, key: &str, value: String| t.metadata.push((format!("{prefix}.{key}"), value));
        meta(t, "noise_power_exact", join_bits(&self.noise_power));
        meta(t, "log_scale", self.log_scale.to_bits().to_string());
        meta(t, "lambda", self.lambda.to_bits().to_string());
        meta(t, "norm_sums", join_bits(&self.norm_sums));
        meta(t, "norm_ratio", self.norm_ratio.map_or(String::new(), |r| r.to_bits().to_string()));
        let mut adams: Vec<(String, &Adam)> = Vec::new();
        adams.extend(self.encoder_adam.iter().enumerate().map(|(k, a)| (format!("encoder.{k}"), a)));
        adams.extend(self.decoder_adam.iter().enumerate().map(|(k, a)| (format!("decoder.{k}"), a)));
        for (name, a) in [
            ("positions", &self.position_adam),
            ("amplitudes", &self.amplitude_adam),
            ("widths", &self.width_adam),
            ("scale", &self.scale_adam),
        ] {
            adams.push((name.to_string(), a));
        }
        for (name, a) in adams {
            let (m, v, step) = a.state();
            t.push(format!("{prefix}.adam.{name}.m"), &[m.len()], m);
            t.push(format!("{prefix}.adam.{name}.v"), &[v.len()], v);
            meta(t, &format!("adam.{name}.step"), step.to_string());
            meta(t, &format!("adam.{name}.rate"), a.config().learning_rate.to_bits().to_string());
        }
    }

    /// Restores a half model saved under `prefix`.
    ///
    /// # Errors
    /// A missing or misshapen tensor or value.
    pub fn load(
        prefix: &str,
        t: &Tensors,
        encoder: EncoderConfig,
        decoder: DecoderConfig,
        rates: &LearningRates,
    ) -> Result<Self> {
        let meta = |key: &str| {
            t.meta(&format!("{prefix}.{key}"))
                .ok_or_else(|| Error::missing(format!("checkpoint lacks '{prefix}.{key}'")))
        };
        let bits32 = |key: &str| -> Result<f32> {
            meta(key)?
                .parse::<u32>()
                .map(f32::from_bits)
                .map_err(|_| Error::invalid(format!("checkpoint value '{prefix}.{key}' is not a number")))
        };
        let encoder = Encoder::load(encoder, &format!("{prefix}.encoder"), t)?;
        let decoder = Decoder::load(decoder, &format!("{prefix}.decoder"), t)?;
        let positions = t.tensors.iter().find(|(n, _, _)| n == &format!("{prefix}.positions"));
        let ng = positions.map_or(0, |(_, s, _)| s[0]);
        let consensus = GaussianModel {
            positions: t.get(&format!("{prefix}.positions"), &[ng, 3])?.to_vec(),
            amplitudes: t.get(&format!("{prefix}.amplitudes"), &[ng])?.to_vec(),
            widths: t.get(&format!("{prefix}.widths"), &[ng])?.to_vec(),
            bonds: Vec::new(),
        };
        let mut half = HalfModel::new(consensus, encoder.config, decoder.config, rates, 0);
        half.encoder = encoder;
        half.decoder = decoder;
        half.noise_power = split_bits(meta("noise_power_exact")?)?;
        half.log_scale = bits32("log_scale")?;
        half.lambda = bits32("lambda")?;
        let sums = split_bits(meta("norm_sums")?)?;
        half.norm_sums = [sums.first().copied().unwrap_or(0.0), sums.get(1).copied().unwrap_or(0.0)];
        let ratio = meta("norm_ratio")?;
        half.norm_ratio = if ratio.is_empty() { None } else { split_bits(ratio)?.first().copied() };
        let restore = |name: String, a: &mut Adam| -> Result<()> {
            let len = a.state().0.len();
            let m = t.get(&format!("{prefix}.adam.{name}.m"), &[len])?.to_vec();
            let v = t.get(&format!("{prefix}.adam.{name}.v"), &[len])?.to_vec();
            let step = meta(&format!("adam.{name}.step"))?
                .parse()
                .map_err(|_| Error::invalid(format!("checkpoint step of '{name}' is not a number")))?;
            let rate = f32::from_bits(
                meta(&format!("adam.{name}.rate"))?
                    .parse()
                    .map_err(|_| Error::invalid(format!("checkpoint rate of '{name}' is not a number")))?,
            );
            *a = Adam::from_state(AdamConfig { learning_rate: rate, ..a.config() }, m, v, step);
            Ok(())
        };
        for (k, a) in half.encoder_adam.iter_mut().enumerate() {
            restore(format!("encoder.{k}"), a)?;
        }
        for (k, a) in half.decoder_adam.iter_mut().enumerate() {
            restore(format!("decoder.{k}"), a)?;
        }
        restore("positions".into(), &mut half.position_adam)?;
        restore("amplitudes".into(), &mut half.amplitude_adam)?;
        restore("widths".into(), &mut half.width_adam)?;
        restore("scale".into(), &mut half.scale_adam)?;
        Ok(half)
    }
}

fn join_bits(values: &[f64]) -> String {
    values.iter().map(|v| v.to_bits().to_string()).collect::<Vec<_>>().join(" ")
}

fn split_bits(text: &str) -> Result<Vec<f64>> {
    text.split_whitespace()
        .map(|w| {
            w.parse::<u64>()
                .map(f64::from_bits)
                .map_err(|_| Error::invalid("checkpoint value is not a number"))
        })
        .collect()
}
