//! The particle table: every particle's image, pose, CTF and optics group, in RELION's terms.
//!
//! Angles are RELION's ZYZ Euler angles in degrees; origins are in Å (the particle sits at the
//! image centre minus the origin); defoci in Å (positive = underfocus); 1-based `index@path`
//! image names become a 0-based index and the path as written in the file.

use std::path::PathBuf;

/// Optical settings shared by a group of particles.
#[derive(Clone, Debug, PartialEq)]
pub struct OpticsGroup {
    /// rlnOpticsGroup number.
    pub number: i32,
    /// rlnOpticsGroupName.
    pub name: String,
    /// Pixel size of the particle images in Å.
    pub pixel_size: f64,
    /// Box size in pixels, where the file states it.
    pub image_size: Option<usize>,
    /// Acceleration voltage in kV.
    pub voltage_kv: f64,
    /// Spherical aberration in mm.
    pub spherical_aberration_mm: f64,
    /// Amplitude contrast (fraction).
    pub amplitude_contrast: f64,
    /// Whether the images were already multiplied by their CTF.
    pub ctf_premultiplied: bool,
}

/// Where a particle's image is: 0-based index in a stack file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// 0-based image index in the stack.
    pub index: usize,
    /// Stack path as written in the metadata (relative to the project directory, usually).
    pub path: String,
}

impl ImageRef {
    /// Parses RELION's `index@path` (1-based index); a bare path is image 1 of that file.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name.split_once('@') {
            Some((index, path)) => {
                let index: usize = index
                    .trim()
                    .parse()
                    .map_err(|_| format!("'{index}' before '@' in '{name}' is not an image number"))?;
                if index == 0 {
                    return Err(format!("image numbers start at 1, found 0 in '{name}'"));
                }
                if path.is_empty() {
                    return Err(format!("no stack path after '@' in '{name}'"));
                }
                Ok(ImageRef { index: index - 1, path: path.to_string() })
            }
            None if !name.is_empty() => Ok(ImageRef { index: 0, path: name.to_string() }),
            None => Err("empty image name".to_string()),
        }
    }

    /// RELION's `index@path` form (6-digit, 1-based index).
    pub fn to_relion(&self) -> String {
        format!("{:06}@{}", self.index + 1, self.path)
    }
}

/// A particle's CTF parameters that vary per particle (the rest are in its optics group).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParticleCtf {
    /// Defocus along the major axis in Å (positive = underfocus).
    pub defocus_u_angstrom: f64,
    /// Defocus along the minor axis in Å.
    pub defocus_v_angstrom: f64,
    /// Astigmatism angle in degrees.
    pub defocus_angle_deg: f64,
    /// Additional phase shift (phase plate) in degrees.
    pub phase_shift_deg: f64,
    /// CTF B-factor in Å².
    pub bfactor: f64,
    /// CTF scale factor.
    pub scale: f64,
}

impl Default for ParticleCtf {
    fn default() -> Self {
        ParticleCtf {
            defocus_u_angstrom: 0.0,
            defocus_v_angstrom: 0.0,
            defocus_angle_deg: 0.0,
            phase_shift_deg: 0.0,
            bfactor: 0.0,
            scale: 1.0,
        }
    }
}

/// One particle.
#[derive(Clone, Debug, PartialEq)]
pub struct Particle {
    /// Its image.
    pub image: ImageRef,
    /// Euler angles rot, tilt, psi in degrees (zero where the file has no poses).
    pub euler_deg: [f64; 3],
    /// Origin (x, y) in Å.
    pub origin_angstrom: [f64; 2],
    /// Per-particle CTF parameters.
    pub ctf: ParticleCtf,
    /// Index into [`ParticleTable::optics_groups`].
    pub optics_group: usize,
    /// Half set (1 or 2), if assigned.
    pub random_subset: Option<u8>,
}

/// A number read off a particle (for tables of columns and summaries).
pub type ParticleValue = fn(&Particle) -> f64;

/// Where a table came from, kept to write subsets back with every original field.
#[derive(Clone, Debug)]
pub enum TableSource {
    /// A RELION STAR file: the parsed file and the name of the particles block.
    Star {
        /// The file as read.
        file: crate::io::star::StarFile,
        /// Name of the block holding the particles.
        particles_block: String,
        /// RELION 3.0 layout (no optics block, origins in pixels).
        relion30: bool,
    },
    /// A cryoSPARC `.cs` file, as read.
    Cs(crate::io::npy::NpyArray),
}

/// Particles with their optics groups. Particle `i` is row `i` of the source table.
#[derive(Clone, Debug)]
pub struct ParticleTable {
    /// Optics groups.
    pub optics_groups: Vec<OpticsGroup>,
    /// Particles, in file order.
    pub particles: Vec<Particle>,
    /// Whether the file had poses (Euler angles).
    pub has_poses: bool,
    /// Whether the file had per-particle CTF (defocus).
    pub has_ctf: bool,
    /// The file it was read from.
    pub path: PathBuf,
    /// The original table, for writing every other column back.
    pub source: TableSource,
}

impl ParticleTable {
    /// Number of particles.
    pub fn len(&self) -> usize {
        self.particles.len()
    }

    /// Whether there are no particles.
    pub fn is_empty(&self) -> bool {
        self.particles.is_empty()
    }

    /// The optics group of particle `i`.
    pub fn optics_of(&self, i: usize) -> &OpticsGroup {
        &self.optics_groups[self.particles[i].optics_group]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_parse_one_based() {
        let r = ImageRef::parse("000012@Extract/job012/a.mrcs").unwrap();
        assert_eq!((r.index, r.path.as_str()), (11, "Extract/job012/a.mrcs"));
        assert_eq!(r.to_relion(), "000012@Extract/job012/a.mrcs");
        assert_eq!(ImageRef::parse("a.mrc").unwrap().index, 0);
        assert!(ImageRef::parse("0@a.mrcs").is_err());
        assert!(ImageRef::parse("x@a.mrcs").is_err());
        assert!(ImageRef::parse("3@").is_err());
    }
}
