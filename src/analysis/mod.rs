//! Analysis of latent spaces: principal components, rank correlation with a known coordinate,
//! and k-nearest-neighbour regression of known amplitudes (held-out R²); k-means clusters and
//! UMAP embeddings.

mod kmeans;
mod umap;

pub use kmeans::{Clusters, kmeans};
pub use umap::{UmapOptions, umap};

use crate::linalg::symmetric_eigen;

/// Principal components of `rows` points of `dim` values (row-major): the mean, the components
/// (dim × dim, column k is component k, by decreasing variance) and their variances.
pub struct Pca {
    /// Mean of the points.
    pub mean: Vec<f64>,
    /// Unit components, column-major by component: `components[k * dim + j]`.
    pub components: Vec<f64>,
    /// Variance along each component, decreasing.
    pub variances: Vec<f64>,
    dim: usize,
}

impl Pca {
    /// Fits the components of `points` (rows × dim).
    ///
    /// # Panics
    /// If `points` is not a whole number of rows.
    pub fn fit(points: &[f32], dim: usize) -> Self {
        assert!(dim > 0 && points.len() % dim == 0, "points are rows of dim values");
        let rows = (points.len() / dim).max(1);
        let mut mean = vec![0.0f64; dim];
        for row in points.chunks_exact(dim) {
            mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
        }
        mean.iter_mut().for_each(|m| *m /= rows as f64);
        let mut cov = vec![0.0f64; dim * dim];
        for row in points.chunks_exact(dim) {
            for a in 0..dim {
                for b in 0..dim {
                    cov[a * dim + b] += (row[a] as f64 - mean[a]) * (row[b] as f64 - mean[b]);
                }
            }
        }
        cov.iter_mut().for_each(|c| *c /= rows as f64);
        let (values, vectors) = symmetric_eigen(&cov, dim);
        let mut components = vec![0.0; dim * dim];
        let mut variances = vec![0.0; dim];
        for k in 0..dim {
            let src = dim - 1 - k; // ascending → descending
            variances[k] = values[src].max(0.0);
            for j in 0..dim {
                components[k * dim + j] = vectors[j * dim + src];
            }
        }
        Pca { mean, components, variances, dim }
    }

    /// Coordinate of a point along component k.
    pub fn project(&self, point: &[f32], k: usize) -> f64 {
        (0..self.dim).map(|j| (point[j] as f64 - self.mean[j]) * self.components[k * self.dim + j]).sum()
    }
}

/// Ranks (1-based, ties averaged).
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut r = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            r[k] = rank;
        }
        i = j + 1;
    }
    r
}

/// Pearson correlation.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        ab += (x - ma) * (y - mb);
        aa += (x - ma).powi(2);
        bb += (y - mb).powi(2);
    }
    if aa > 0.0 && bb > 0.0 { ab / (aa * bb).sqrt() } else { 0.0 }
}

/// Spearman's rank correlation.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&ranks(a), &ranks(b))
}

/// R² of `targets` predicted on the `test` rows by the mean target of the `k` nearest `train`
/// rows in latent space (`latents`: rows × dim).
pub fn knn_r2(
    latents: &[f32],
    dim: usize,
    targets: &[f64],
    train: &[usize],
    test: &[usize],
    k: usize,
) -> f64 {
    let row = |i: usize| &latents[i * dim..(i + 1) * dim];
    let mut predicted = Vec::with_capacity(test.len());
    let mut near: Vec<(f32, usize)> = Vec::with_capacity(train.len());
    for &t in test {
        near.clear();
        near.extend(
            train
                .iter()
                .map(|&i| (row(i).iter().zip(row(t)).map(|(a, b)| (a - b) * (a - b)).sum::<f32>(), i)),
        );
        let k = k.min(near.len()).max(1);
        near.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
        predicted.push(near[..k].iter().map(|&(_, i)| targets[i]).sum::<f64>() / k as f64);
    }
    let truth: Vec<f64> = test.iter().map(|&i| targets[i]).collect();
    let mean = truth.iter().sum::<f64>() / truth.len().max(1) as f64;
    let total: f64 = truth.iter().map(|t| (t - mean).powi(2)).sum();
    let residual: f64 = truth.iter().zip(&predicted).map(|(t, p)| (t - p).powi(2)).sum();
    if total > 0.0 { 1.0 - residual / total } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn pca_finds_the_long_axis_of_an_elongated_cloud() {
        let mut rng = Rng::new(1);
        let axis = [0.6f64, 0.8, 0.0];
        let points: Vec<f32> = (0..2000)
            .flat_map(|_| {
                let t = 5.0 * rng.normal();
                let n = [rng.normal(), rng.normal(), rng.normal()];
                [0, 1, 2].map(|k| (t * axis[k] + 0.3 * n[k] + 1.0) as f32)
            })
            .collect();
        let pca = Pca::fit(&points, 3);
        let c: Vec<f64> = pca.components[..3].to_vec();
        assert!((c[0] * axis[0] + c[1] * axis[1]).abs() > 0.999, "{c:?}");
        assert!((pca.variances[0] - 25.0).abs() < 2.5, "{:?}", pca.variances);
        assert!((pca.variances[1] - 0.09).abs() < 0.02);
    }

    #[test]
    fn spearman_is_one_for_monotone_and_matches_a_hand_example() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b: Vec<f64> = a.iter().map(|x: &f64| x.powi(3)).collect();
        assert!((spearman(&a, &b) - 1.0).abs() < 1e-12);
        // ranks (1,2,3,4,5) vs (2,1,4,3,5): d² sum 4, ρ = 1 − 6·4/(5·24) = 0.8
        assert!((spearman(&a, &[2.0, 1.0, 4.0, 3.0, 5.0]) - 0.8).abs() < 1e-12);
    }

    #[test]
    fn knn_regression_recovers_a_smooth_function() {
        let mut rng = Rng::new(2);
        let latents: Vec<f32> = (0..1000).map(|_| rng.uniform() as f32).collect();
        let targets: Vec<f64> = latents.chunks(2).map(|p| (3.0 * p[0] as f64).sin()).collect();
        let (train, test): (Vec<usize>, Vec<usize>) = (0..500).partition(|i| i % 5 != 0);
        assert!(knn_r2(&latents, 2, &targets, &train, &test, 15) > 0.95);
        let noise: Vec<f64> = (0..500).map(|_| rng.normal()).collect();
        assert!(knn_r2(&latents, 2, &noise, &train, &test, 15) < 0.2);
    }
}
