//! Adam with L2 weight decay (as torch.optim.Adam's `weight_decay`), fused: one pass per buffer.

/// Adam's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub learning_rate: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Added to the root of the second moment.
    pub epsilon: f32,
    /// L2 weight decay: the gradient gains `weight_decay`·θ.
    pub weight_decay: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { learning_rate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weight_decay: 0.0 }
    }
}

/// Moments of one parameter buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    config: AdamConfig,
    m: Vec<f32>,
    v: Vec<f32>,
    step: i32,
}

impl Adam {
    /// Zero moments for a buffer of `len` parameters.
    pub fn new(len: usize, config: AdamConfig) -> Self {
        Adam { config, m: vec![0.0; len], v: vec![0.0; len], step: 0 }
    }

    /// Changes the settings (e.g. a scheduled learning rate); the moments are kept.
    pub fn set_config(&mut self, config: AdamConfig) {
        self.config = config;
    }

    /// The moments and the step count (for checkpoints).
    pub fn state(&self) -> (&[f32], &[f32], i32) {
        (&self.m, &self.v, self.step)
    }

    /// An optimiser resumed from saved moments and step count.
    ///
    /// # Panics
    /// If the moments differ in length.
    pub fn from_state(config: AdamConfig, m: Vec<f32>, v: Vec<f32>, step: i32) -> Self {
        assert_eq!(m.len(), v.len(), "moment lengths");
        Adam { config, m, v, step }
    }

    /// The settings.
    pub fn config(&self) -> AdamConfig {
        self.config
    }

    /// One step: updates moments and parameters in a single pass.
    ///
    /// # Panics
    /// If the buffers do not have the length given to [`Adam::new`].
    pub fn step(&mut self, params: &mut [f32], grads: &[f32]) {
        assert_eq!(params.len(), self.m.len(), "parameter buffer length");
        assert_eq!(grads.len(), self.m.len(), "gradient buffer length");
        self.step += 1;
        let c = self.config;
        let bias1 = 1.0 - c.beta1.powi(self.step);
        let bias2 = 1.0 - c.beta2.powi(self.step);
        let rate = c.learning_rate / bias1;
        let root2 = bias2.sqrt();
        for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(&mut self.m).zip(&mut self.v) {
            let g = g + c.weight_decay * *p;
            *m = c.beta1 * *m + (1.0 - c.beta1) * g;
            *v = c.beta2 * *v + (1.0 - c.beta2) * g * g;
            *p -= rate * *m / (v.sqrt() / root2 + c.epsilon);
        }
    }
}
