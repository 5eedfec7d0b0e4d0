//! A displacement field known at scattered points (Gaussian centres, atoms), interpolated
//! anywhere by a normalised Gaussian kernel (Nadaraya–Watson) that fades to zero far from every
//! point. A cell list keeps each query to the points within the kernel's reach.

/// Kernel reach in kernel widths.
const REACH: f32 = 3.0;

/// Scattered points with a kernel width, ready for interpolating fields given on them.
#[derive(Clone, Debug)]
pub struct ScatteredField {
    points: Vec<[f32; 3]>,
    sigma: f32,
    /// Kernel weight a query far from every point keeps for "no displacement".
    floor: f32,
    origin: [f32; 3],
    cell: f32,
    dims: [usize; 3],
    /// Points of each cell: `order[starts[c]..starts[c + 1]]`.
    starts: Vec<usize>,
    order: Vec<usize>,
}

impl ScatteredField {
    /// Interpolation from `points` (Å) with kernel width `sigma` (Å). A query whose summed
    /// kernel weight is well below one point's at distance `sigma` has its value faded to zero.
    ///
    /// # Panics
    /// If `sigma` is not positive.
    pub fn new(points: &[[f32; 3]], sigma: f32) -> Self {
        assert!(sigma > 0.0, "kernel width must be positive");
        let cell = REACH * sigma;
        let mut lo = [f32::INFINITY; 3];
        let mut hi = [f32::NEG_INFINITY; 3];
        for p in points {
            for k in 0..3 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        if points.is_empty() {
            (lo, hi) = ([0.0; 3], [0.0; 3]);
        }
        let dims = [0, 1, 2].map(|k| ((hi[k] - lo[k]) / cell).floor() as usize + 1);
        let index = |p: &[f32; 3]| {
            let c = [0, 1, 2].map(|k| (((p[k] - lo[k]) / cell) as usize).min(dims[k] - 1));
            (c[2] * dims[1] + c[1]) * dims[0] + c[0]
        };
        let mut counts = vec![0usize; dims.iter().product::<usize>() + 1];
        points.iter().for_each(|p| counts[index(p) + 1] += 1);
        for c in 1..counts.len() {
            counts[c] += counts[c - 1];
        }
        let starts = counts.clone();
        let mut order = vec![0; points.len()];
        for (i, p) in points.iter().enumerate() {
            let c = index(p);
            order[counts[c]] = i;
            counts[c] += 1;
        }
        ScatteredField {
            points: points.to_vec(),
            sigma,
            floor: 0.01 * (-0.5f32).exp(),
            origin: lo,
            cell,
            dims,
            starts,
            order,
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Calls `visit(point, squared distance)` for every point within the kernel's reach of `x`.
    pub fn within_reach(&self, x: [f32; 3], mut visit: impl FnMut(usize, f32)) {
        let reach2 = (REACH * self.sigma).powi(2);
        let c = [0, 1, 2].map(|k| ((x[k] - self.origin[k]) / self.cell).floor() as isize);
        for cz in c[2] - 1..=c[2] + 1 {
            for cy in c[1] - 1..=c[1] + 1 {
                for cx in c[0] - 1..=c[0] + 1 {
                    let cell = [cx, cy, cz];
                    if (0..3).any(|k| cell[k] < 0 || cell[k] as usize >= self.dims[k]) {
                        continue;
                    }
                    let id = (cz as usize * self.dims[1] + cy as usize) * self.dims[0] + cx as usize;
                    for &i in &self.order[self.starts[id]..self.starts[id + 1]] {
                        let p = self.points[i];
                        let d2 = (p[0] - x[0]).powi(2) + (p[1] - x[1]).powi(2) + (p[2] - x[2]).powi(2);
                        if d2 < reach2 {
                            visit(i, d2);
                        }
                    }
                }
            }
        }
    }

    /// The kernel weights of the points near `x`: calls `visit(point, weight)` for each within
    /// reach, and returns the normaliser (sum of weights plus the fading floor).
    pub fn weights(&self, x: [f32; 3], mut visit: impl FnMut(usize, f32)) -> f32 {
        let inv = -0.5 / (self.sigma * self.sigma);
        let mut total = self.floor;
        self.within_reach(x, |i, d2| {
            let w = (d2 * inv).exp();
            total += w;
            visit(i, w);
        });
        total
    }

    /// Mean distance from each point to its nearest other point, among those within reach
    /// (points with none count as the reach).
    pub fn mean_spacing(&self) -> f32 {
        if self.points.len() < 2 {
            return self.sigma;
        }
        let total: f64 = (0..self.points.len())
            .map(|i| {
                let mut best = (REACH * self.sigma).powi(2);
                self.within_reach(self.points[i], |j, d2| {
                    if j != i {
                        best = best.min(d2);
                    }
                });
                best.sqrt() as f64
            })
            .sum();
        (total / self.points.len() as f64) as f32
    }

    /// The field `values` (one 3-vector per point) interpolated at `x`.
    pub fn sample(&self, values: &[[f32; 3]], x: [f32; 3]) -> [f32; 3] {
        let mut sum = [0.0f32; 3];
        let total = self.weights(x, |i, w| (0..3).for_each(|k| sum[k] += w * values[i][k]));
        sum.map(|s| s / total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn cloud(n: usize, seed: u64) -> Vec<[f32; 3]> {
        let mut rng = Rng::new(seed);
        (0..n).map(|_| [0; 3].map(|_| (rng.uniform() * 30.0 - 15.0) as f32)).collect()
    }

    #[test]
    fn a_uniform_field_is_reproduced_inside_the_cloud_and_fades_outside() {
        let points = cloud(400, 1);
        let field = ScatteredField::new(&points, 2.0);
        let values = vec![[1.0, -2.0, 0.5]; points.len()];
        let inside = field.sample(&values, [0.3, -1.0, 2.0]);
        for k in 0..3 {
            assert!((inside[k] - values[0][k]).abs() < 0.01 * values[0][k].abs(), "{inside:?}");
        }
        assert_eq!(field.sample(&values, [40.0, 0.0, 0.0]), [0.0; 3]);
    }

    #[test]
    fn mean_spacing_of_a_lattice_is_its_step() {
        let points: Vec<[f32; 3]> =
            (0..125).map(|i| [i % 5, (i / 5) % 5, i / 25].map(|k| k as f32 * 3.5)).collect();
        assert!((ScatteredField::new(&points, 4.0).mean_spacing() - 3.5).abs() < 1e-5);
    }

    #[test]
    fn cell_lists_find_exactly_the_points_a_full_scan_finds() {
        let points = cloud(300, 2);
        let field = ScatteredField::new(&points, 1.5);
        let values: Vec<[f32; 3]> = points.iter().map(|p| [p[1], p[2] * 0.5, -p[0]]).collect();
        let mut rng = Rng::new(3);
        for _ in 0..50 {
            let x = [0; 3].map(|_| (rng.uniform() * 36.0 - 18.0) as f32);
            let (mut sum, mut total) = ([0.0f64; 3], field.floor as f64);
            for (p, v) in points.iter().zip(&values) {
                let d2: f32 = (0..3).map(|k| (p[k] - x[k]).powi(2)).sum();
                if d2 < (REACH * 1.5f32).powi(2) {
                    let w = (-0.5 * d2 as f64 / 2.25).exp();
                    total += w;
                    (0..3).for_each(|k| sum[k] += w * v[k] as f64);
                }
            }
            let got = field.sample(&values, x);
            for k in 0..3 {
                assert!(
                    (got[k] as f64 - sum[k] / total).abs() < 1e-4,
                    "{got:?} vs {:?}",
                    sum.map(|s| s / total)
                );
            }
        }
    }
}
