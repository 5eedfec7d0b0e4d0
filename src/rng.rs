//! A small deterministic random number generator (xoshiro256**, seeded by SplitMix64): the same
//! seed gives the same stream on every platform and thread count.

/// xoshiro256** generator.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator from a 64-bit seed.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng { s: [next(), next(), next(), next()] }
    }

    /// A generator for one purpose within a run: the stream of `seed` keyed by `keys` (e.g.
    /// epoch, half set, batch), independent of every other key and of the order of use.
    pub fn keyed(seed: u64, keys: &[u64]) -> Self {
        let mut h = seed;
        for &k in keys {
            h = Rng::new(h ^ k.wrapping_mul(0xD1B5_4A32_D192_ED03)).next_u64();
        }
        Rng::new(h)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A uniformly distributed rotation as RELION Euler angles (rot, tilt, psi) in degrees.
    pub fn uniform_euler(&mut self) -> [f64; 3] {
        let rot = self.range(-180.0, 180.0);
        let tilt = (1.0 - 2.0 * self.uniform()).acos().to_degrees();
        let psi = self.range(-180.0, 180.0);
        [rot, tilt, psi]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_sane_moments() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
        let mut r = Rng::new(7);
        let n = 200_000;
        let (mut s, mut s2, mut u) = (0.0, 0.0, 0.0);
        for _ in 0..n {
            let x = r.normal();
            s += x;
            s2 += x * x;
            u += r.uniform();
        }
        assert!((s / n as f64).abs() < 0.01);
        assert!((s2 / n as f64 - 1.0).abs() < 0.02);
        assert!((u / n as f64 - 0.5).abs() < 0.005);
        // uniform rotations: cos(tilt) uniform on [-1, 1], mean 0
        let mean_cos: f64 = (0..n).map(|_| r.uniform_euler()[1].to_radians().cos()).sum::<f64>() / n as f64;
        assert!(mean_cos.abs() < 0.01);
    }
}
