//! k-means clustering (k-means++ seeding, Lloyd iterations) of latent vectors.

use rayon::prelude::*;

use crate::rng::Rng;

/// Clusters of `rows` points.
#[derive(Clone, Debug)]
pub struct Clusters {
    /// Centres, k × dim.
    pub centres: Vec<f32>,
    /// Cluster of each point.
    pub labels: Vec<usize>,
    /// Points per cluster.
    pub sizes: Vec<usize>,
}

fn distance2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn nearest(centres: &[f32], dim: usize, p: &[f32]) -> (usize, f32) {
    centres
        .chunks_exact(dim)
        .map(|c| distance2(c, p))
        .enumerate()
        .fold((0, f32::INFINITY), |best, (k, d)| if d < best.1 { (k, d) } else { best })
}

/// k-means of `points` (rows × dim) into `k` clusters (fewer when there are fewer distinct
/// points), seeded by k-means++ from `seed`, iterated until no label changes (at most 300).
///
/// # Panics
/// If `dim` is zero or `points` is not a whole number of rows.
pub fn kmeans(points: &[f32], dim: usize, k: usize, seed: u64) -> Clusters {
    assert!(dim > 0 && points.len() % dim == 0, "points are rows of dim values");
    let rows = points.len() / dim;
    let row = |i: usize| &points[i * dim..(i + 1) * dim];
    let mut rng = Rng::new(seed);
    let mut centres: Vec<f32> = Vec::with_capacity(k * dim);
    if rows > 0 && k > 0 {
        centres.extend_from_slice(row((rng.uniform() * rows as f64) as usize % rows));
        let mut d2: Vec<f32> = (0..rows).map(|i| distance2(row(i), &centres[..dim])).collect();
        while centres.len() < k * dim {
            let total: f64 = d2.iter().map(|&d| d as f64).sum();
            if total <= 0.0 {
                break;
            }
            let mut target = rng.uniform() * total;
            let pick = d2.iter().position(|&d| {
                target -= d as f64;
                target <= 0.0
            });
            let c = pick.unwrap_or(rows - 1);
            centres.extend_from_slice(row(c));
            let new = centres.len() - dim;
            d2.par_iter_mut().enumerate().for_each(|(i, d)| *d = d.min(distance2(row(i), &centres[new..])));
        }
    }
    let kk = centres.len() / dim;
    let mut labels = vec![usize::MAX; rows];
    for _ in 0..300 {
        let new: Vec<usize> = (0..rows).into_par_iter().map(|i| nearest(&centres, dim, row(i)).0).collect();
        let changed = new != labels;
        labels = new;
        let mut sums = vec![0.0f64; kk * dim];
        let mut counts = vec![0usize; kk];
        for (i, &l) in labels.iter().enumerate() {
            counts[l] += 1;
            sums[l * dim..(l + 1) * dim].iter_mut().zip(row(i)).for_each(|(s, &v)| *s += v as f64);
        }
        for c in 0..kk {
            if counts[c] > 0 {
                for j in 0..dim {
                    centres[c * dim + j] = (sums[c * dim + j] / counts[c] as f64) as f32;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let mut sizes = vec![0; kk];
    labels.iter().for_each(|&l| sizes[l] += 1);
    Clusters { centres, labels, sizes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_separated_blobs_are_found_exactly() {
        let mut rng = Rng::new(4);
        let truth_centres = [[0.0f32, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let mut points = Vec::new();
        let mut truth = Vec::new();
        for i in 0..600 {
            let c = i % 3;
            truth.push(c);
            points.push(truth_centres[c][0] + rng.normal() as f32);
            points.push(truth_centres[c][1] + rng.normal() as f32);
        }
        let clusters = kmeans(&points, 2, 3, 1);
        assert_eq!(clusters.sizes.iter().sum::<usize>(), 600);
        // each found cluster is one true blob
        for c in 0..3 {
            let members: Vec<usize> =
                (0..600).filter(|&i| clusters.labels[i] == c).map(|i| truth[i]).collect();
            assert!(members.iter().all(|&t| t == members[0]), "cluster {c} mixes blobs");
            let centre = &clusters.centres[c * 2..c * 2 + 2];
            let t = truth_centres[members[0]];
            assert!((centre[0] - t[0]).abs() < 0.3 && (centre[1] - t[1]).abs() < 0.3, "{centre:?} vs {t:?}");
        }
    }
}
