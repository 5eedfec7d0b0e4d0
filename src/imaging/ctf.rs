//! The contrast transfer function, exactly as RELION 3.1 computes it (`src/ctf.h`, `ctf.cpp`).
//!
//! γ(k) = π λ (kᵀ A k) + (π/2) Cs λ³ |k|⁴ − φ − atan(Q/√(1−Q²)), with A = −R(θ)ᵀ diag(ΔfU, ΔfV) R(θ)
//! (defocus U along the astigmatism angle θ, positive = underfocus), and
//! CTF(k) = −scale · sin γ · exp(−B |k|²/4) = scale · (√(1−Q²) sin χ + Q cos χ) · e^{−B|k|²/4}
//! for χ = π λ Δf |k|² − (π/2) Cs λ³ |k|⁴ + φ. Frequencies k in 1/Å.

use crate::particles::{OpticsGroup, ParticleCtf};

/// Relativistic electron wavelength in Å for an acceleration voltage in kV (RELION's formula).
pub fn electron_wavelength(voltage_kv: f64) -> f64 {
    let v = voltage_kv * 1e3;
    12.2643247 / (v * (1.0 + v * 0.978466e-6)).sqrt()
}

/// One particle's CTF, with its constants precomputed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ctf {
    k1: f64,
    k2: f64,
    k3: f64,
    k4: f64,
    k5: f64,
    axx: f64,
    axy: f64,
    ayy: f64,
    scale: f64,
}

impl Ctf {
    /// The CTF of a particle in its optics group.
    pub fn new(optics: &OpticsGroup, particle: &ParticleCtf) -> Self {
        let lambda = electron_wavelength(optics.voltage_kv);
        let cs = optics.spherical_aberration_mm * 1e7;
        let q = optics.amplitude_contrast;
        let (s, c) = particle.defocus_angle_deg.to_radians().sin_cos();
        let (u, v) = (particle.defocus_u_angstrom, particle.defocus_v_angstrom);
        Ctf {
            k1: std::f64::consts::PI * lambda,
            k2: std::f64::consts::FRAC_PI_2 * cs * lambda.powi(3),
            k3: (q / (1.0 - q * q).sqrt()).atan(),
            k4: -particle.bfactor / 4.0,
            k5: particle.phase_shift_deg.to_radians(),
            axx: -u * c * c - v * s * s,
            axy: (v - u) * c * s,
            ayy: -u * s * s - v * c * c,
            scale: particle.scale,
        }
    }

    /// The CTF at spatial frequency (x, y) in 1/Å.
    #[inline]
    pub fn value(&self, x: f64, y: f64) -> f64 {
        let u2 = x * x + y * y;
        let gamma = self.k1 * (self.axx * x * x + 2.0 * self.axy * x * y + self.ayy * y * y)
            + self.k2 * u2 * u2
            - self.k5
            - self.k3;
        -self.scale * gamma.sin() * (self.k4 * u2).exp()
    }

    /// Fills the half plane ((n/2 + 1) × n, see [`crate::fft`]) of an n-pixel box at `pixel_size`
    /// Å; with `phase_flip`, only the sign (±1) is kept.
    ///
    /// # Panics
    /// If `out` is not (n/2 + 1)·n long.
    pub fn fill_half_plane(&self, n: usize, pixel_size: f64, phase_flip: bool, out: &mut [f32]) {
        let hx = n / 2 + 1;
        assert_eq!(out.len(), hx * n, "CTF half-plane length");
        let step = 1.0 / (n as f64 * pixel_size);
        for (iy, row) in out.chunks_exact_mut(hx).enumerate() {
            let y = crate::fft::signed_frequency(iy, n) as f64 * step;
            for (ix, v) in row.iter_mut().enumerate() {
                let c = self.value(ix as f64 * step, y);
                *v = if phase_flip { c.signum() as f32 } else { c as f32 };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn optics(kv: f64, cs: f64, q: f64) -> OpticsGroup {
        OpticsGroup {
            number: 1,
            name: "g".into(),
            pixel_size: 1.0,
            image_size: Some(64),
            voltage_kv: kv,
            spherical_aberration_mm: cs,
            amplitude_contrast: q,
            ctf_premultiplied: false,
        }
    }

    #[test]
    fn wavelengths_of_common_voltages() {
        // textbook relativistic wavelengths
        assert!((electron_wavelength(300.0) - 0.019687).abs() < 2e-6);
        assert!((electron_wavelength(200.0) - 0.025079).abs() < 2e-6);
        assert!((electron_wavelength(100.0) - 0.037014).abs() < 2e-6);
    }

    #[test]
    fn zeros_and_sign_match_the_closed_form() {
        // Cs = 0, Q = 0: CTF = sin(π λ Δf k²), zero at k² = m / (λ Δf), positive just above k = 0
        let df = 15000.0;
        let ctf = Ctf::new(
            &optics(300.0, 0.0, 0.0),
            &ParticleCtf { defocus_u_angstrom: df, defocus_v_angstrom: df, ..Default::default() },
        );
        let lambda = electron_wavelength(300.0);
        for m in 1..5 {
            let k = (m as f64 / (lambda * df)).sqrt();
            assert!(ctf.value(k, 0.0).abs() < 1e-9);
            assert!(ctf.value(0.0, k).abs() < 1e-9);
        }
        assert!(ctf.value(0.01, 0.0) > 0.0);
        // amplitude contrast: CTF(0) = Q
        let q = Ctf::new(&optics(300.0, 2.7, 0.1), &ParticleCtf::default());
        assert!((q.value(0.0, 0.0) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn astigmatism_puts_defocus_u_along_the_angle() {
        let p = ParticleCtf {
            defocus_u_angstrom: 20000.0,
            defocus_v_angstrom: 10000.0,
            defocus_angle_deg: 30.0,
            ..Default::default()
        };
        let ctf = Ctf::new(&optics(300.0, 0.0, 0.0), &p);
        let lambda = electron_wavelength(300.0);
        let (s, c) = 30f64.to_radians().sin_cos();
        for (df, (dx, dy)) in [(20000.0, (c, s)), (10000.0, (-s, c))] {
            let k: f64 = 0.037;
            let expected = (std::f64::consts::PI * lambda * df * k * k).sin();
            assert!((ctf.value(k * dx, k * dy) - expected).abs() < 1e-9);
        }
    }

    #[test]
    fn b_factor_scale_and_phase_flip() {
        let p = ParticleCtf {
            defocus_u_angstrom: 12000.0,
            defocus_v_angstrom: 12000.0,
            bfactor: 100.0,
            scale: 0.5,
            ..Default::default()
        };
        let plain = Ctf::new(&optics(300.0, 2.7, 0.07), &ParticleCtf { bfactor: 0.0, scale: 1.0, ..p });
        let damped = Ctf::new(&optics(300.0, 2.7, 0.07), &p);
        let k = 0.2;
        assert!(
            (damped.value(k, 0.0) - 0.5 * plain.value(k, 0.0) * (-100.0 * k * k / 4.0).exp()).abs() < 1e-12
        );
        let mut flip = vec![0.0; 33 * 64];
        damped.fill_half_plane(64, 1.0, true, &mut flip);
        assert!(flip.iter().all(|v| *v == 1.0 || *v == -1.0));
    }
}
