//! The elastic regulariser: a neighbour graph of the consensus positions (built with a spatial
//! grid, never O(N²)) and DynaMight's edge-length-preservation loss with its gradient; edges
//! whose length varies most across a batch can be dropped (CryoSTAR), so hinges can open.

use std::collections::HashMap;

/// Undirected edges between nearby points, with their rest lengths.
#[derive(Clone, Debug, PartialEq)]
pub struct NeighbourGraph {
    /// Edges (i, j), i < j.
    pub edges: Vec<(u32, u32)>,
    /// Rest length of each edge (same units as the positions).
    pub rest_lengths: Vec<f32>,
}

/// Points bucketed in cubic cells of side `cell`.
struct SpatialGrid<'a> {
    points: &'a [[f32; 3]],
    cell: f32,
    cells: HashMap<[i32; 3], Vec<u32>>,
}

impl<'a> SpatialGrid<'a> {
    fn new(points: &'a [[f32; 3]], cell: f32) -> Self {
        let mut cells: HashMap<[i32; 3], Vec<u32>> = HashMap::new();
        for (i, p) in points.iter().enumerate() {
            cells.entry(Self::key(p, cell)).or_default().push(i as u32);
        }
        SpatialGrid { points, cell, cells }
    }

    fn key(p: &[f32; 3], cell: f32) -> [i32; 3] {
        p.map(|c| (c / cell).floor() as i32)
    }

    /// Calls `f(j, distance)` for every point j ≠ i within `radius` of point i.
    fn within(&self, i: usize, radius: f32, mut f: impl FnMut(usize, f32)) {
        let p = self.points[i];
        let k = Self::key(&p, self.cell);
        let reach = (radius / self.cell).ceil() as i32;
        for dz in -reach..=reach {
            for dy in -reach..=reach {
                for dx in -reach..=reach {
                    let Some(list) = self.cells.get(&[k[0] + dx, k[1] + dy, k[2] + dz]) else { continue };
                    for &j in list {
                        let j = j as usize;
                        if j == i {
                            continue;
                        }
                        let d = distance(&p, &self.points[j]);
                        if d <= radius {
                            f(j, d);
                        }
                    }
                }
            }
        }
    }
}

fn distance(a: &[f32; 3], b: &[f32; 3]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

impl NeighbourGraph {
    /// All pairs closer than `radius`.
    pub fn radius_graph(points: &[[f32; 3]], radius: f32) -> Self {
        let grid = SpatialGrid::new(points, radius.max(1e-6));
        let (mut edges, mut rest_lengths) = (Vec::new(), Vec::new());
        for i in 0..points.len() {
            grid.within(i, radius, |j, d| {
                if j > i {
                    edges.push((i as u32, j as u32));
                    rest_lengths.push(d);
                }
            });
        }
        NeighbourGraph { edges, rest_lengths }
    }

    /// Mean distance of each point to its `k` nearest neighbours, averaged over points.
    pub fn mean_neighbour_distance(points: &[[f32; 3]], k: usize) -> f32 {
        if points.len() <= k {
            return 0.0;
        }
        // a cell holding about one point on average
        let (lo, hi) = points.iter().fold(([f32::INFINITY; 3], [f32::NEG_INFINITY; 3]), |(lo, hi), p| {
            ([0, 1, 2].map(|d| lo[d].min(p[d])), [0, 1, 2].map(|d| hi[d].max(p[d])))
        });
        let volume: f32 = (0..3).map(|d| (hi[d] - lo[d]).max(1e-3)).product();
        let cell = (volume / points.len() as f32).cbrt().max(1e-6);
        let grid = SpatialGrid::new(points, cell);
        let mut total = 0.0f64;
        let mut found = Vec::new();
        for i in 0..points.len() {
            let mut radius = cell;
            loop {
                found.clear();
                grid.within(i, radius, |_, d| found.push(d));
                if found.len() >= k {
                    break;
                }
                radius *= 2.0;
            }
            found.sort_by(f32::total_cmp);
            total += found[..k].iter().map(|&d| d as f64).sum::<f64>() / k as f64;
        }
        (total / points.len() as f64) as f32
    }

    /// DynaMight's graph: radius 1.5 × the mean distance to the 2 nearest neighbours.
    pub fn dynamight(points: &[[f32; 3]]) -> Self {
        Self::radius_graph(points, 1.5 * Self::mean_neighbour_distance(points, 2))
    }

    /// DynaMight's graph with every point tied to at least its `k` nearest neighbours. In
    /// DynaMight's graph alone about one Gaussian in ten (in weak density, away from the rest)
    /// has no edge or one: nothing holds it, and it strays.
    pub fn with_min_degree(mut self, points: &[[f32; 3]], k: usize) -> Self {
        let k = k.min(points.len().saturating_sub(1));
        let mut degree = vec![0usize; points.len()];
        let mut present: std::collections::HashSet<(u32, u32)> = self.edges.iter().copied().collect();
        for &(i, j) in &self.edges {
            degree[i as usize] += 1;
            degree[j as usize] += 1;
        }
        let cell = Self::mean_neighbour_distance(points, 2).max(1e-6);
        let grid = SpatialGrid::new(points, cell);
        let mut found: Vec<(f32, usize)> = Vec::new();
        for i in 0..points.len() {
            if degree[i] >= k {
                continue;
            }
            let mut radius = cell;
            loop {
                found.clear();
                grid.within(i, radius, |j, d| found.push((d, j)));
                if found.len() >= k {
                    break;
                }
                radius *= 2.0;
            }
            found.sort_by(|a, b| a.0.total_cmp(&b.0));
            for &(d, j) in &found[..k] {
                let edge = (i.min(j) as u32, i.max(j) as u32);
                if present.insert(edge) {
                    self.edges.push(edge);
                    self.rest_lengths.push(d);
                    degree[i] += 1;
                    degree[j] += 1;
                }
            }
        }
        self
    }
}

/// Mean over particles and kept edges of (‖x_i − x_j‖ − d⁰_ij)², for deformed positions
/// (B × N × 3); adds its gradient to `grad` (same layout). `keep` selects edges (all if `None`).
pub fn elastic_loss(
    graph: &NeighbourGraph,
    deformed: &[f32],
    points: usize,
    keep: Option<&[bool]>,
    grad: &mut [f32],
) -> f64 {
    assert_eq!(deformed.len() % (3 * points), 0, "deformed positions length");
    assert_eq!(grad.len(), deformed.len(), "gradient length");
    let batch = deformed.len() / (3 * points);
    let kept = keep.map_or(graph.edges.len(), |k| k.iter().filter(|&&b| b).count());
    if kept == 0 || batch == 0 {
        return 0.0;
    }
    let scale = 1.0 / (batch * kept) as f64;
    let mut loss = 0.0f64;
    for b in 0..batch {
        let x = &deformed[b * points * 3..(b + 1) * points * 3];
        let g = &mut grad[b * points * 3..(b + 1) * points * 3];
        for (e, (&(i, j), &d0)) in graph.edges.iter().zip(&graph.rest_lengths).enumerate() {
            if keep.is_some_and(|k| !k[e]) {
                continue;
            }
            let (i, j) = (i as usize, j as usize);
            let delta = [0, 1, 2].map(|k| x[3 * i + k] as f64 - x[3 * j + k] as f64);
            let length = delta.iter().map(|v| v * v).sum::<f64>().sqrt();
            let stretch = length - d0 as f64;
            loss += stretch * stretch * scale;
            if length > 0.0 {
                for k in 0..3 {
                    let gk = (2.0 * stretch * scale * delta[k] / length) as f32;
                    g[3 * i + k] += gk;
                    g[3 * j + k] -= gk;
                }
            }
        }
    }
    loss
}

/// The `fraction` of edges whose length varies least over the batch (CryoSTAR keeps 80%).
pub fn steadiest_edges(graph: &NeighbourGraph, deformed: &[f32], points: usize, fraction: f64) -> Vec<bool> {
    let batch = deformed.len() / (3 * points);
    let variance: Vec<f64> = graph
        .edges
        .iter()
        .map(|&(i, j)| {
            let lengths: Vec<f64> = (0..batch)
                .map(|b| {
                    let x = &deformed[b * points * 3..];
                    let (i, j) = (i as usize, j as usize);
                    (0..3).map(|k| (x[3 * i + k] as f64 - x[3 * j + k] as f64).powi(2)).sum::<f64>().sqrt()
                })
                .collect();
            let mean = lengths.iter().sum::<f64>() / batch.max(1) as f64;
            lengths.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / batch.max(1) as f64
        })
        .collect();
    let mut order: Vec<usize> = (0..variance.len()).collect();
    order.sort_by(|&a, &b| variance[a].total_cmp(&variance[b]));
    let keep_count = (fraction * variance.len() as f64).round() as usize;
    let mut keep = vec![false; variance.len()];
    for &e in &order[..keep_count.min(order.len())] {
        keep[e] = true;
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck;
    use crate::rng::Rng;

    fn cloud(n: usize, seed: u64) -> Vec<[f32; 3]> {
        let mut rng = Rng::new(seed);
        (0..n).map(|_| [0, 1, 2].map(|_| rng.range(-10.0, 10.0) as f32)).collect()
    }

    #[test]
    fn radius_graph_equals_brute_force() {
        let p = cloud(400, 1);
        let g = NeighbourGraph::radius_graph(&p, 2.5);
        let mut brute = Vec::new();
        for i in 0..p.len() {
            for j in i + 1..p.len() {
                if distance(&p[i], &p[j]) <= 2.5 {
                    brute.push((i as u32, j as u32));
                }
            }
        }
        let mut got = g.edges.clone();
        got.sort();
        assert_eq!(got, brute);
        // nearest-neighbour mean against brute force
        let k2 = NeighbourGraph::mean_neighbour_distance(&p, 2);
        let brute_k2: f64 = (0..p.len())
            .map(|i| {
                let mut d: Vec<f32> =
                    (0..p.len()).filter(|&j| j != i).map(|j| distance(&p[i], &p[j])).collect();
                d.sort_by(f32::total_cmp);
                (d[0] + d[1]) as f64 / 2.0
            })
            .sum::<f64>()
            / p.len() as f64;
        assert!((k2 as f64 - brute_k2).abs() < 1e-4, "{k2} vs {brute_k2}");
    }

    #[test]
    fn every_point_gets_its_nearest_neighbours() {
        // a dense cloud and three far-off points, each alone
        let mut p = cloud(200, 3);
        p.extend([[40.0, 0.0, 0.0], [0.0, 45.0, 0.0], [0.0, 0.0, 50.0]]);
        let plain = NeighbourGraph::dynamight(&p);
        let degree = |g: &NeighbourGraph, i: u32| g.edges.iter().filter(|e| e.0 == i || e.1 == i).count();
        assert_eq!(degree(&plain, 200), 0, "the far point has no edge in DynaMight's graph");
        let tied = plain.clone().with_min_degree(&p, 3);
        for i in 0..p.len() as u32 {
            assert!(degree(&tied, i) >= 3, "point {i}: {} edges", degree(&tied, i));
        }
        // the far point's edges go to its true nearest neighbours, with their lengths
        let mut nearest: Vec<(f32, u32)> =
            (0..200u32).map(|j| (distance(&p[200], &p[j as usize]), j)).collect();
        nearest.sort_by(|a, b| a.0.total_cmp(&b.0));
        for &(d, j) in &nearest[..3] {
            let e = tied.edges.iter().position(|&e| e == (j, 200)).expect("edge to a nearest neighbour");
            assert!((tied.rest_lengths[e] - d).abs() < 1e-5);
        }
        // the radius graph's edges are all kept, none doubled
        assert!(plain.edges.iter().all(|e| tied.edges.contains(e)));
        let unique: std::collections::HashSet<_> = tied.edges.iter().collect();
        assert_eq!(unique.len(), tied.edges.len());
    }

    #[test]
    fn rigid_motions_cost_nothing_and_the_gradient_is_right() {
        let p = cloud(60, 2);
        let graph = NeighbourGraph::dynamight(&p);
        assert!(!graph.edges.is_empty());
        // a rotation and a translation of the consensus: zero loss
        let rot = crate::geometry::euler_to_matrix(30.0, 50.0, -20.0);
        let moved: Vec<f32> = p
            .iter()
            .flat_map(|x| (0..3).map(move |r| (0..3).map(|k| rot[r][k] as f32 * x[k]).sum::<f32>() + 3.0))
            .collect();
        let mut grad = vec![0.0; moved.len()];
        assert!(elastic_loss(&graph, &moved, 60, None, &mut grad) < 1e-9);
        // a random deformation of two particles: gradient against finite differences
        let mut rng = Rng::new(3);
        let deformed: Vec<f32> = (0..2)
            .flat_map(|_| p.iter().flatten().map(|&v| v + rng.normal() as f32 * 0.3).collect::<Vec<_>>())
            .collect();
        let mut grad = vec![0.0; deformed.len()];
        elastic_loss(&graph, &deformed, 60, None, &mut grad);
        let loss = |x: &[f32]| elastic_loss(&graph, x, 60, None, &mut vec![0.0; x.len()]);
        gradcheck(loss, &deformed, &grad, 1e-3, 1e-3).unwrap();
    }

    #[test]
    fn dropping_edges_lets_a_hinge_open() {
        // two rigid blocks; across the batch one block rotates about the hinge between them
        let mut p = Vec::new();
        for x in 0..6 {
            for y in 0..3 {
                for z in 0..3 {
                    p.push([x as f32 * 1.5, y as f32 * 1.5, z as f32 * 1.5]);
                }
            }
        }
        let n = p.len();
        let graph = NeighbourGraph::radius_graph(&p, 1.6);
        let mut deformed = Vec::new();
        for b in 0..8 {
            let angle = 0.1 * b as f32;
            for q in &p {
                let moved = if q[0] > 3.5 {
                    let (s, c) = angle.sin_cos();
                    let (dx, dz) = (q[0] - 3.75, q[2]);
                    [3.75 + c * dx - s * dz, q[1], s * dx + c * dz]
                } else {
                    *q
                };
                deformed.extend(moved);
            }
        }
        let keep = steadiest_edges(&graph, &deformed, n, 0.8);
        assert_eq!(keep.iter().filter(|&&k| k).count(), (0.8 * graph.edges.len() as f64).round() as usize);
        // every edge crossing the hinge (x = 3 ↔ x = 4.5) is among the dropped ones
        for (e, &(i, j)) in graph.edges.iter().enumerate() {
            let crosses = (p[i as usize][0] - p[j as usize][0]).abs() > 1.0
                && (p[i as usize][0] > 3.5) != (p[j as usize][0] > 3.5);
            if crosses {
                assert!(!keep[e], "hinge edge {e} kept");
            }
        }
        let (mut g1, mut g2) = (vec![0.0; deformed.len()], vec![0.0; deformed.len()]);
        let all = elastic_loss(&graph, &deformed, n, None, &mut g1);
        let kept = elastic_loss(&graph, &deformed, n, Some(&keep), &mut g2);
        assert!(kept < 1e-6 && all > 1e-3, "kept {kept}, all {all}");
    }
}
