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
