//! DynaMight's positional encoding of 3D positions (box units), and its gradient.
//!
//! Frequencies f_k = (N/2)·(2/N)^{k/(K−1)}, k = 0..K−1, from N/2 down to 1; each coordinate
//! gives [sin(c·f_0..f_{K−1}), cos(c·f_0..f_{K−1})], axes x, y, z concatenated: 6K values.

/// The K frequencies for box size N.
pub fn encoding_frequencies(box_size: usize, count: usize) -> Vec<f32> {
    let n = box_size as f64;
    (0..count)
        .map(|k| {
            let t = if count > 1 { k as f64 / (count - 1) as f64 } else { 0.0 };
            ((n / 2.0) * (2.0 / n).powf(t)) as f32
        })
        .collect()
}

/// Encodes `positions` (rows × 3) into `out` (rows × 6K).
///
/// # Panics
/// If the buffers do not match.
pub fn positional_encoding(positions: &[f32], frequencies: &[f32], out: &mut [f32]) {
    let k = frequencies.len();
    assert_eq!(out.len(), positions.len() / 3 * 6 * k, "encoding output length");
    for (p, row) in positions.chunks_exact(3).zip(out.chunks_exact_mut(6 * k)) {
        for (axis, &c) in p.iter().enumerate() {
            let block = &mut row[axis * 2 * k..(axis + 1) * 2 * k];
            for (j, &f) in frequencies.iter().enumerate() {
                let (s, co) = (c * f).sin_cos();
                block[j] = s;
                block[k + j] = co;
            }
        }
    }
}

/// Backward: adds dL/dposition (rows × 3) from dL/dencoding (rows × 6K).
pub fn positional_encoding_backward(
    positions: &[f32],
    frequencies: &[f32],
    d_out: &[f32],
    d_positions: &mut [f32],
) {
    let k = frequencies.len();
    assert_eq!(d_positions.len(), positions.len(), "position-gradient length");
    for ((p, row), dp) in
        positions.chunks_exact(3).zip(d_out.chunks_exact(6 * k)).zip(d_positions.chunks_exact_mut(3))
    {
        for axis in 0..3 {
            let block = &row[axis * 2 * k..(axis + 1) * 2 * k];
            let mut g = 0.0;
            for (j, &f) in frequencies.iter().enumerate() {
                let (s, c) = (p[axis] * f).sin_cos();
                g += f * (c * block[j] - s * block[k + j]);
            }
            dp[axis] += g;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck;
    use crate::rng::Rng;

    #[test]
    fn frequencies_run_from_half_the_box_to_one() {
        let f = encoding_frequencies(64, 10);
        assert!((f[0] - 32.0).abs() < 1e-5 && (f[9] - 1.0).abs() < 1e-5);
        assert!(f.windows(2).all(|w| w[0] > w[1]));
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = Rng::new(3);
        let positions: Vec<f32> = (0..12).map(|_| rng.range(-0.4, 0.4) as f32).collect();
        let f = encoding_frequencies(32, 4);
        let r: Vec<f32> = (0..4 * 24).map(|_| rng.normal() as f32).collect();
        let mut grad = vec![0.0; 12];
        positional_encoding_backward(&positions, &f, &r, &mut grad);
        let loss = |p: &[f32]| {
            let mut e = vec![0.0; 4 * 24];
            positional_encoding(p, &f, &mut e);
            e.iter().zip(&r).map(|(a, b)| (*a as f64) * (*b as f64)).sum::<f64>()
        };
        gradcheck(loss, &positions, &grad, 1e-4, 2e-3).unwrap();
    }
}
