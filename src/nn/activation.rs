//! Element-wise activations and their derivatives (from the forward output where possible).

/// ELU (α = 1) in place: x for x > 0, eˣ − 1 otherwise.
pub fn elu(x: &mut [f32]) {
    x.iter_mut().for_each(|v| {
        if *v <= 0.0 {
            *v = v.exp_m1();
        }
    });
}

/// ELU backward from its output y: dx = dy for y > 0, dy·(y + 1) otherwise.
pub fn elu_backward(y: &[f32], dy: &mut [f32]) {
    dy.iter_mut().zip(y).for_each(|(g, &y)| {
        if y <= 0.0 {
            *g *= y + 1.0;
        }
    });
}

/// ReLU in place.
pub fn relu(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// ReLU backward from its output y.
pub fn relu_backward(y: &[f32], dy: &mut [f32]) {
    dy.iter_mut().zip(y).for_each(|(g, &y)| {
        if y <= 0.0 {
            *g = 0.0;
        }
    });
}

/// tanh in place.
pub fn tanh(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = v.tanh());
}

/// tanh backward from its output y: dx = dy·(1 − y²).
pub fn tanh_backward(y: &[f32], dy: &mut [f32]) {
    dy.iter_mut().zip(y).for_each(|(g, &y)| *g *= 1.0 - y * y);
}
