//! Neural-network compute core without a framework: dense layers over row batches with
//! hand-written backward passes, activations, fused Adam, and the finite-difference oracle that
//! checks every backward pass. Plain f32 buffers, row-major; GEMM through the `gemm` crate.

mod activation;
mod adam;
mod decoder;
mod encoder;
mod encoding;
mod gradcheck;
mod linear;

pub use activation::{elu, elu_backward, relu, relu_backward, tanh, tanh_backward};
pub use adam::{Adam, AdamConfig};
pub use decoder::{Decoder, DecoderConfig, DecoderGrads};
pub use encoder::{
    Encoder, EncoderCache, EncoderConfig, EncoderGrads, avg_pool_2x2, kl_divergence, reparameterise,
    reparameterise_backward,
};
pub use encoding::{encoding_frequencies, positional_encoding, positional_encoding_backward};
pub use gradcheck::gradcheck;
pub use linear::Linear;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..len).map(|_| rng.normal() as f32).collect()
    }

    /// loss = Σ y·r for a fixed random r, so that dL/dy = r.
    fn weighted_sum(y: &[f32], r: &[f32]) -> f64 {
        y.iter().zip(r).map(|(a, b)| *a as f64 * *b as f64).sum()
    }

    #[test]
    fn linear_backward_matches_finite_differences() {
        let (rows, inputs, outputs) = (5, 7, 4);
        let mut layer = Linear::new(inputs, outputs, true, {
            let mut rng = Rng::new(1);
            move || rng.normal() as f32 * 0.5
        });
        layer.bias = Some(random(outputs, 2));
        let x = random(rows * inputs, 3);
        let r = random(rows * outputs, 4);
        let (mut dx, mut dw, mut db) =
            (vec![0.0; x.len()], vec![0.0; layer.weight.len()], vec![0.0; outputs]);
        layer.backward(&x, &r, rows, Some(&mut dx), &mut dw, Some(&mut db));
        let out = |layer: &Linear, x: &[f32]| {
            let mut y = vec![0.0; rows * outputs];
            layer.forward(x, rows, &mut y);
            weighted_sum(&y, &r)
        };
        gradcheck(|x| out(&layer, x), &x, &dx, 1e-2, 1e-3).unwrap();
        let w0 = layer.weight.clone();
        gradcheck(
            |w| {
                let mut l = layer.clone();
                l.weight = w.to_vec();
                out(&l, &x)
            },
            &w0,
            &dw,
            1e-2,
            1e-3,
        )
        .unwrap();
        let b0 = layer.bias.clone().unwrap();
        gradcheck(
            |b| {
                let mut l = layer.clone();
                l.bias = Some(b.to_vec());
                out(&l, &x)
            },
            &b0,
            &db,
            1e-2,
            1e-3,
        )
        .unwrap();
    }

    #[test]
    fn activation_backwards_match_finite_differences() {
        type Pair = (fn(&mut [f32]), fn(&[f32], &mut [f32]));
        let pairs: [(&str, Pair); 3] =
            [("elu", (elu, elu_backward)), ("relu", (relu, relu_backward)), ("tanh", (tanh, tanh_backward))];
        // keep away from ReLU's kink, where the derivative is undefined
        let x: Vec<f32> =
            random(40, 5).into_iter().map(|v| if v.abs() < 0.05 { v + 0.2 } else { v }).collect();
        let r = random(40, 6);
        for (name, (forward, backward)) in pairs {
            let mut y = x.clone();
            forward(&mut y);
            let mut dx = r.clone();
            backward(&y, &mut dx);
            let loss = |x: &[f32]| {
                let mut y = x.to_vec();
                forward(&mut y);
                weighted_sum(&y, &r)
            };
            gradcheck(loss, &x, &dx, 1e-3, 1e-3).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    /// A two-layer MLP (Linear, ELU, Linear) trained for a few Adam steps: the same seed gives
    /// the same bits, and the loss goes down.
    fn train(seed: u64, steps: usize) -> (Vec<f32>, Vec<f64>) {
        let mut rng = Rng::new(seed);
        let mut init = move || rng.normal() as f32 * 0.3;
        let (rows, width) = (64, 16);
        let mut l1 = Linear::new(3, width, false, &mut init);
        let mut l2 = Linear::new(width, 2, false, &mut init);
        let x = random(rows * 3, seed + 1);
        let target: Vec<f32> = x.chunks(3).flat_map(|p| [p[0] * p[1], (p[2]).sin()]).collect();
        let config = AdamConfig { learning_rate: 1e-2, weight_decay: 1e-4, ..Default::default() };
        let (mut a1, mut a2) = (Adam::new(l1.weight.len(), config), Adam::new(l2.weight.len(), config));
        let mut losses = Vec::new();
        for _ in 0..steps {
            let mut h = vec![0.0; rows * width];
            l1.forward(&x, rows, &mut h);
            elu(&mut h);
            let mut y = vec![0.0; rows * 2];
            l2.forward(&h, rows, &mut y);
            let dy: Vec<f32> = y.iter().zip(&target).map(|(a, b)| 2.0 * (a - b) / rows as f32).collect();
            losses.push(
                y.iter().zip(&target).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / rows as f64,
            );
            let (mut dh, mut dw2, mut dw1) =
                (vec![0.0; h.len()], vec![0.0; l2.weight.len()], vec![0.0; l1.weight.len()]);
            l2.backward(&h, &dy, rows, Some(&mut dh), &mut dw2, None);
            elu_backward(&h, &mut dh);
            l1.backward(&x, &dh, rows, None, &mut dw1, None);
            a2.step(&mut l2.weight, &dw2);
            a1.step(&mut l1.weight, &dw1);
        }
        (l1.weight.into_iter().chain(l2.weight).collect(), losses)
    }

    #[test]
    fn training_is_deterministic_and_learns() {
        let (w1, losses) = train(7, 200);
        let (w2, _) = train(7, 200);
        assert_eq!(
            w1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            w2.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        assert!(losses[199] < 0.3 * losses[0], "loss {} → {}", losses[0], losses[199]);
    }

    #[test]
    fn adam_first_steps_follow_the_closed_form() {
        // step 1: m̂ = g, v̂ = g², so θ moves by −lr·g/(|g| + ε); with weight decay g += λθ
        let config = AdamConfig { learning_rate: 0.1, weight_decay: 0.5, ..Default::default() };
        let mut adam = Adam::new(3, config);
        let mut p = vec![1.0f32, -2.0, 0.5];
        let g = vec![0.3f32, 0.0, -4.0];
        let expected: Vec<f32> = p
            .iter()
            .zip(&g)
            .map(|(&p, &g)| {
                let g = g + 0.5 * p;
                p - 0.1 * g / (g.abs() + 1e-8)
            })
            .collect();
        adam.step(&mut p, &g);
        for (a, b) in p.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-6, "{p:?} vs {expected:?}");
        }
    }
}

/// Saving and loading network weights through [`crate::io::weights::Tensors`].
mod saving {
    use super::{Decoder, DecoderConfig, Encoder, EncoderConfig, Linear};
    use crate::error::Result;
    use crate::io::weights::Tensors;

    fn put(t: &mut Tensors, name: &str, l: &Linear) {
        t.push(format!("{name}.weight"), &[l.outputs, l.inputs], &l.weight);
        if let Some(b) = &l.bias {
            t.push(format!("{name}.bias"), &[l.outputs], b);
        }
    }

    fn take(t: &Tensors, name: &str, l: &mut Linear) -> Result<()> {
        l.weight = t.get(&format!("{name}.weight"), &[l.outputs, l.inputs])?.to_vec();
        if l.bias.is_some() {
            l.bias = Some(t.get(&format!("{name}.bias"), &[l.outputs])?.to_vec());
        }
        Ok(())
    }

    impl Decoder {
        /// Adds the weights under `prefix` (PyTorch-style names: `prefix.hidden.3.weight`).
        pub fn save(&self, prefix: &str, t: &mut Tensors) {
            put(t, &format!("{prefix}.first_position"), &self.first_position);
            put(t, &format!("{prefix}.first_latent"), &self.first_latent);
            for (k, l) in self.hidden.iter().enumerate() {
                put(t, &format!("{prefix}.hidden.{k}"), l);
            }
            put(t, &format!("{prefix}.head"), &self.head);
            put(t, &format!("{prefix}.last"), &self.last);
        }

        /// A decoder of `config` with the weights saved under `prefix`.
        pub fn load(config: DecoderConfig, prefix: &str, t: &Tensors) -> Result<Self> {
            let mut d = Decoder::new(config, || 0.0);
            take(t, &format!("{prefix}.first_position"), &mut d.first_position)?;
            take(t, &format!("{prefix}.first_latent"), &mut d.first_latent)?;
            for (k, l) in d.hidden.iter_mut().enumerate() {
                take(t, &format!("{prefix}.hidden.{k}"), l)?;
            }
            take(t, &format!("{prefix}.head"), &mut d.head)?;
            take(t, &format!("{prefix}.last"), &mut d.last)?;
            Ok(d)
        }
    }

    impl Encoder {
        /// Adds the weights under `prefix`.
        pub fn save(&self, prefix: &str, t: &mut Tensors) {
            for (name, l) in [
                ("first", &self.first),
                ("second", &self.second),
                ("mean", &self.mean),
                ("log_variance", &self.log_variance),
            ] {
                put(t, &format!("{prefix}.{name}"), l);
            }
        }

        /// An encoder of `config` with the weights saved under `prefix`.
        pub fn load(config: EncoderConfig, prefix: &str, t: &Tensors) -> Result<Self> {
            let mut e = Encoder::new(config, || 0.0);
            take(t, &format!("{prefix}.first"), &mut e.first)?;
            take(t, &format!("{prefix}.second"), &mut e.second)?;
            take(t, &format!("{prefix}.mean"), &mut e.mean)?;
            take(t, &format!("{prefix}.log_variance"), &mut e.log_variance)?;
            Ok(e)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::rng::Rng;

        #[test]
        fn networks_survive_a_trip_through_a_weights_file() {
            let mut rng = Rng::new(4);
            let dc = DecoderConfig { depth: 3, ..Default::default() };
            let ec = EncoderConfig { box_size: 16, ..Default::default() };
            let mut d = Decoder::new(dc, || rng.normal() as f32);
            d.last.weight = vec![0.5; 9];
            let e = Encoder::new(ec, || rng.normal() as f32);
            let mut t = Tensors::default();
            d.save("half1.decoder", &mut t);
            e.save("half1.encoder", &mut t);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("weights.safetensors");
            t.write(&path).unwrap();
            let back = Tensors::read(&path).unwrap();
            assert_eq!(Decoder::load(dc, "half1.decoder", &back).unwrap(), d);
            assert_eq!(Encoder::load(ec, "half1.encoder", &back).unwrap(), e);
            // a wrong architecture is named
            let wrong = DecoderConfig { width: 16, ..dc };
            let err = Decoder::load(wrong, "half1.decoder", &back).unwrap_err();
            assert_eq!(err.field(), Some("half1.decoder.first_position.weight"));
        }
    }
}
