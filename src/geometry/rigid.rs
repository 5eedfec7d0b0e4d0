//! Least-squares rigid fit of point sets (Horn's quaternion method): the rotation R and
//! translation t minimising Σ wᵢ‖R·pᵢ + t − qᵢ‖².

use super::Mat3;
use crate::linalg::symmetric_eigen;

/// A rigid transform x ↦ R·x + t.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rigid {
    /// Rotation.
    pub rotation: Mat3,
    /// Translation.
    pub translation: [f64; 3],
}

impl Rigid {
    /// Applies the transform to a point.
    pub fn apply(&self, p: [f64; 3]) -> [f64; 3] {
        let r = &self.rotation;
        [0, 1, 2].map(|i| r[i][0] * p[0] + r[i][1] * p[1] + r[i][2] * p[2] + self.translation[i])
    }

    /// Applies the inverse transform, Rᵀ·(q − t).
    pub fn apply_inverse(&self, q: [f64; 3]) -> [f64; 3] {
        let (r, t) = (&self.rotation, self.translation);
        let d = [q[0] - t[0], q[1] - t[1], q[2] - t[2]];
        [0, 1, 2].map(|i| r[0][i] * d[0] + r[1][i] * d[1] + r[2][i] * d[2])
    }
}

/// The rigid transform taking `from` onto `to` (xyz triples, f32) in the least-squares sense,
/// each point weighted by `weights` (all 1 when `None`).
///
/// # Panics
/// If the point sets differ in length or are empty.
pub fn fit_rigid(from: &[f32], to: &[f32], weights: Option<&[f32]>) -> Rigid {
    assert_eq!(from.len(), to.len(), "point sets of different lengths");
    assert!(!from.is_empty() && from.len() % 3 == 0, "points are xyz triples");
    let n = from.len() / 3;
    let w = |i: usize| weights.map_or(1.0, |w| w[i] as f64);
    let total: f64 = (0..n).map(w).sum();
    let centroid = |p: &[f32]| {
        let mut c = [0.0f64; 3];
        for i in 0..n {
            (0..3).for_each(|k| c[k] += w(i) * p[3 * i + k] as f64);
        }
        c.map(|v| v / total)
    };
    let (cp, cq) = (centroid(from), centroid(to));
    // cross-covariance S_ab = Σ w·p_a·q_b of the centred sets
    let mut s = [[0.0f64; 3]; 3];
    for i in 0..n {
        let p = [0, 1, 2].map(|k| from[3 * i + k] as f64 - cp[k]);
        let q = [0, 1, 2].map(|k| to[3 * i + k] as f64 - cq[k]);
        for a in 0..3 {
            for b in 0..3 {
                s[a][b] += w(i) * p[a] * q[b];
            }
        }
    }
    let [[sxx, sxy, sxz], [syx, syy, syz], [szx, szy, szz]] = s;
    let k = [
        sxx + syy + szz,
        syz - szy,
        szx - sxz,
        sxy - syx,
        syz - szy,
        sxx - syy - szz,
        sxy + syx,
        szx + sxz,
        szx - sxz,
        sxy + syx,
        -sxx + syy - szz,
        syz + szy,
        sxy - syx,
        szx + sxz,
        syz + szy,
        -sxx - syy + szz,
    ];
    let (_, vectors) = symmetric_eigen(&k, 4);
    // the eigenvector of the largest eigenvalue (last column) is the rotation's quaternion
    let [q0, qx, qy, qz] = [0, 1, 2, 3].map(|r| vectors[r * 4 + 3]);
    let rotation = [
        [q0 * q0 + qx * qx - qy * qy - qz * qz, 2.0 * (qx * qy - q0 * qz), 2.0 * (qx * qz + q0 * qy)],
        [2.0 * (qy * qx + q0 * qz), q0 * q0 - qx * qx + qy * qy - qz * qz, 2.0 * (qy * qz - q0 * qx)],
        [2.0 * (qz * qx - q0 * qy), 2.0 * (qz * qy + q0 * qx), q0 * q0 - qx * qx - qy * qy + qz * qz],
    ];
    let rc = [0, 1, 2].map(|i| rotation[i][0] * cp[0] + rotation[i][1] * cp[1] + rotation[i][2] * cp[2]);
    Rigid { rotation, translation: [0, 1, 2].map(|i| cq[i] - rc[i]) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::euler_to_matrix;
    use crate::rng::Rng;

    #[test]
    fn recovers_a_known_rotation_and_translation() {
        let mut rng = Rng::new(3);
        let r = euler_to_matrix(40.0, 70.0, -120.0);
        let t = [3.0, -7.5, 12.0];
        let truth = Rigid { rotation: r, translation: t };
        let from: Vec<f32> = (0..60).map(|_| rng.range(-20.0, 20.0) as f32).collect();
        let to: Vec<f32> = from
            .chunks_exact(3)
            .flat_map(|p| truth.apply([p[0] as f64, p[1] as f64, p[2] as f64]).map(|v| v as f32))
            .collect();
        let fit = fit_rigid(&from, &to, None);
        for i in 0..3 {
            for j in 0..3 {
                assert!((fit.rotation[i][j] - r[i][j]).abs() < 1e-5, "{:?} vs {r:?}", fit.rotation);
            }
            assert!((fit.translation[i] - t[i]).abs() < 1e-4);
        }
    }

    #[test]
    fn weights_ignore_an_outlier() {
        let from = [0.0f32, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 10.0];
        let mut to = from;
        to[0] = 50.0; // the first point moved alone
        let fit = fit_rigid(&from, &to, Some(&[0.0, 1.0, 1.0, 1.0]));
        let moved = fit.apply([10.0, 0.0, 0.0]);
        assert!((moved[0] - 10.0).abs() < 1e-6 && moved[1].abs() < 1e-6, "{moved:?}");
    }
}
