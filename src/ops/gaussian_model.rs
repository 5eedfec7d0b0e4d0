//! Builds the Gaussian consensus model of a map (or of a docked atomic model) and writes it where
//! ChimeraX shows it over the map: a PDB point cloud in the map's frame, the rendered model as
//! MRC with the map's pixel size and origin, the FSC against the map, and the model itself.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::atoms::{Atom, read_atoms, write_pdb};
use crate::io::mrc::{Map, Mode, write_volume};
use crate::io::weights::Tensors;
use crate::model::{FitOptions, GaussianModel};
use crate::reconstruction::{fsc, resolution_at};

/// Where a map's box centre (voxel n/2) lies in Å: the header's origin (or, when that is zero,
/// nxstart·voxel, as ChimeraX reads it) plus n/2 voxels.
pub fn map_centre(map: &Map) -> [f64; 3] {
    let zero = map.origin.iter().all(|&o| o == 0.0);
    [0, 1, 2].map(|k| {
        let first =
            if zero { map.header.start[k] as f64 * map.voxel_size[k] as f64 } else { map.origin[k] as f64 };
        first + (map.volume.shape[k] / 2) as f64 * map.voxel_size[k] as f64
    })
}

/// What was built and how well it matches the map.
#[derive(Clone, Debug)]
pub struct ModelSummary {
    /// The model.
    pub model: GaussianModel,
    /// FSC per shell between the rendered model and the map.
    pub fsc: Vec<f64>,
    /// Resolution (Å) where that FSC first drops below 0.9.
    pub resolution_at_0_9: f64,
    /// The fit's objective per iteration (empty for atomic models).
    pub losses: Vec<f64>,
    /// Placement threshold (map mode).
    pub threshold: Option<f32>,
}

/// Fits `options.count` Gaussians to the map, or with `atomic_model`, builds one per residue.
///
/// # Errors
/// Unreadable or non-cubic maps, unreadable models, models without atoms, no density above
/// the threshold.
pub fn build(map: &Map, atomic_model: Option<&Path>, options: &FitOptions) -> Result<ModelSummary> {
    let n = map.volume.shape[0];
    let pixel = map.voxel_size[0] as f64;
    match atomic_model {
        Some(path) => {
            let atoms = read_atoms(path)?;
            if atoms.atoms().is_empty() {
                return Err(Error::invalid("the model holds no atoms").with_path(path));
            }
            let model = GaussianModel::from_atoms(atoms.atoms(), map_centre(map), options.resolution);
            let curve = fsc(&model.render(n, pixel), &map.volume);
            Ok(ModelSummary {
                model,
                resolution_at_0_9: resolution_at(&curve, 0.9, n, pixel),
                fsc: curve,
                losses: Vec::new(),
                threshold: None,
            })
        }
        None => {
            let (model, report) = GaussianModel::fit_to_map(&map.volume, pixel, options)?;
            Ok(ModelSummary {
                model,
                fsc: report.fsc,
                resolution_at_0_9: report.resolution_at_0_9,
                losses: report.losses,
                threshold: Some(report.threshold),
            })
        }
    }
}

/// Files written by [`write_outputs`].
#[derive(Clone, Debug)]
pub struct ModelFiles {
    /// PDB point cloud (B-factor 8π²σ²).
    pub points: PathBuf,
    /// Rendered model.
    pub volume: PathBuf,
    /// FSC table and plot.
    pub fsc: PathBuf,
    /// The model (positions, amplitudes, widths, bonds) in our weights format.
    pub model: PathBuf,
}

/// Writes `gaussians.pdb`, `gaussians.mrc`, `gaussians_fsc.star` (+ `.png`) and
/// `gaussians.weights` under `dir`.
///
/// # Errors
/// Any write failure.
pub fn write_outputs(dir: &Path, map: &Map, summary: &ModelSummary) -> Result<ModelFiles> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(e, dir))?;
    let n = map.volume.shape[0];
    let pixel = map.voxel_size[0] as f64;
    let model = &summary.model;
    let centre = map_centre(map);
    let files = ModelFiles {
        points: dir.join("gaussians.pdb"),
        volume: dir.join("gaussians.mrc"),
        fsc: dir.join("gaussians_fsc.star"),
        model: dir.join("gaussians.weights"),
    };
    write_pdb(&files.points, &[model_atoms(model, centre)])?;
    write_volume(&files.volume, &model.render(n, pixel), pixel as f32, map.origin, Mode::Float32)?;
    let star = crate::ops::reconstruct::fsc_star(&summary.fsc, None, n, pixel, summary.resolution_at_0_9)?;
    star.write(&files.fsc)?;
    let title = format!("model vs map: FSC 0.9 at {:.1} Å", summary.resolution_at_0_9);
    crate::plot::fsc_chart(&title, &[("model vs map", &summary.fsc)], n, pixel)
        .write_png(files.fsc.with_extension("png"))?;
    save_model(model, n, pixel, &files.model)?;
    Ok(files)
}

/// The Gaussians as pseudo-atoms in the map's frame (`centre`: the map's box centre in Å), with
/// B-factors 8π²σ² and occupancies their amplitudes over the largest (a Gaussian whose
/// amplitude faded carries no density: in ChimeraX, `hide @@occupancy<0.05`).
pub fn model_atoms(model: &GaussianModel, centre: [f64; 3]) -> Vec<Atom> {
    let largest = model.amplitudes.iter().copied().fold(0.0f32, f32::max);
    model
        .points()
        .iter()
        .zip(model.widths.iter().zip(&model.amplitudes))
        .enumerate()
        .map(|(i, (p, (&w, &a)))| {
            let b = 8.0 * std::f64::consts::PI.powi(2) * (w as f64).powi(2);
            let mut atom = Atom::pseudo(i as i64 + 1, [0, 1, 2].map(|k| centre[k] + p[k] as f64), b);
            if largest > 0.0 {
                atom.occupancy = (a / largest) as f64;
            }
            atom
        })
        .collect()
}

/// Saves a model with its box and pixel size.
///
/// # Errors
/// Write failures.
pub fn save_model(model: &GaussianModel, box_size: usize, pixel_size: f64, path: &Path) -> Result<()> {
    let ng = model.len();
    let mut t = Tensors::default();
    t.metadata.push(("content".into(), "gaussian-model".into()));
    t.metadata.push(("box_size".into(), box_size.to_string()));
    t.metadata.push(("pixel_size".into(), pixel_size.to_string()));
    t.push("positions", &[ng, 3], &model.positions);
    t.push("amplitudes", &[ng], &model.amplitudes);
    t.push("widths", &[ng], &model.widths);
    let bonds: Vec<f32> = model.bonds.iter().flat_map(|b| b.map(|i| i as f32)).collect();
    t.push("bonds", &[model.bonds.len(), 2], &bonds);
    t.write(path)
}

/// Loads a model saved by [`save_model`], with its box and pixel size.
///
/// # Errors
/// Unreadable files, other contents, inconsistent shapes.
pub fn load_model(path: &Path) -> Result<(GaussianModel, usize, f64)> {
    let t = Tensors::read(path)?;
    let bad = |m: &str| Error::invalid(m.to_string()).with_path(path);
    if t.meta("content") != Some("gaussian-model") {
        return Err(bad("not a Gaussian model file"));
    }
    let box_size: usize =
        t.meta("box_size").and_then(|v| v.parse().ok()).ok_or_else(|| bad("no box_size"))?;
    let pixel_size: f64 =
        t.meta("pixel_size").and_then(|v| v.parse().ok()).ok_or_else(|| bad("no pixel_size"))?;
    let ng = t.tensors.iter().find(|(n, _, _)| n == "amplitudes").map_or(0, |(_, s, _)| s[0]);
    let nb = t.tensors.iter().find(|(n, _, _)| n == "bonds").map_or(0, |(_, s, _)| s[0]);
    let model = GaussianModel {
        positions: t.get("positions", &[ng, 3]).map_err(|e| e.with_path(path))?.to_vec(),
        amplitudes: t.get("amplitudes", &[ng]).map_err(|e| e.with_path(path))?.to_vec(),
        widths: t.get("widths", &[ng]).map_err(|e| e.with_path(path))?.to_vec(),
        bonds: t
            .get("bonds", &[nb, 2])
            .map_err(|e| e.with_path(path))?
            .chunks_exact(2)
            .map(|b| [b[0] as u32, b[1] as u32])
            .collect(),
    };
    Ok((model, box_size, pixel_size))
}

#[cfg(test)]
mod tests {
    use super::model_atoms;
    use crate::model::GaussianModel;

    /// Positions move to the map's frame; B = 8π²σ²; occupancy = amplitude / largest.
    #[test]
    fn pseudo_atoms_carry_width_and_relative_amplitude() {
        let model = GaussianModel {
            positions: vec![0.0, 1.0, 2.0, -3.0, 0.5, 4.0],
            amplitudes: vec![2.0, 0.5],
            widths: vec![1.0, 2.0],
            bonds: Vec::new(),
        };
        let atoms = model_atoms(&model, [10.0, 20.0, 30.0]);
        assert_eq!(atoms[1].position, [7.0, 20.5, 34.0]);
        let b = 8.0 * std::f64::consts::PI.powi(2) * 4.0;
        assert!((atoms[1].b_factor - b).abs() < 1e-9);
        assert_eq!(atoms.iter().map(|a| a.occupancy).collect::<Vec<_>>(), vec![1.0, 0.25]);
    }
}
