//! cryoSPARC particle files (.cs) ↔ the typed particle table.
//!
//! Conversion: the RELION matrix is the transpose of the Rodrigues matrix of
//! `alignments3D/pose` (axis–angle, radians); `alignments3D/shift` (pixels) keeps rlnOrigin's
//! sign, so origin in Å = shift × `blob/psize_A`; `blob/idx` is already 0-based.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::geometry::{
    axis_angle_to_matrix, euler_to_matrix, matrix_to_axis_angle, matrix_to_euler, transpose,
};
use crate::io::npy::NpyArray;
use crate::particles::{ImageRef, OpticsGroup, Particle, ParticleCtf, ParticleTable, TableSource};

const POSE: &str = "alignments3D/pose";
const SHIFT: &str = "alignments3D/shift";

/// Reads a cryoSPARC `.cs` particle file.
pub fn read_particles_cs(path: impl AsRef<Path>) -> Result<ParticleTable> {
    let path = path.as_ref();
    let array = NpyArray::read(path)?;
    particles_from_cs(array, path).map_err(|e| e.with_path(path))
}

/// Converts a parsed `.cs` array into the typed table.
pub fn particles_from_cs(array: NpyArray, path: &Path) -> Result<ParticleTable> {
    for required in ["blob/path", "blob/idx", "blob/psize_A"] {
        if array.field(required).is_none() {
            return Err(Error::missing(format!("the .cs file has no '{required}' field")).in_field(required));
        }
    }
    let has_poses = array.field(POSE).is_some();
    let has_ctf = array.field("ctf/df1_A").is_some();
    let mut optics_groups: Vec<OpticsGroup> = Vec::new();
    let mut group_of: HashMap<[u64; 6], usize> = HashMap::new();
    let mut particles = Vec::with_capacity(array.len());
    for row in 0..array.len() {
        let (particle, optics) = particle_from_row(&array, row).map_err(|e| e.at_row(row + 1))?;
        let key = [
            optics.number as f64,
            optics.pixel_size,
            optics.voltage_kv,
            optics.spherical_aberration_mm,
            optics.amplitude_contrast,
            optics.image_size.unwrap_or(0) as f64,
        ]
        .map(f64::to_bits);
        let group = *group_of.entry(key).or_insert_with(|| {
            let number = optics_groups.len() as i32 + 1;
            optics_groups.push(OpticsGroup {
                number,
                name: format!("exp_group_{}", optics.number),
                ..optics
            });
            optics_groups.len() - 1
        });
        particles.push(Particle { optics_group: group, ..particle });
    }
    Ok(ParticleTable {
        optics_groups,
        particles,
        has_poses,
        has_ctf,
        path: path.to_path_buf(),
        source: TableSource::Cs(array),
    })
}

fn optional(array: &NpyArray, row: usize, name: &str, elem: usize, default: f64) -> Result<f64> {
    if array.field(name).is_some() { array.number(row, name, elem) } else { Ok(default) }
}

/// One record as a particle and its optics values (`number` = exposure group id).
fn particle_from_row(a: &NpyArray, row: usize) -> Result<(Particle, OpticsGroup)> {
    let raw_path = a.text(row, "blob/path")?;
    let path = raw_path.trim_start_matches('>').to_string();
    if path.is_empty() {
        return Err(Error::invalid("empty image path").in_field("blob/path"));
    }
    let index = a.number(row, "blob/idx", 0)? as usize;
    let pixel_size = a.number(row, "blob/psize_A", 0)?;
    if pixel_size.is_nan() || pixel_size <= 0.0 {
        return Err(Error::invalid(format!("pixel size must be positive, found {pixel_size}"))
            .in_field("blob/psize_A"));
    }
    let image_size = match a.field("blob/shape") {
        Some(_) => Some(a.number(row, "blob/shape", 0)? as usize),
        None => None,
    };
    let optics = OpticsGroup {
        number: optional(a, row, "ctf/exp_group_id", 0, 0.0)? as i32,
        name: String::new(),
        pixel_size,
        image_size,
        voltage_kv: optional(a, row, "ctf/accel_kv", 0, 300.0)?,
        spherical_aberration_mm: optional(a, row, "ctf/cs_mm", 0, 0.0)?,
        amplitude_contrast: optional(a, row, "ctf/amp_contrast", 0, 0.0)?,
        ctf_premultiplied: false,
    };
    let euler_deg = if a.field(POSE).is_some() {
        let mut v = [0.0; 3];
        for (k, c) in v.iter_mut().enumerate() {
            *c = a.number(row, POSE, k)?;
        }
        let (rot, tilt, psi) = matrix_to_euler(&transpose(&axis_angle_to_matrix(v)));
        [rot, tilt, psi]
    } else {
        [0.0; 3]
    };
    let origin_angstrom = if a.field(SHIFT).is_some() {
        [a.number(row, SHIFT, 0)? * pixel_size, a.number(row, SHIFT, 1)? * pixel_size]
    } else {
        [0.0; 2]
    };
    let defocus_u = optional(a, row, "ctf/df1_A", 0, 0.0)?;
    let ctf = ParticleCtf {
        defocus_u_angstrom: defocus_u,
        defocus_v_angstrom: optional(a, row, "ctf/df2_A", 0, defocus_u)?,
        defocus_angle_deg: optional(a, row, "ctf/df_angle_rad", 0, 0.0)?.to_degrees(),
        phase_shift_deg: optional(a, row, "ctf/phase_shift_rad", 0, 0.0)?.to_degrees(),
        bfactor: optional(a, row, "ctf/bfactor", 0, 0.0)?,
        scale: optional(a, row, "ctf/scale", 0, 1.0)?,
    };
    let random_subset = match a.field("alignments3D/split") {
        Some(_) => match a.number(row, "alignments3D/split", 0)? {
            s if s == 0.0 || s == 1.0 => Some(s as u8 + 1),
            s => {
                return Err(
                    Error::invalid(format!("split must be 0 or 1, found {s}")).in_field("alignments3D/split")
                );
            }
        },
        None => None,
    };
    let particle = Particle {
        image: ImageRef { index, path },
        euler_deg,
        origin_angstrom,
        ctf,
        optics_group: 0,
        random_subset,
    };
    Ok((particle, optics))
}

/// The particles `rows` (all when `None`) as a `.cs` array with every original field; poses,
/// shifts, CTF and split are rewritten where the table differs from the original record.
///
/// # Errors
/// Tables not read from a `.cs` file are [`crate::ErrorKind::Unsupported`].
pub fn particles_to_cs(table: &ParticleTable, rows: Option<&[usize]>) -> Result<NpyArray> {
    let TableSource::Cs(source) = &table.source else {
        return Err(Error::unsupported("a .cs file can only be written for particles read from a .cs file"));
    };
    let all: Vec<usize> = (0..table.len()).collect();
    let rows = rows.unwrap_or(&all);
    let mut out = source.select_rows(rows);
    for (new_row, &row) in rows.iter().enumerate() {
        let p = &table.particles[row];
        let (original, _) = particle_from_row(source, row)?;
        let psize = table.optics_of(row).pixel_size;
        if p.euler_deg != original.euler_deg && out.field(POSE).is_some() {
            let [rot, tilt, psi] = p.euler_deg;
            let v = matrix_to_axis_angle(&transpose(&euler_to_matrix(rot, tilt, psi)));
            for (k, c) in v.into_iter().enumerate() {
                out.set_number(new_row, POSE, k, c)?;
            }
        }
        if p.origin_angstrom != original.origin_angstrom && out.field(SHIFT).is_some() {
            for k in 0..2 {
                out.set_number(new_row, SHIFT, k, p.origin_angstrom[k] / psize)?;
            }
        }
        let ctf_fields: [(&str, f64, f64); 4] = [
            ("ctf/df1_A", p.ctf.defocus_u_angstrom, original.ctf.defocus_u_angstrom),
            ("ctf/df2_A", p.ctf.defocus_v_angstrom, original.ctf.defocus_v_angstrom),
            (
                "ctf/df_angle_rad",
                p.ctf.defocus_angle_deg.to_radians(),
                original.ctf.defocus_angle_deg.to_radians(),
            ),
            (
                "ctf/phase_shift_rad",
                p.ctf.phase_shift_deg.to_radians(),
                original.ctf.phase_shift_deg.to_radians(),
            ),
        ];
        for (name, new, old) in ctf_fields {
            if new != old && out.field(name).is_some() {
                out.set_number(new_row, name, 0, new)?;
            }
        }
        if let (Some(s), true) = (p.random_subset, p.random_subset != original.random_subset) {
            if out.field("alignments3D/split").is_some() {
                out.set_number(new_row, "alignments3D/split", 0, (s - 1) as f64)?;
            }
        }
    }
    Ok(out)
}

/// Writes the particles `rows` (all when `None`) as a `.cs` file, atomically.
pub fn write_particles_cs(
    path: impl AsRef<Path>,
    table: &ParticleTable,
    rows: Option<&[usize]>,
) -> Result<()> {
    crate::io::npy::write_npy(path, &particles_to_cs(table, rows)?)
}
