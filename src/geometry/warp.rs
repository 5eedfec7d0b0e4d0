//! Moving a map by a displacement field: each voxel's density is carried to its displaced
//! position and spread there trilinearly (forward splatting), so the total density is kept,
//! as 3DFlex's generator moves its canonical map.

use rayon::prelude::*;

use super::ScatteredField;
use crate::array::Volume;

/// `volume` (cubic voxels of `pixel_size` Å, box centre at voxel n/2) with every voxel's density
/// moved by the field `displacements` (Å, one per point of `field`) interpolated at the voxel.
/// Density carried outside the box is lost.
///
/// # Panics
/// If `displacements` does not have one vector per point of `field`.
pub fn warp_forward(
    volume: &Volume,
    pixel_size: f64,
    field: &ScatteredField,
    displacements: &[[f32; 3]],
) -> Volume {
    assert_eq!(displacements.len(), field.len(), "one displacement per point");
    let [nx, ny, nz] = volume.shape;
    let centre = [nx / 2, ny / 2, nz / 2].map(|c| c as f32);
    let pixel = pixel_size as f32;
    let slab = nx * ny;
    let splat_slice = |z: usize, out: &mut Volume| {
        for y in 0..ny {
            for x in 0..nx {
                let rho = volume.data[z * slab + y * nx + x];
                if rho == 0.0 {
                    continue;
                }
                let at =
                    [x as f32 - centre[0], y as f32 - centre[1], z as f32 - centre[2]].map(|v| v * pixel);
                let u = field.sample(displacements, at);
                let target = [x as f32 + u[0] / pixel, y as f32 + u[1] / pixel, z as f32 + u[2] / pixel];
                splat(out, target, rho);
            }
        }
    };
    (0..nz)
        .into_par_iter()
        .fold(
            || Volume::zeros(volume.shape),
            |mut out, z| {
                splat_slice(z, &mut out);
                out
            },
        )
        .reduce(
            || Volume::zeros(volume.shape),
            |mut a, b| {
                a.data.iter_mut().zip(&b.data).for_each(|(x, y)| *x += y);
                a
            },
        )
}

/// Adds `value` at fractional voxel `p`, spread over its eight neighbours.
fn splat(out: &mut Volume, p: [f32; 3], value: f32) {
    let [nx, ny, nz] = out.shape;
    let base = p.map(|v| v.floor());
    let f = [p[0] - base[0], p[1] - base[1], p[2] - base[2]];
    let b = base.map(|v| v as i64);
    for dz in 0..2 {
        let z = b[2] + dz;
        let wz = if dz == 0 { 1.0 - f[2] } else { f[2] };
        if z < 0 || z >= nz as i64 || wz == 0.0 {
            continue;
        }
        for dy in 0..2 {
            let y = b[1] + dy;
            let wy = if dy == 0 { 1.0 - f[1] } else { f[1] };
            if y < 0 || y >= ny as i64 || wy == 0.0 {
                continue;
            }
            for dx in 0..2 {
                let x = b[0] + dx;
                let wx = if dx == 0 { 1.0 - f[0] } else { f[0] };
                if x < 0 || x >= nx as i64 || wx == 0.0 {
                    continue;
                }
                out.data[(z as usize * ny + y as usize) * nx + x as usize] += value * wx * wy * wz;
            }
        }
    }
}

/// `volume` (cubic voxels of `pixel_size` Å, box centre at voxel n/2) sampled at x + d(x) for
/// every voxel x: the map pulled back along the field d (Å, one vector per point of `field`),
/// so that a map of a deformed conformation lands in the frame the field starts from. The
/// field is evaluated every `downsample` voxels and interpolated trilinearly between; outside
/// the box the map is zero.
///
/// # Panics
/// If `displacements` does not have one vector per point of `field`, or the volume is not cubic.
pub fn pull_back(
    volume: &Volume,
    pixel_size: f64,
    field: &ScatteredField,
    displacements: &[[f32; 3]],
    downsample: usize,
) -> Volume {
    assert_eq!(displacements.len(), field.len(), "one displacement per point");
    let n = volume.shape[0];
    assert_eq!(volume.shape, [n; 3], "a cubic volume");
    let step = downsample.max(1);
    let nodes = n.div_ceil(step) + 1;
    let (centre, pixel) = ((n / 2) as f32, pixel_size as f32);
    // the field in voxels at the coarse nodes
    let coarse: Vec<[f32; 3]> = (0..nodes * nodes * nodes)
        .into_par_iter()
        .map(|j| {
            let node = [j % nodes, (j / nodes) % nodes, j / (nodes * nodes)];
            let at = node.map(|c| ((c * step) as f32 - centre) * pixel);
            field.sample(displacements, at).map(|u| u / pixel)
        })
        .collect();
    let mut out = Volume::zeros(volume.shape);
    out.data.par_chunks_mut(n * n).enumerate().for_each(|(z, slab)| {
        for y in 0..n {
            for x in 0..n {
                let voxel = [x, y, z];
                let cell = voxel.map(|c| c / step);
                let f = [0, 1, 2].map(|k| (voxel[k] % step) as f32 / step as f32);
                let mut d = [0.0f32; 3];
                for corner in 0..8 {
                    let bit = [corner & 1, (corner >> 1) & 1, (corner >> 2) & 1];
                    let w: f32 = (0..3).map(|k| if bit[k] == 1 { f[k] } else { 1.0 - f[k] }).product();
                    if w == 0.0 {
                        continue;
                    }
                    let c = [0, 1, 2].map(|k| cell[k] + bit[k]);
                    let u = coarse[(c[2] * nodes + c[1]) * nodes + c[0]];
                    (0..3).for_each(|k| d[k] += w * u[k]);
                }
                slab[y * n + x] = trilinear(volume, [x as f32 + d[0], y as f32 + d[1], z as f32 + d[2]]);
            }
        }
    });
    out
}

/// `volume` at fractional voxel `p` (x, y, z), trilinear between voxels, zero outside.
pub fn trilinear(volume: &Volume, p: [f32; 3]) -> f32 {
    let [nx, ny, nz] = volume.shape;
    let base = p.map(|v| v.floor());
    let f = [p[0] - base[0], p[1] - base[1], p[2] - base[2]];
    let b = base.map(|v| v as i64);
    let mut sum = 0.0;
    for corner in 0..8 {
        let bit = [corner & 1, (corner >> 1) & 1, (corner >> 2) & 1];
        let at = [b[0] + bit[0] as i64, b[1] + bit[1] as i64, b[2] + bit[2] as i64];
        if at[0] < 0
            || at[1] < 0
            || at[2] < 0
            || at[0] >= nx as i64
            || at[1] >= ny as i64
            || at[2] >= nz as i64
        {
            continue;
        }
        let w: f32 = (0..3).map(|k| if bit[k] == 1 { f[k] } else { 1.0 - f[k] }).product();
        sum += w * volume.data[((at[2] as usize) * ny + at[1] as usize) * nx + at[0] as usize];
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(n: usize, centre: [f32; 3], sigma: f32) -> Volume {
        let mut v = Volume::zeros([n; 3]);
        for z in 0..n {
            for y in 0..n {
                for x in 0..n {
                    let d2 = (x as f32 - centre[0]).powi(2)
                        + (y as f32 - centre[1]).powi(2)
                        + (z as f32 - centre[2]).powi(2);
                    v.data[(z * n + y) * n + x] = (-0.5 * d2 / (sigma * sigma)).exp();
                }
            }
        }
        v
    }

    fn centre_of_mass(v: &Volume) -> [f64; 3] {
        let n = v.shape[0];
        let (mut m, mut c) = (0.0f64, [0.0f64; 3]);
        for (i, &rho) in v.data.iter().enumerate() {
            let p = [i % n, (i / n) % n, i / (n * n)];
            m += rho as f64;
            (0..3).for_each(|k| c[k] += rho as f64 * p[k] as f64);
        }
        c.map(|v| v / m)
    }

    /// 8³ field points `spacing` Å apart, centred on the box.
    fn lattice(spacing: f32) -> Vec<[f32; 3]> {
        (0..8 * 8 * 8).map(|i| [i % 8, (i / 8) % 8, i / 64].map(|k| (k as f32 - 3.5) * spacing)).collect()
    }

    #[test]
    fn a_uniform_displacement_moves_a_blob_and_keeps_its_mass() {
        let (n, pixel) = (32, 1.5);
        let volume = blob(n, [16.0, 16.0, 16.0], 2.5);
        // field points on a lattice covering the box, all displaced by (3, -1.5, 0) Å
        let points = lattice(6.0);
        let field = ScatteredField::new(&points, 4.0);
        let moved = warp_forward(&volume, pixel, &field, &vec![[3.0, -1.5, 0.0]; points.len()]);
        let (before, after) = (centre_of_mass(&volume), centre_of_mass(&moved));
        let expected = [2.0, -1.0, 0.0];
        for k in 0..3 {
            assert!((after[k] - before[k] - expected[k]).abs() < 0.03, "{before:?} → {after:?}");
        }
        let mass = |v: &Volume| v.data.iter().map(|&x| x as f64).sum::<f64>();
        assert!((mass(&moved) / mass(&volume) - 1.0).abs() < 1e-4);
    }

    #[test]
    fn no_displacement_leaves_the_map_unchanged() {
        let volume = blob(16, [7.0, 9.0, 8.0], 2.0);
        let points = vec![[0.0f32; 3]; 4];
        let field = ScatteredField::new(&points, 3.0);
        let moved = warp_forward(&volume, 2.0, &field, &[[0.0; 3]; 4]);
        assert_eq!(moved.data, volume.data);
    }

    #[test]
    fn a_uniform_field_pulls_a_blob_back_by_the_displacement() {
        let (n, pixel) = (32, 2.0);
        let map = blob(n, [16.0, 15.0, 17.0], 2.0);
        // field nodes on a grid covering the box, all moved by (+3, −2, +1) Å
        let nodes = lattice(8.0);
        let field = ScatteredField::new(&nodes, 6.0);
        let moved = vec![[3.0f32, -2.0, 1.0]; nodes.len()];
        for downsample in [1, 3] {
            let back = pull_back(&map, pixel, &field, &moved, downsample);
            let c = centre_of_mass(&back);
            // sampled at x + d: the blob appears at its centre − d
            let expected = [16.0 - 1.5, 15.0 + 1.0, 17.0 - 0.5];
            for k in 0..3 {
                assert!((c[k] - expected[k]).abs() < 0.02, "downsample {downsample}: {c:?} vs {expected:?}");
            }
        }
    }
}
