//! Atomic models: PDB and mmCIF atoms in; multi-model PDB (ensembles, point clouds) out.

mod cif;
mod pdb;

pub use cif::parse_mmcif;
pub use pdb::{format_pdb, parse_pdb};

use std::path::Path;

use crate::error::{Error, Result};

/// One atom.
#[derive(Clone, Debug, PartialEq)]
pub struct Atom {
    /// Whether the record is HETATM.
    pub hetero: bool,
    /// Serial number.
    pub serial: i64,
    /// Atom name (e.g. "CA").
    pub name: String,
    /// Alternate location indicator (empty if none).
    pub alt_loc: String,
    /// Residue name (e.g. "ALA").
    pub residue_name: String,
    /// Chain identifier.
    pub chain: String,
    /// Residue number.
    pub residue_number: i64,
    /// Insertion code (empty if none).
    pub insertion_code: String,
    /// Position (x, y, z) in Å.
    pub position: [f64; 3],
    /// Occupancy.
    pub occupancy: f64,
    /// B-factor in Å².
    pub b_factor: f64,
    /// Element symbol (e.g. "C").
    pub element: String,
}

impl Atom {
    /// A pseudo-atom at `position` (for point clouds such as Gaussian centres).
    pub fn pseudo(serial: i64, position: [f64; 3], b_factor: f64) -> Self {
        // PDB has 4 digits for residue numbers: spread large clouds over chains A, B, ...
        let chain_index = ((serial - 1) / 9999) as u8;
        Atom {
            hetero: false,
            serial,
            name: "CA".into(),
            alt_loc: String::new(),
            residue_name: "GAU".into(),
            chain: ((b'A' + chain_index % 26) as char).to_string(),
            residue_number: (serial - 1) % 9999 + 1,
            insertion_code: String::new(),
            position,
            occupancy: 1.0,
            b_factor,
            element: "C".into(),
        }
    }
}

/// A model file: one or more models (an NMR or conformational ensemble), each a list of atoms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AtomicModel {
    /// The models, in file order.
    pub models: Vec<Vec<Atom>>,
}

impl AtomicModel {
    /// The first model's atoms.
    pub fn atoms(&self) -> &[Atom] {
        self.models.first().map_or(&[], Vec::as_slice)
    }
}

/// Reads a PDB or mmCIF file (mmCIF by extension `.cif`/`.mmcif` or a leading `data_`).
pub fn read_atoms(path: impl AsRef<Path>) -> Result<AtomicModel> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(e, path))?;
    let text = String::from_utf8_lossy(&bytes);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let is_cif = ext == "cif" || ext == "mmcif" || text.trim_start().starts_with("data_");
    let model = if is_cif { parse_mmcif(&text) } else { parse_pdb(&text) };
    model.map_err(|e| e.with_path(path))
}

/// Writes models as a multi-model PDB file (MODEL/ENDMDL records), atomically.
pub fn write_pdb(path: impl AsRef<Path>, models: &[Vec<Atom>]) -> Result<()> {
    crate::io::atomic::write_atomic(path, format_pdb(models).as_bytes())
}

/// Writes points as a PDB point cloud of pseudo-atoms, with optional per-point B-factors.
///
/// # Panics
/// If `b_factors` is given with a length other than `points.len()`.
pub fn write_point_cloud(
    path: impl AsRef<Path>,
    points: &[[f64; 3]],
    b_factors: Option<&[f64]>,
) -> Result<()> {
    if let Some(b) = b_factors {
        assert_eq!(b.len(), points.len(), "one B-factor per point");
    }
    let atoms: Vec<Atom> = points
        .iter()
        .enumerate()
        .map(|(i, &p)| Atom::pseudo(i as i64 + 1, p, b_factors.map_or(0.0, |b| b[i])))
        .collect();
    write_pdb(path, &[atoms])
}
