//! The Gaussian consensus model on real maps, and the renderer against Fourier-slice projection.

use cryomotion::array::Volume;
use cryomotion::geometry::euler_to_matrix;
use cryomotion::imaging::splat::{View, project};
use cryomotion::imaging::{FourierProjector, GaussianSet, ImageRenderer};
use cryomotion::io::atoms::read_atoms;
use cryomotion::io::mrc::read_map;
use cryomotion::io::relion::particles_from_star;
use cryomotion::io::star::StarFile;
use cryomotion::model::{FitOptions, GaussianModel};

use crate::imaging::correlation;
use crate::util::shared;

/// Fits `count` Gaussians to a map; asserts FSC ≥ 0.9 in every shell up to `resolution` Å, or
/// up to the last shell where the map holds signal, whichever comes first.
fn fit_map(name: &str, map: &Volume, pixel: f64, count: usize, resolution: f64) -> GaussianModel {
    fit_map_report(name, map, pixel, count, resolution).0
}

fn fit_map_report(
    name: &str,
    map: &Volume,
    pixel: f64,
    count: usize,
    resolution: f64,
) -> (GaussianModel, Vec<f64>) {
    let n = map.shape[0];
    let options = FitOptions { count, ..FitOptions::default() };
    let (model, report) = GaussianModel::fit_to_map(map, pixel, &options).unwrap();
    let last_shell = ((n as f64 * pixel / resolution).floor() as usize).min(report.signal_shells);
    let worst = report.fsc[1..=last_shell].iter().cloned().fold(1.0, f64::min);
    println!(
        "{name}: {count} Gaussians, loss {:.4} → {:.4}, FSC 0.9 at {:.1} Å, signal to {:.1} Å, worst FSC to {:.1} Å {worst:.3}",
        report.losses[0],
        report.losses.last().unwrap(),
        report.resolution_at_0_9,
        n as f64 * pixel / report.signal_shells as f64,
        n as f64 * pixel / last_shell as f64,
    );
    assert!(worst >= 0.9, "{name}: FSC {worst:.3} below 0.9 before {resolution} Å: {:?}", report.fsc);
    (model, report.fsc)
}

/// RELION's β-galactosidase reference is low-pass filtered: it holds no signal beyond 44 Å
/// (shell 8 of 100; the power then falls by 10¹²), and shell 8 is the filter's soft edge, with
/// 10⁻⁵ of shell 1's power. FSC ≥ 0.9 to 51 Å (shell 7), ≥ 0.8 at the edge.
#[test]
fn betagal_reference_fits_at_fsc_0_9_where_it_has_signal() {
    let map = read_map(shared("relion_ref/ref_model_betagal_100.mrc")).unwrap();
    let (_, fsc) = fit_map_report("betagal", &map.volume, map.voxel_size[0] as f64, 5000, 50.0);
    assert!(fsc[8] >= 0.8, "FSC {:.3} at 44 Å", fsc[8]);
}

/// A map with signal to Nyquist (TRPV1 from its atomic model, 4 Å, box 100 at 2 Å): 5000
/// Gaussians fit it at FSC ≥ 0.9 to 10 Å.
#[test]
fn atomic_trpv1_map_fits_at_fsc_0_9_to_10_angstrom() {
    let atoms = read_atoms(shared("locscale_trpv1/pdb3j5p_refined.pdb")).unwrap();
    let atoms = atoms.atoms();
    let centre = [0, 1, 2].map(|k| atoms.iter().map(|a| a.position[k]).sum::<f64>() / atoms.len() as f64);
    let map = GaussianSet::from_atoms(atoms, centre, 4.0).render_volume(100, 2.0);
    fit_map("TRPV1 from 3J5P", &map, 2.0, 5000, 10.0);
}

#[test]
fn trpv1_fits_at_fsc_0_9_to_15_angstrom_and_projects_like_its_map() {
    let map = read_map(shared("cryojax_trpv1/trpv1_volume.mrc")).unwrap();
    let (n, pixel) = (map.volume.shape[0], map.voxel_size[0] as f64);
    let model = fit_map("TRPV1 (cryojax)", &map.volume, pixel, 2000, 15.0);
    // rendered projections of the model = Fourier-slice projections of its volume rendered 3×
    // finer (binned 3 × 3: pixel averages), at the poses and shifts of a RELION set
    let fine = 3 * n;
    let projector = FourierProjector::new(&model.render(fine, pixel / 3.0), 2);
    let mut renderer = ImageRenderer::new(fine);
    let star_path = shared("aspire_relion/rln_proj_65_shifted.star");
    let table = particles_from_star(StarFile::read(&star_path).unwrap(), &star_path, Some(1.0)).unwrap();
    let (mut slice, mut binned, mut splat) = (vec![0.0; fine * fine], vec![0.0; n * n], vec![0.0; n * n]);
    for p in &table.particles {
        let [rot, tilt, psi] = p.euler_deg;
        let a = euler_to_matrix(rot, tilt, psi);
        // the set's shifts in pixels, at our pixel size
        let origin_px = [p.origin_angstrom[0], p.origin_angstrom[1]];
        renderer.render(&projector, &a, [3.0 * origin_px[0], 3.0 * origin_px[1]], None, &mut slice);
        // fine pixels 3i − 1 … 3i + 1 cover coarse pixel i (both centred at n/2·pixel)
        binned.fill(0.0);
        for y in 1..fine - 1 {
            for x in 1..fine - 1 {
                let (cx, cy) = ((x + 1) / 3, (y + 1) / 3);
                if cx < n && cy < n {
                    binned[cy * n + cx] += slice[y * fine + x] / 3.0;
                }
            }
        }
        splat.fill(0.0);
        let view = View::new(&a, [origin_px[0] * pixel, origin_px[1] * pixel], pixel);
        project(&model.positions, &model.amplitudes, &model.widths, &view, n, &mut splat);
        // inside the particle's disc: the Fourier-slice image wraps around its edges, ours clips
        let disc = |image: &[f32]| -> Vec<f32> {
            let r2 = (0.4 * n as f64).powi(2);
            let c = (n / 2) as f64;
            (0..n * n)
                .filter(|i| ((i % n) as f64 - c).powi(2) + ((i / n) as f64 - c).powi(2) <= r2)
                .map(|i| image[i])
                .collect()
        };
        let cc = correlation(&disc(&binned), &disc(&splat));
        assert!(cc >= 0.99, "pose {:?}: correlation {cc:.4}", p.euler_deg);
    }
}
