//! The image encoder (DynaMight's HetEncoder): 2×2 average pooling, Linear(→256) + ReLU,
//! Linear(256→128) + tanh, and two heads for the mean and log-variance of z (all with biases);
//! the reparameterisation z = μ + exp(½·logvar)·ε and the KL divergence to N(0, I).

use super::{Linear, relu, relu_backward, tanh, tanh_backward};

/// Sizes of an encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncoderConfig {
    /// Side of the (masked, re-centred, downsampled) input image; pooled to half of it.
    pub box_size: usize,
    /// Latent dimension.
    pub latent: usize,
    /// Widths of the two hidden layers (DynaMight: 256, 128).
    pub hidden: [usize; 2],
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig { box_size: 64, latent: 6, hidden: [256, 128] }
    }
}

/// Encoder weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoder {
    /// Sizes.
    pub config: EncoderConfig,
    /// Pooled image → hidden 0, ReLU.
    pub first: Linear,
    /// Hidden 0 → hidden 1, tanh.
    pub second: Linear,
    /// Hidden 1 → μ.
    pub mean: Linear,
    /// Hidden 1 → log σ².
    pub log_variance: Linear,
}

/// What the backward pass needs from the forward pass (per batch: B × widths, small).
pub struct EncoderCache {
    rows: usize,
    pooled: Vec<f32>,
    h0: Vec<f32>,
    h1: Vec<f32>,
}

/// Gradients of one layer's weights and bias.
pub type LayerGrads = (Vec<f32>, Vec<f32>);

/// Gradients of every weight and bias of an [`Encoder`], layer by layer.
#[derive(Clone, Debug, PartialEq)]
pub struct EncoderGrads {
    /// Gradients of `first`.
    pub first: LayerGrads,
    /// Gradients of `second`.
    pub second: LayerGrads,
    /// Gradients of `mean`.
    pub mean: LayerGrads,
    /// Gradients of `log_variance`.
    pub log_variance: LayerGrads,
}

/// 2×2 average pooling of (n × n) images, n even, into (n/2 × n/2).
pub fn avg_pool_2x2(images: &[f32], n: usize, out: &mut [f32]) {
    let h = n / 2;
    assert_eq!(out.len(), images.len() / 4, "pooled length");
    for (img, o) in images.chunks_exact(n * n).zip(out.chunks_exact_mut(h * h)) {
        for y in 0..h {
            for x in 0..h {
                let at = |dx: usize, dy: usize| img[(2 * y + dy) * n + 2 * x + dx];
                o[y * h + x] = 0.25 * (at(0, 0) + at(1, 0) + at(0, 1) + at(1, 1));
            }
        }
    }
}

impl Encoder {
    /// An encoder with weights from `normal` scaled by 1/√fan-in, biases zero.
    pub fn new(config: EncoderConfig, mut normal: impl FnMut() -> f32) -> Self {
        let inputs = (config.box_size / 2).pow(2);
        let mut layer = |i: usize, o: usize| {
            let s = 1.0 / (i as f32).sqrt();
            Linear::new(i, o, true, || normal() * s)
        };
        Encoder {
            config,
            first: layer(inputs, config.hidden[0]),
            second: layer(config.hidden[0], config.hidden[1]),
            mean: layer(config.hidden[1], config.latent),
            log_variance: layer(config.hidden[1], config.latent),
        }
    }

    /// μ and log σ² (B × latent each) of `rows` images (B × box²), and the cache for backward.
    pub fn forward(
        &self,
        images: &[f32],
        rows: usize,
        mean: &mut [f32],
        log_variance: &mut [f32],
    ) -> EncoderCache {
        let n = self.config.box_size;
        assert_eq!(images.len(), rows * n * n, "encoder input length");
        let mut pooled = vec![0.0; rows * (n / 2) * (n / 2)];
        avg_pool_2x2(images, n, &mut pooled);
        let mut h0 = vec![0.0; rows * self.config.hidden[0]];
        self.first.forward(&pooled, rows, &mut h0);
        relu(&mut h0);
        let mut h1 = vec![0.0; rows * self.config.hidden[1]];
        self.second.forward(&h0, rows, &mut h1);
        tanh(&mut h1);
        self.mean.forward(&h1, rows, mean);
        self.log_variance.forward(&h1, rows, log_variance);
        EncoderCache { rows, pooled, h0, h1 }
    }

    /// Backward from dL/dμ and dL/dlog σ².
    pub fn backward(&self, cache: &EncoderCache, d_mean: &[f32], d_log_variance: &[f32]) -> EncoderGrads {
        let rows = cache.rows;
        let zeros = |l: &Linear| (vec![0.0; l.weight.len()], vec![0.0; l.outputs]);
        let (mut g_first, mut g_second, mut g_mean, mut g_logvar) =
            (zeros(&self.first), zeros(&self.second), zeros(&self.mean), zeros(&self.log_variance));
        let mut dh1 = vec![0.0; cache.h1.len()];
        let mut dh1_b = vec![0.0; cache.h1.len()];
        self.mean.backward(&cache.h1, d_mean, rows, Some(&mut dh1), &mut g_mean.0, Some(&mut g_mean.1));
        self.log_variance.backward(
            &cache.h1,
            d_log_variance,
            rows,
            Some(&mut dh1_b),
            &mut g_logvar.0,
            Some(&mut g_logvar.1),
        );
        dh1.iter_mut().zip(&dh1_b).for_each(|(a, b)| *a += b);
        tanh_backward(&cache.h1, &mut dh1);
        let mut dh0 = vec![0.0; cache.h0.len()];
        self.second.backward(&cache.h0, &dh1, rows, Some(&mut dh0), &mut g_second.0, Some(&mut g_second.1));
        relu_backward(&cache.h0, &mut dh0);
        self.first.backward(&cache.pooled, &dh0, rows, None, &mut g_first.0, Some(&mut g_first.1));
        EncoderGrads { first: g_first, second: g_second, mean: g_mean, log_variance: g_logvar }
    }
}

/// z = μ + exp(½·logvar)·ε, with ε drawn by the caller (standard normal).
pub fn reparameterise(mean: &[f32], log_variance: &[f32], epsilon: &[f32], z: &mut [f32]) {
    for (((z, m), lv), e) in z.iter_mut().zip(mean).zip(log_variance).zip(epsilon) {
        *z = m + (0.5 * lv).exp() * e;
    }
}

/// Backward of [`reparameterise`]: adds dz to dμ and dz·ε·½·exp(½·logvar) to dlogvar.
pub fn reparameterise_backward(
    log_variance: &[f32],
    epsilon: &[f32],
    d_z: &[f32],
    d_mean: &mut [f32],
    d_log_variance: &mut [f32],
) {
    for i in 0..d_z.len() {
        d_mean[i] += d_z[i];
        d_log_variance[i] += d_z[i] * epsilon[i] * 0.5 * (0.5 * log_variance[i]).exp();
    }
}

/// KL(N(μ, σ²) ‖ N(0, I)) summed over latent dimensions and averaged over the batch of `rows`;
/// adds its gradient, times `weight`, to dμ and dlogvar, unless the batch's mean KL is below
/// `free_nats`: the term is max(KL, free_nats), so the posterior is never pushed below that
/// much information ("free bits", Kingma et al. 2016).
pub fn kl_divergence(
    mean: &[f32],
    log_variance: &[f32],
    rows: usize,
    weight: f32,
    free_nats: f64,
    d_mean: &mut [f32],
    d_log_variance: &mut [f32],
) -> f64 {
    let kl = mean
        .iter()
        .zip(log_variance)
        .map(|(&m, &lv)| -0.5 * (1.0 + lv as f64 - (m as f64).powi(2) - (lv as f64).exp()))
        .sum::<f64>()
        / rows as f64;
    if kl < free_nats {
        return kl;
    }
    let scale = weight / rows as f32;
    for i in 0..mean.len() {
        let (m, lv) = (mean[i], log_variance[i]);
        d_mean[i] += scale * m;
        d_log_variance[i] += scale * 0.5 * (lv.exp() - 1.0);
    }
    kl
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck;
    use crate::rng::Rng;

    fn setup() -> (Encoder, Vec<f32>, Vec<f32>, usize) {
        let mut rng = Rng::new(12);
        let config = EncoderConfig { box_size: 8, latent: 3, hidden: [10, 6] };
        let mut e = Encoder::new(config, || rng.normal() as f32);
        for l in [&mut e.first, &mut e.second, &mut e.mean, &mut e.log_variance] {
            l.bias = Some((0..l.outputs).map(|_| 0.1 * rng.normal() as f32).collect());
        }
        let rows = 4;
        let images: Vec<f32> = (0..rows * 64).map(|_| rng.normal() as f32).collect();
        let eps: Vec<f32> = (0..rows * 3).map(|_| rng.normal() as f32).collect();
        (e, images, eps, rows)
    }

    /// loss = Σ r·z + KL, through the encoder and the reparameterisation, evaluated
    /// independently in f64 (so that finite differences are not limited by f32 rounding).
    fn loss(e: &Encoder, images: &[f32], eps: &[f32], rows: usize) -> f64 {
        let layer = |l: &Linear, x: &[f64]| -> Vec<f64> {
            (0..l.outputs)
                .map(|o| {
                    let b = l.bias.as_ref().map_or(0.0, |b| b[o] as f64);
                    b + (0..l.inputs).map(|i| l.weight[o * l.inputs + i] as f64 * x[i]).sum::<f64>()
                })
                .collect()
        };
        let n = e.config.box_size;
        let mut total = 0.0;
        for (row, img) in images.chunks(n * n).enumerate() {
            let pooled: Vec<f64> = (0..(n / 2) * (n / 2))
                .map(|k| {
                    let (y, x) = (k / (n / 2), k % (n / 2));
                    [(0, 0), (1, 0), (0, 1), (1, 1)]
                        .iter()
                        .map(|(dx, dy)| img[(2 * y + dy) * n + 2 * x + dx] as f64)
                        .sum::<f64>()
                        / 4.0
                })
                .collect();
            let h0: Vec<f64> = layer(&e.first, &pooled).into_iter().map(|v| v.max(0.0)).collect();
            let h1: Vec<f64> = layer(&e.second, &h0).into_iter().map(f64::tanh).collect();
            let (m, lv) = (layer(&e.mean, &h1), layer(&e.log_variance, &h1));
            for k in 0..3 {
                let i = row * 3 + k;
                let z = m[k] + (0.5 * lv[k]).exp() * eps[i] as f64;
                let r = ((i * 7) % 5) as f64 - 2.0;
                total += r * z - 0.5 * (1.0 + lv[k] - m[k] * m[k] - lv[k].exp()) / rows as f64;
            }
        }
        total
    }

    #[test]
    fn encoder_reparameterisation_and_kl_backward_match_finite_differences() {
        let (e, images, eps, rows) = setup();
        let (mut m, mut lv, mut z) = (vec![0.0; rows * 3], vec![0.0; rows * 3], vec![0.0; rows * 3]);
        let cache = e.forward(&images, rows, &mut m, &mut lv);
        reparameterise(&m, &lv, &eps, &mut z);
        let r: Vec<f32> = (0..z.len()).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
        let (mut dm, mut dl) = (vec![0.0; z.len()], vec![0.0; z.len()]);
        reparameterise_backward(&lv, &eps, &r, &mut dm, &mut dl);
        kl_divergence(&m, &lv, rows, 1.0, 0.0, &mut dm, &mut dl);
        let g = e.backward(&cache, &dm, &dl);
        type Get = fn(&mut Encoder) -> &mut Linear;
        let layers: [(&str, Get, &LayerGrads); 4] = [
            ("first", |e| &mut e.first, &g.first),
            ("second", |e| &mut e.second, &g.second),
            ("mean", |e| &mut e.mean, &g.mean),
            ("log_variance", |e| &mut e.log_variance, &g.log_variance),
        ];
        for (name, get, (gw, gb)) in layers {
            let w0 = get(&mut e.clone()).weight.clone();
            let with_w = |w: &[f32]| {
                let mut c = e.clone();
                get(&mut c).weight = w.to_vec();
                loss(&c, &images, &eps, rows)
            };
            gradcheck(with_w, &w0, gw, 1e-3, 2e-3).unwrap_or_else(|err| panic!("{name} weight: {err}"));
            let b0 = get(&mut e.clone()).bias.clone().unwrap();
            let with_b = |b: &[f32]| {
                let mut c = e.clone();
                get(&mut c).bias = Some(b.to_vec());
                loss(&c, &images, &eps, rows)
            };
            gradcheck(with_b, &b0, gb, 1e-3, 2e-3).unwrap_or_else(|err| panic!("{name} bias: {err}"));
        }
    }

    #[test]
    fn kl_is_zero_for_the_prior_and_pooling_averages() {
        let (mut dm, mut dl) = (vec![0.0; 4], vec![0.0; 4]);
        assert_eq!(kl_divergence(&[0.0; 4], &[0.0; 4], 2, 1.0, 0.0, &mut dm, &mut dl), 0.0);
        // KL(N(1, e¹)) per dimension = ½(e − 1 − 1 + 1) = ½(e − 1)
        let kl = kl_divergence(&[1.0], &[1.0], 1, 1.0, 0.0, &mut [0.0], &mut [0.0]);
        assert!((kl - 0.5 * (std::f64::consts::E - 1.0)).abs() < 1e-6);
        // below the free nats the KL is reported but pulls nothing; above, it pulls as before
        let (mut dm, mut dl) = ([0.0f32], [0.0f32]);
        assert!((kl_divergence(&[1.0], &[1.0], 1, 1.0, 1.0, &mut dm, &mut dl) - kl).abs() < 1e-12);
        assert_eq!((dm, dl), ([0.0], [0.0]));
        kl_divergence(&[1.0], &[1.0], 1, 1.0, 0.5, &mut dm, &mut dl);
        assert!((dm[0] - 1.0).abs() < 1e-6 && (dl[0] - 0.5 * (std::f32::consts::E - 1.0)).abs() < 1e-6);
        let mut out = vec![0.0; 4];
        avg_pool_2x2(&(0..16).map(|v| v as f32).collect::<Vec<_>>(), 4, &mut out);
        assert_eq!(out, [2.5, 4.5, 10.5, 12.5]);
    }
}
