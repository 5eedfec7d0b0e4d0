//! Element-wise activations and their derivatives (from the forward output where possible).

/// ELU (α = 1) in place: x for x > 0, eˣ − 1 otherwise (absolute error < 2·10⁻⁷).
pub fn elu(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above
        return unsafe { elu_avx2(x) };
    }
    elu_portable(x);
}

/// The same loop compiled for AVX2 (8 lanes instead of SSE's 4), chosen at run time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn elu_avx2(x: &mut [f32]) {
    elu_portable(x);
}

/// Branch-free, so that the loop vectorises (libm's expm1 cost 4× the GEMMs).
#[inline(always)]
fn elu_portable(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = if *v > 0.0 { *v } else { exp_non_positive(*v) - 1.0 });
}

/// eˣ for x ≤ 0 (below −87 the result is 0 to f32 precision): 2^k·2^f with k = round(x·log₂e),
/// |f| ≤ ½, 2^f by its Taylor series to degree 7 (relative error < 10⁻⁸ before rounding).
#[inline(always)]
fn exp_non_positive(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding and subtracting it rounds to an integer
    let t = x.max(-87.0) * LOG2_E;
    let shifted = t + ROUND;
    let k = shifted - ROUND;
    let f = (t - k) * std::f32::consts::LN_2;
    let p = 1.0
        + f * (1.0
            + f * (0.5
                + f * (1.0 / 6.0
                    + f * (1.0 / 24.0 + f * (1.0 / 120.0 + f * (1.0 / 720.0 + f * (1.0 / 5040.0)))))));
    // the integer k sits in the low mantissa bits of `shifted`: integer arithmetic only (a float
    // to int `as` cast saturates and stops the loop from vectorising)
    let k_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    p * f32::from_bits(k_bits.wrapping_add(127) << 23)
}

/// ELU backward from its output y: dx = dy for y > 0, dy·(y + 1) otherwise (branch-free, so
/// that it vectorises).
pub fn elu_backward(y: &[f32], dy: &mut [f32]) {
    dy.iter_mut().zip(y).for_each(|(g, &y)| *g *= if y > 0.0 { 1.0 } else { y + 1.0 });
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

#[cfg(test)]
mod tests {
    #[test]
    fn fast_elu_matches_libm() {
        let xs: Vec<f32> = (0..200_001).map(|i| -100.0 + i as f32 * 0.0005).collect();
        let mut y = xs.clone();
        super::elu(&mut y);
        for (x, y) in xs.iter().zip(&y) {
            let exact = if *x > 0.0 { *x as f64 } else { (*x as f64).exp_m1() };
            assert!((*y as f64 - exact).abs() < 2e-7, "elu({x}) = {y}, exact {exact}");
        }
    }
}
