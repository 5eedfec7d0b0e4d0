//! Real-space masks: soft spheres, soft masks from a map threshold, RELION's background fill.

use crate::array::Volume;

/// Distance of voxel (x, y, z) from the box centre n/2.
#[inline]
fn radius(x: usize, y: usize, z: usize, shape: [usize; 3]) -> f64 {
    let c = shape.map(|n| (n / 2) as f64);
    ((x as f64 - c[0]).powi(2) + (y as f64 - c[1]).powi(2) + (z as f64 - c[2]).powi(2)).sqrt()
}

/// Raised-cosine edge: 1 inside `r0`, 0 beyond `r0 + width`.
#[inline]
fn soft_edge(r: f64, r0: f64, width: f64) -> f64 {
    if r <= r0 {
        1.0
    } else if r >= r0 + width || width <= 0.0 {
        0.0
    } else {
        0.5 + 0.5 * (std::f64::consts::PI * (r - r0) / width).cos()
    }
}

/// A soft spherical mask of `radius` voxels about the centre with a raised-cosine edge of
/// `width` voxels.
pub fn sphere_mask(shape: [usize; 3], radius_voxels: f64, width: f64) -> Volume {
    let mut out = Volume::zeros(shape);
    for z in 0..shape[2] {
        for y in 0..shape[1] {
            for x in 0..shape[0] {
                let i = out.index(x, y, z);
                out.data[i] = soft_edge(radius(x, y, z, shape), radius_voxels, width) as f32;
            }
        }
    }
    out
}

/// Replaces the map outside a sphere of radius n/2 by its background, with a raised-cosine
/// transition of `width` voxels: RELION's `softMaskOutsideMap` after every reconstruction
/// (the background is the mean beyond radius n/2, weighted by the edge).
pub fn soften_outside_sphere(volume: &mut Volume, width: f64) {
    let shape = volume.shape;
    let r0 = (shape[0].min(shape[1]).min(shape[2]) / 2) as f64;
    let (mut sum, mut weight) = (0.0f64, 0.0f64);
    for z in 0..shape[2] {
        for y in 0..shape[1] {
            for x in 0..shape[0] {
                let r = radius(x, y, z, shape);
                if r >= r0 {
                    let w = 1.0 - soft_edge(r, r0, width);
                    let w = if r > r0 + width { 1.0 } else { w };
                    sum += w * volume.get(x, y, z) as f64;
                    weight += w;
                }
            }
        }
    }
    let background = if weight > 0.0 { sum / weight } else { 0.0 };
    for z in 0..shape[2] {
        for y in 0..shape[1] {
            for x in 0..shape[0] {
                let keep = soft_edge(radius(x, y, z, shape), r0, width);
                let i = volume.index(x, y, z);
                volume.data[i] = (keep * volume.data[i] as f64 + (1.0 - keep) * background) as f32;
            }
        }
    }
}

/// Squared Euclidean distance (in voxels) from every voxel to the nearest voxel where `inside`
/// is true (exact; Felzenszwalb and Huttenlocher's separable transform).
pub fn squared_distance(inside: &[bool], shape: [usize; 3]) -> Vec<f64> {
    let [nx, ny, nz] = shape;
    let far = ((nx * nx + ny * ny + nz * nz) as f64) * 4.0 + 1.0;
    let mut d: Vec<f64> = inside.iter().map(|&b| if b { 0.0 } else { far }).collect();
    let mut line = Vec::new();
    let mut out = Vec::new();
    // x, then y, then z
    for (len, stride, count, base) in [
        (nx, 1, ny * nz, Box::new(move |k: usize| k * nx) as Box<dyn Fn(usize) -> usize>),
        (ny, nx, nx * nz, Box::new(move |k: usize| (k / nx) * nx * ny + k % nx)),
        (nz, nx * ny, nx * ny, Box::new(|k: usize| k)),
    ] {
        for k in 0..count {
            let start = base(k);
            line.clear();
            line.extend((0..len).map(|i| d[start + i * stride]));
            distance_1d(&line, &mut out);
            for i in 0..len {
                d[start + i * stride] = out[i];
            }
        }
    }
    d
}

/// 1D squared distance transform of sampled function `f` (lower envelope of parabolas).
fn distance_1d(f: &[f64], out: &mut Vec<f64>) {
    let n = f.len();
    out.clear();
    out.resize(n, 0.0);
    let mut v = vec![0usize; n];
    let mut z = vec![0.0f64; n + 1];
    let mut k = 0;
    z[0] = f64::NEG_INFINITY;
    z[1] = f64::INFINITY;
    for q in 1..n {
        let parabola =
            |p: usize| ((f[q] + (q * q) as f64) - (f[p] + (p * p) as f64)) / (2.0 * (q as f64 - p as f64));
        let mut s = parabola(v[k]);
        while s <= z[k] {
            k -= 1; // z[0] = −∞ stops this at k = 0
            s = parabola(v[k]);
        }
        k += 1;
        v[k] = q;
        z[k] = s;
        z[k + 1] = f64::INFINITY;
    }
    let mut k = 0;
    for (q, o) in out.iter_mut().enumerate() {
        while z[k + 1] < q as f64 {
            k += 1;
        }
        let p = v[k];
        *o = (q as f64 - p as f64).powi(2) + f[p];
    }
}

/// A soft mask from a map: 1 where the map exceeds `threshold`, extended by `extend` voxels,
/// then a raised-cosine edge of `soft_width` voxels (as relion_mask_create).
pub fn threshold_mask(map: &Volume, threshold: f32, extend: f64, soft_width: f64) -> Volume {
    let inside: Vec<bool> = map.data.iter().map(|&v| v > threshold).collect();
    let d2 = squared_distance(&inside, map.shape);
    let data = d2.iter().map(|&d| soft_edge(d.sqrt(), extend, soft_width) as f32).collect();
    Volume::from_vec(map.shape, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sphere_is_one_inside_zero_outside_and_smooth_between() {
        let m = sphere_mask([20; 3], 5.0, 4.0);
        assert_eq!(m.get(10, 10, 10), 1.0);
        assert_eq!(m.get(15, 10, 10), 1.0); // r = 5
        assert!((m.get(17, 10, 10) - 0.5).abs() < 1e-6); // r = 7: half way
        assert_eq!(m.get(19, 10, 10), 0.0); // r = 9
    }

    #[test]
    fn distance_transform_matches_brute_force() {
        let shape = [9, 7, 5];
        let n: usize = shape.iter().product();
        let mut inside = vec![false; n];
        for &i in &[3usize, 40, 100, 250, 311] {
            inside[i] = true;
        }
        let d = squared_distance(&inside, shape);
        let coord = |i: usize| [i % 9, (i / 9) % 7, i / 63];
        for (i, &di) in d.iter().enumerate() {
            let c = coord(i);
            let brute = [3usize, 40, 100, 250, 311]
                .iter()
                .map(|&j| {
                    let o = coord(j);
                    (0..3).map(|k| (c[k] as f64 - o[k] as f64).powi(2)).sum::<f64>()
                })
                .fold(f64::INFINITY, f64::min);
            assert_eq!(di, brute, "voxel {i}");
        }
    }

    #[test]
    fn threshold_mask_extends_and_softens() {
        let n = 21;
        let mut map = Volume::zeros([n; 3]);
        let i = map.index(10, 10, 10);
        map.data[i] = 5.0;
        let m = threshold_mask(&map, 1.0, 3.0, 4.0);
        assert_eq!(m.get(13, 10, 10), 1.0); // 3 voxels away: inside the extension
        assert!((m.get(15, 10, 10) - 0.5).abs() < 1e-6); // 5 away: half way down the edge
        assert_eq!(m.get(18, 10, 10), 0.0);
    }

    #[test]
    fn outside_becomes_the_background_mean() {
        let n = 16;
        let mut v = Volume::zeros([n; 3]);
        for z in 0..n {
            for y in 0..n {
                for x in 0..n {
                    let i = v.index(x, y, z);
                    v.data[i] = if radius(x, y, z, [n; 3]) > 8.0 { 3.0 } else { 1.0 };
                }
            }
        }
        soften_outside_sphere(&mut v, 3.0);
        assert_eq!(v.get(8, 8, 8), 1.0);
        assert!((v.get(0, 0, 0) - 3.0).abs() < 1e-5); // the corners are background
    }
}
