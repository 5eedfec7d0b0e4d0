//! Isosurfaces of maps by marching tetrahedra: each voxel cube is cut into six tetrahedra
//! around its main diagonal, and each tetrahedron contributes up to two triangles, oriented
//! with their normals pointing out of the density. No case tables, and no cracks between cubes.

use rayon::prelude::*;

use crate::array::Volume;

/// Corners of the unit cube, as (x, y, z) offsets.
const CORNERS: [[usize; 3]; 8] =
    [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]];

/// Six tetrahedra sharing the diagonal from corner 0 to corner 6.
const TETRAHEDRA: [[usize; 4]; 6] =
    [[0, 5, 1, 6], [0, 1, 2, 6], [0, 2, 3, 6], [0, 3, 7, 6], [0, 7, 4, 6], [0, 4, 5, 6]];

/// Triangles of the surface where `volume` crosses `threshold`: nine coordinates per triangle
/// (Å, centred on the box centre, voxel n/2), counter-clockwise seen from outside.
pub fn isosurface(volume: &Volume, pixel_size: f64, threshold: f32) -> Vec<f32> {
    let [nx, ny, nz] = volume.shape;
    if nx < 2 || ny < 2 || nz < 2 {
        return Vec::new();
    }
    let centre = [nx / 2, ny / 2, nz / 2].map(|c| c as f32);
    let scale = pixel_size as f32;
    (0..nz - 1)
        .into_par_iter()
        .flat_map_iter(|z| {
            let mut out = Vec::new();
            for y in 0..ny - 1 {
                for x in 0..nx - 1 {
                    let at = CORNERS.map(|c| [x + c[0], y + c[1], z + c[2]]);
                    let values = at.map(|p| volume.data[(p[2] * ny + p[1]) * nx + p[0]]);
                    if values.iter().all(|&v| v < threshold) || values.iter().all(|&v| v >= threshold) {
                        continue;
                    }
                    let points = at.map(|p| [0, 1, 2].map(|k| (p[k] as f32 - centre[k]) * scale));
                    for t in TETRAHEDRA {
                        tetrahedron(t.map(|c| (points[c], values[c])), threshold, &mut out);
                    }
                }
            }
            out
        })
        .collect()
}

type Corner = ([f32; 3], f32);

fn tetrahedron(corners: [Corner; 4], threshold: f32, out: &mut Vec<f32>) {
    let (inside, outside): (Vec<Corner>, Vec<Corner>) = corners.iter().partition(|c| c.1 >= threshold);
    let cross = |a: &Corner, b: &Corner| {
        let t = (threshold - a.1) / (b.1 - a.1);
        [0, 1, 2].map(|k| a.0[k] + t * (b.0[k] - a.0[k]))
    };
    let mean = |cs: &[Corner]| {
        let n = cs.len() as f32;
        [0, 1, 2].map(|k| cs.iter().map(|c| c.0[k]).sum::<f32>() / n)
    };
    let outward = {
        let (i, o) = (mean(&inside), mean(&outside));
        [o[0] - i[0], o[1] - i[1], o[2] - i[2]]
    };
    match inside.len() {
        1 | 3 => {
            let (one, three) =
                if inside.len() == 1 { (&inside[0], &outside) } else { (&outside[0], &inside) };
            let v = [cross(one, &three[0]), cross(one, &three[1]), cross(one, &three[2])];
            push(v, outward, out);
        }
        2 => {
            let (a, b, c, d) = (&inside[0], &inside[1], &outside[0], &outside[1]);
            let quad = [cross(a, c), cross(a, d), cross(b, d), cross(b, c)];
            push([quad[0], quad[1], quad[2]], outward, out);
            push([quad[0], quad[2], quad[3]], outward, out);
        }
        _ => {}
    }
}

/// Appends a triangle, its winding flipped if its normal points against `outward`.
fn push(mut v: [[f32; 3]; 3], outward: [f32; 3], out: &mut Vec<f32>) {
    let (e1, e2) = ([0, 1, 2].map(|k| v[1][k] - v[0][k]), [0, 1, 2].map(|k| v[2][k] - v[0][k]));
    let normal =
        [e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2], e1[0] * e2[1] - e1[1] * e2[0]];
    if (0..3).map(|k| normal[k] * outward[k]).sum::<f32>() < 0.0 {
        v.swap(1, 2);
    }
    out.extend(v.iter().flatten());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ball(n: usize, radius: f32) -> Volume {
        let c = (n / 2) as f32;
        let mut v = Volume::zeros([n; 3]);
        for (i, d) in v.data.iter_mut().enumerate() {
            let p = [i % n, (i / n) % n, i / (n * n)].map(|k| k as f32 - c);
            *d = radius - (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
        }
        v
    }

    #[test]
    fn a_sphere_has_the_right_area_and_encloses_the_right_volume() {
        let (n, pixel, radius) = (32, 2.0, 10.0f32);
        let triangles = isosurface(&ball(n, radius), pixel, 0.0);
        let (mut area, mut volume) = (0.0f64, 0.0f64);
        let r = (radius * pixel as f32) as f64;
        for t in triangles.chunks_exact(9) {
            let p = [0, 3, 6].map(|o| [t[o] as f64, t[o + 1] as f64, t[o + 2] as f64]);
            let (e1, e2) = ([0, 1, 2].map(|k| p[1][k] - p[0][k]), [0, 1, 2].map(|k| p[2][k] - p[0][k]));
            let c =
                [e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2], e1[0] * e2[1] - e1[1] * e2[0]];
            area += 0.5 * (c[0] * c[0] + c[1] * c[1] + c[2] * c[2]).sqrt();
            // divergence theorem: signed tetrahedra from the origin, positive if oriented outwards
            volume += (0..3).map(|k| p[0][k] * c[k]).sum::<f64>() / 6.0;
            for v in p {
                let d = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
                assert!((d - r).abs() < 0.6 * pixel, "vertex at {d:.2} Å from the centre, radius {r}");
            }
        }
        let pi = std::f64::consts::PI;
        assert!((area / (4.0 * pi * r * r) - 1.0).abs() < 0.03, "area {area:.1}");
        assert!((volume / (4.0 / 3.0 * pi * r.powi(3)) - 1.0).abs() < 0.02, "volume {volume:.1}");
    }

    #[test]
    fn no_crossing_gives_no_triangles() {
        assert!(isosurface(&ball(8, 2.0), 1.0, 100.0).is_empty());
        assert!(isosurface(&ball(8, 2.0), 1.0, -100.0).is_empty());
    }
}
