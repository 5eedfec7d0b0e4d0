//! Anisotropic network model (ANM): springs of stiffness γ between atoms closer than a cutoff;
//! the Hessian's eigenvectors are the normal modes (as ProDy's `ANM` computes them).

use crate::linalg::symmetric_eigen;

/// Normal modes: non-trivial eigenvalues (ascending) and unit eigenvectors (3N, x y z per atom).
#[derive(Clone, Debug)]
pub struct NormalModes {
    /// Eigenvalues, rigid-body zeros excluded, ascending.
    pub eigenvalues: Vec<f64>,
    /// One 3N-long unit vector per mode.
    pub vectors: Vec<Vec<f64>>,
}

/// The 3N × 3N ANM Hessian: for atoms i ≠ j within `cutoff` Å, the block −γ/d²·(r_ij r_ijᵀ), and
/// the diagonal blocks minus the sum of their row's off-diagonal blocks.
pub fn anm_hessian(coords: &[[f64; 3]], cutoff: f64, gamma: f64) -> Vec<f64> {
    let n = coords.len();
    let m = 3 * n;
    let mut h = vec![0.0; m * m];
    for i in 0..n {
        for j in i + 1..n {
            let r = [0, 1, 2].map(|k| coords[j][k] - coords[i][k]);
            let d2 = r.iter().map(|c| c * c).sum::<f64>();
            if d2 > cutoff * cutoff || d2 == 0.0 {
                continue;
            }
            for a in 0..3 {
                for b in 0..3 {
                    let v = -gamma * r[a] * r[b] / d2;
                    h[(3 * i + a) * m + 3 * j + b] = v;
                    h[(3 * j + a) * m + 3 * i + b] = v;
                    h[(3 * i + a) * m + 3 * i + b] -= v;
                    h[(3 * j + a) * m + 3 * j + b] -= v;
                }
            }
        }
    }
    h
}

/// The `count` slowest non-trivial ANM modes of `coords` (the 6 rigid-body modes are skipped).
pub fn anm_modes(coords: &[[f64; 3]], cutoff: f64, gamma: f64, count: usize) -> NormalModes {
    let m = 3 * coords.len();
    let (values, vectors) = symmetric_eigen(&anm_hessian(coords, cutoff, gamma), m);
    let take = count.min(m.saturating_sub(6));
    NormalModes {
        eigenvalues: values[6..6 + take].to_vec(),
        vectors: (6..6 + take).map(|k| (0..m).map(|i| vectors[i * m + k]).collect()).collect(),
    }
}
