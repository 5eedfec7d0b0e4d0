//! The oracle for every hand-written backward pass: central finite differences.

/// Checks an analytic gradient against central finite differences of `loss` at `x`.
///
/// `loss` evaluates the (f32) computation and returns its scalar in f64; `grad` is the analytic
/// gradient at `x`. Each coordinate is perturbed by ±`eps`·max(1, |x_i|). Passes when, for every
/// coordinate, |analytic − numeric| ≤ `tolerance`·max(|analytic|, |numeric|, `floor`), where
/// `floor` (the typical gradient size) keeps near-zero entries from failing on rounding.
///
/// # Errors
/// The worst coordinate, with both values.
pub fn gradcheck(
    mut loss: impl FnMut(&[f32]) -> f64,
    x: &[f32],
    grad: &[f32],
    eps: f64,
    tolerance: f64,
) -> Result<(), String> {
    assert_eq!(x.len(), grad.len(), "one gradient entry per input");
    let floor = grad.iter().map(|g| g.abs() as f64).fold(0.0, f64::max) * 1e-2 + 1e-12;
    let mut probe = x.to_vec();
    let mut worst: Option<(usize, f64, f64, f64)> = None;
    for i in 0..x.len() {
        let h = eps * (x[i].abs() as f64).max(1.0);
        probe[i] = (x[i] as f64 + h) as f32;
        let up = loss(&probe);
        probe[i] = (x[i] as f64 - h) as f32;
        let down = loss(&probe);
        probe[i] = x[i];
        // the actual step after rounding to f32
        let step = ((x[i] as f64 + h) as f32 as f64) - ((x[i] as f64 - h) as f32 as f64);
        let numeric = (up - down) / step;
        let analytic = grad[i] as f64;
        let error = (analytic - numeric).abs() / analytic.abs().max(numeric.abs()).max(floor);
        if worst.is_none_or(|w| error > w.3) {
            worst = Some((i, analytic, numeric, error));
        }
    }
    match worst {
        Some((i, a, n, e)) if e > tolerance => {
            Err(format!("coordinate {i}: analytic {a:.6e}, numeric {n:.6e}, relative error {e:.2e}"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_right_gradient_and_rejects_a_wrong_one() {
        let f = |x: &[f32]| x.iter().map(|&v| (v as f64).powi(3)).sum::<f64>();
        let x = [0.5f32, -1.5, 2.0];
        let right: Vec<f32> = x.iter().map(|v| 3.0 * v * v).collect();
        assert!(gradcheck(f, &x, &right, 1e-3, 1e-3).is_ok());
        let mut wrong = right.clone();
        wrong[1] *= 1.01;
        assert!(gradcheck(f, &x, &wrong, 1e-3, 1e-3).unwrap_err().contains("coordinate 1"));
    }
}
