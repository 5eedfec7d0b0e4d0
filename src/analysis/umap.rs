//! UMAP (McInnes, Healy & Melville 2018) of latent vectors into the plane: fuzzy k-nearest-
//! neighbour graph, PCA initialisation, and stochastic layout with negative sampling, as the
//! reference `umap-learn` does with `min_dist = 0.1`, `spread = 1`. Deterministic for a seed
//! (the layout runs on one thread).
//!
//! At most `max_fit` points are laid out; the others are placed at the distance-weighted mean
//! of their nearest laid-out points (what `umap-learn`'s `transform` starts from).

use rayon::prelude::*;

use super::Pca;
use crate::rng::Rng;

/// Curve parameters of the low-dimensional similarity 1 / (1 + a·d^(2b)) for `min_dist = 0.1`.
const A: f32 = 1.577;
const B: f32 = 0.8951;
const NEGATIVE_SAMPLES: usize = 5;

/// Settings of the embedding.
#[derive(Clone, Copy, Debug)]
pub struct UmapOptions {
    /// Neighbours of each point in the graph.
    pub neighbours: usize,
    /// Layout epochs.
    pub epochs: usize,
    /// Points laid out (a seeded subsample when there are more).
    pub max_fit: usize,
    /// Seed of the subsample and the negative samples.
    pub seed: u64,
}

impl Default for UmapOptions {
    fn default() -> Self {
        UmapOptions { neighbours: 15, epochs: 300, max_fit: 10_000, seed: 0 }
    }
}

fn distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt()
}

/// The `k` nearest of `candidates` to `p` (excluding index `skip`), nearest first.
fn nearest(
    points: &[f32],
    dim: usize,
    candidates: &[usize],
    p: &[f32],
    skip: usize,
    k: usize,
) -> Vec<(usize, f32)> {
    let mut near: Vec<(usize, f32)> = candidates
        .iter()
        .filter(|&&c| c != skip)
        .map(|&c| (c, distance(&points[c * dim..(c + 1) * dim], p)))
        .collect();
    let k = k.min(near.len());
    if k == 0 {
        return Vec::new();
    }
    near.select_nth_unstable_by(k - 1, |a, b| a.1.total_cmp(&b.1));
    near.truncate(k);
    near.sort_by(|a, b| a.1.total_cmp(&b.1));
    near
}

/// Membership strengths exp(−(d − ρ)/σ) of one point's neighbours, σ found by bisection so
/// that they sum to log₂ k.
fn memberships(near: &[(usize, f32)]) -> Vec<f32> {
    let rho = near.iter().map(|n| n.1).find(|&d| d > 0.0).unwrap_or(0.0);
    let target = (near.len().max(2) as f32).log2();
    let sum = |sigma: f32| near.iter().map(|n| (-(n.1 - rho).max(0.0) / sigma).exp()).sum::<f32>();
    let (mut lo, mut hi, mut sigma) = (0.0f32, f32::INFINITY, 1.0f32);
    for _ in 0..64 {
        if sum(sigma) > target {
            hi = sigma;
            sigma = (lo + hi) / 2.0;
        } else {
            lo = sigma;
            sigma = if hi.is_finite() { (lo + hi) / 2.0 } else { sigma * 2.0 };
        }
    }
    near.iter().map(|n| (-(n.1 - rho).max(0.0) / sigma.max(1e-12)).exp()).collect()
}

/// Symmetrised fuzzy graph of the `fit` points (local indices): edges (i, j, weight), i < j.
fn fuzzy_graph(points: &[f32], dim: usize, fit: &[usize], k: usize) -> Vec<(usize, usize, f32)> {
    let local: Vec<usize> = (0..fit.len()).collect();
    let fit_points: Vec<f32> =
        fit.iter().flat_map(|&i| points[i * dim..(i + 1) * dim].iter().copied()).collect();
    let directed: Vec<Vec<(usize, f32)>> = local
        .par_iter()
        .map(|&i| {
            let near = nearest(&fit_points, dim, &local, &fit_points[i * dim..(i + 1) * dim], i, k);
            near.iter().map(|n| n.0).zip(memberships(&near)).collect()
        })
        .collect();
    let mut weights = std::collections::BTreeMap::new();
    for (i, row) in directed.iter().enumerate() {
        for &(j, w) in row {
            let key = (i.min(j), i.max(j));
            let entry = weights.entry(key).or_insert((0.0f32, 0.0f32));
            if i < j { entry.0 = w } else { entry.1 = w }
        }
    }
    weights.into_iter().map(|((i, j), (a, b))| (i, j, a + b - a * b)).filter(|e| e.2 > 0.0).collect()
}

/// PCA of the fit points to the plane, scaled to ±10.
fn initial_layout(points: &[f32], dim: usize, fit: &[usize]) -> Vec<[f32; 2]> {
    let fit_points: Vec<f32> =
        fit.iter().flat_map(|&i| points[i * dim..(i + 1) * dim].iter().copied()).collect();
    let pca = Pca::fit(&fit_points, dim);
    let mut y: Vec<[f32; 2]> = fit_points
        .chunks_exact(dim)
        .map(|p| [pca.project(p, 0) as f32, if dim > 1 { pca.project(p, 1) as f32 } else { 0.0 }])
        .collect();
    let extent = y.iter().flat_map(|p| p.iter().map(|v| v.abs())).fold(0.0f32, f32::max).max(1e-12);
    y.iter_mut().for_each(|p| *p = p.map(|v| 10.0 * v / extent));
    y
}

/// Stochastic layout: attraction along edges sampled in proportion to their weight, repulsion
/// from random points, learning rate falling linearly to zero.
fn optimise(y: &mut [[f32; 2]], edges: &[(usize, usize, f32)], epochs: usize, rng: &mut Rng) {
    let n = y.len();
    let max_w = edges.iter().map(|e| e.2).fold(0.0f32, f32::max);
    let every: Vec<f32> = edges.iter().map(|e| max_w / e.2).collect();
    let mut next = every.clone();
    let mut next_negative: Vec<f32> = every.iter().map(|e| e / NEGATIVE_SAMPLES as f32).collect();
    let clip = |g: f32| g.clamp(-4.0, 4.0);
    for epoch in 0..epochs {
        let alpha = 1.0 - epoch as f32 / epochs as f32;
        let now = epoch as f32 + 1.0;
        for (e, &(i, j, _)) in edges.iter().enumerate() {
            if next[e] > now {
                continue;
            }
            let d2 = (y[i][0] - y[j][0]).powi(2) + (y[i][1] - y[j][1]).powi(2);
            if d2 > 0.0 {
                let coef = -2.0 * A * B * d2.powf(B - 1.0) / (1.0 + A * d2.powf(B));
                let g = [0, 1].map(|k| clip(coef * (y[i][k] - y[j][k])) * alpha);
                y[i] = [y[i][0] + g[0], y[i][1] + g[1]];
                y[j] = [y[j][0] - g[0], y[j][1] - g[1]];
            }
            next[e] += every[e];
            let negatives =
                ((now - next_negative[e]) / (every[e] / NEGATIVE_SAMPLES as f32)).max(0.0) as usize;
            for _ in 0..negatives {
                let m = (rng.next_u64() % n as u64) as usize;
                if m == i {
                    continue;
                }
                let d2 = (y[i][0] - y[m][0]).powi(2) + (y[i][1] - y[m][1]).powi(2);
                let coef = 2.0 * B / ((0.001 + d2) * (1.0 + A * d2.powf(B)));
                let g = [0, 1].map(|k| if d2 > 0.0 { clip(coef * (y[i][k] - y[m][k])) } else { 4.0 } * alpha);
                y[i] = [y[i][0] + g[0], y[i][1] + g[1]];
            }
            next_negative[e] += negatives as f32 * every[e] / NEGATIVE_SAMPLES as f32;
        }
    }
}

/// The 2-D UMAP embedding of `points` (rows × dim).
///
/// # Panics
/// If `dim` is zero or `points` is not a whole number of rows.
pub fn umap(points: &[f32], dim: usize, options: &UmapOptions) -> Vec<[f32; 2]> {
    assert!(dim > 0 && points.len() % dim == 0, "points are rows of dim values");
    let rows = points.len() / dim;
    if rows < 3 {
        return initial_layout(points, dim, &(0..rows).collect::<Vec<_>>());
    }
    let mut rng = Rng::new(options.seed);
    let mut order: Vec<usize> = (0..rows).collect();
    for i in (1..rows).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    let mut fit: Vec<usize> = order[..rows.min(options.max_fit)].to_vec();
    fit.sort_unstable();
    let k = options.neighbours.min(fit.len() - 1).max(1);
    let edges = fuzzy_graph(points, dim, &fit, k);
    let mut y = initial_layout(points, dim, &fit);
    optimise(&mut y, &edges, options.epochs, &mut rng);
    let mut out = vec![[0.0f32; 2]; rows];
    fit.iter().zip(&y).for_each(|(&i, p)| out[i] = *p);
    if fit.len() < rows {
        let mut is_fit = vec![false; rows];
        fit.iter().for_each(|&i| is_fit[i] = true);
        let placed: Vec<(usize, [f32; 2])> = (0..rows)
            .into_par_iter()
            .filter(|&i| !is_fit[i])
            .map(|i| {
                let near = nearest(points, dim, &fit, &points[i * dim..(i + 1) * dim], usize::MAX, k);
                let w: Vec<f32> = near.iter().map(|n| 1.0 / (n.1 + 1e-6)).collect();
                let total: f32 = w.iter().sum();
                let mut p = [0.0f32; 2];
                for (n, w) in near.iter().zip(&w) {
                    let at = fit.binary_search(&n.0).expect("a fit point");
                    (0..2).for_each(|k| p[k] += w * y[at][k] / total);
                }
                (i, p)
            })
            .collect();
        placed.into_iter().for_each(|(i, p)| out[i] = p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(per: usize, dim: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
        let mut rng = Rng::new(seed);
        let (mut points, mut labels) = (Vec::new(), Vec::new());
        for c in 0..3 {
            for _ in 0..per {
                labels.push(c);
                points.extend((0..dim).map(|j| if j == c { 12.0 } else { 0.0 } + rng.normal() as f32));
            }
        }
        (points, labels)
    }

    fn separated(y: &[[f32; 2]], labels: &[usize]) -> bool {
        let mut centres = [[0.0f32; 2]; 3];
        let mut counts = [0f32; 3];
        for (p, &l) in y.iter().zip(labels) {
            (0..2).for_each(|k| centres[l][k] += p[k]);
            counts[l] += 1.0;
        }
        centres.iter_mut().zip(counts).for_each(|(c, n)| *c = c.map(|v| v / n));
        y.iter().zip(labels).all(|(p, &l)| {
            let d = |c: &[f32; 2]| (p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2);
            (0..3).all(|o| o == l || d(&centres[l]) < d(&centres[o]))
        })
    }

    #[test]
    fn separated_clusters_stay_separated_and_placed_points_join_their_own() {
        let (points, labels) = blobs(200, 6, 1);
        let options = UmapOptions { max_fit: 300, epochs: 200, ..Default::default() };
        let y = umap(&points, 6, &options);
        assert!(y.iter().all(|p| p[0].is_finite() && p[1].is_finite()));
        assert!(separated(&y, &labels), "clusters overlap in the embedding");
    }

    #[test]
    fn neighbourhoods_of_a_curve_are_kept() {
        let mut rng = Rng::new(2);
        let n = 400;
        let t: Vec<f32> = (0..n).map(|i| i as f32 / n as f32 * 6.0).collect();
        let points: Vec<f32> = t
            .iter()
            .flat_map(|&t| {
                let noise: Vec<f32> = (0..5).map(|_| 0.02 * rng.normal() as f32).collect();
                [t.cos(), t.sin(), 0.3 * t, (2.0 * t).sin() * 0.2, 0.1 * t * t]
                    .into_iter()
                    .zip(noise)
                    .map(|(a, b)| a + b)
                    .collect::<Vec<_>>()
            })
            .collect();
        let y = umap(&points, 5, &UmapOptions::default());
        let flat: Vec<f32> = y.iter().flat_map(|p| p.iter().copied()).collect();
        let all: Vec<usize> = (0..n).collect();
        let mut kept = 0usize;
        for i in 0..n {
            let high = nearest(&points, 5, &all, &points[i * 5..i * 5 + 5], i, 10);
            let low = nearest(&flat, 2, &all, &flat[i * 2..i * 2 + 2], i, 30);
            kept += high.iter().filter(|h| low.iter().any(|l| l.0 == h.0)).count();
        }
        let fraction = kept as f64 / (10 * n) as f64;
        assert!(fraction > 0.8, "only {fraction:.2} of the 10 nearest neighbours kept");
    }
}
