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

    #[test]
    fn a_uniform_displacement_moves_a_blob_and_keeps_its_mass() {
        let (n, pixel) = (32, 1.5);
        let volume = blob(n, [16.0, 16.0, 16.0], 2.5);
        // field points on a lattice covering the box, all displaced by (3, -1.5, 0) Å
        let points: Vec<[f32; 3]> =
            (0..8 * 8 * 8).map(|i| [i % 8, (i / 8) % 8, i / 64].map(|k| (k as f32 - 3.5) * 6.0)).collect();
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
}
