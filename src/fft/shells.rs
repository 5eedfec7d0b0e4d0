//! Frequencies of the half-plane layout.

/// How many full-spectrum frequencies a half-spectrum element at kx stands for: 1 on the kx = 0
/// plane (and kx = n/2 for even n, its own Friedel mate), 2 elsewhere.
#[inline]
pub fn friedel_mates(kx: usize, n: usize) -> f32 {
    if kx == 0 || (n % 2 == 0 && kx == n / 2) { 1.0 } else { 2.0 }
}

/// Signed frequency of row/slice index `i` of an axis of length `n` (0, 1, …, n/2, −(n−1)/2, …, −1).
#[inline]
pub fn signed_frequency(i: usize, n: usize) -> i64 {
    if i <= n / 2 { i as i64 } else { i as i64 - n as i64 }
}

/// Row/slice index of signed frequency `k` on an axis of length `n`.
#[inline]
pub fn frequency_index(k: i64, n: usize) -> usize {
    k.rem_euclid(n as i64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequencies_wrap_like_fftw() {
        let even: Vec<i64> = (0..6).map(|i| signed_frequency(i, 6)).collect();
        assert_eq!(even, [0, 1, 2, 3, -2, -1]);
        let odd: Vec<i64> = (0..5).map(|i| signed_frequency(i, 5)).collect();
        assert_eq!(odd, [0, 1, 2, -2, -1]);
        for k in -2..=3 {
            assert_eq!(signed_frequency(frequency_index(k, 6), 6), k);
        }
    }
}
