//! Particle images on disk: stack paths resolved against the project directory, opened once,
//! checked against the table, and read one image at a time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::mrc::MrcReader;
use crate::particles::ParticleTable;

/// Where to look for the image stacks a particle table names.
#[derive(Clone, Debug, Default)]
pub struct ImagePaths {
    /// Resolve relative paths against this directory only (RELION's project directory).
    pub project_dir: Option<PathBuf>,
    /// Replace a stack path as written in the metadata by another (for files moved since).
    pub remap: Vec<(String, PathBuf)>,
}

impl ImagePaths {
    /// Candidate locations for `stack`, in the order they are tried: the project directory if
    /// given; otherwise the table's directory and then each of its parents (RELION runs from the
    /// project root, so paths in `Refine3D/job010/run_data.star` are relative to two levels up).
    pub fn candidates(&self, table_path: &Path, stack: &str) -> Vec<PathBuf> {
        if let Some((_, to)) = self.remap.iter().find(|(from, _)| from == stack) {
            return vec![to.clone()];
        }
        let stack_path = Path::new(stack);
        if stack_path.is_absolute() {
            return vec![stack_path.to_path_buf()];
        }
        if let Some(dir) = &self.project_dir {
            return vec![dir.join(stack_path)];
        }
        let table_dir = table_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let table_dir = table_dir.canonicalize().unwrap_or_else(|_| table_dir.to_path_buf());
        table_dir.ancestors().map(|dir| dir.join(stack_path)).collect()
    }

    /// The first candidate that exists.
    pub fn resolve(&self, table_path: &Path, stack: &str) -> std::result::Result<PathBuf, Vec<PathBuf>> {
        let candidates = self.candidates(table_path, stack);
        candidates.iter().find(|p| p.is_file()).cloned().ok_or(candidates)
    }
}

/// Open stacks for every particle of a table, checked once: every stack exists, every index is
/// in range, and every image has its optics group's box size.
pub struct ParticleImages {
    readers: Vec<MrcReader>,
    /// For each particle: (reader, index in that stack).
    location: Vec<(usize, usize)>,
    shape: [usize; 2],
}

impl ParticleImages {
    /// Opens every stack the table names.
    ///
    /// # Errors
    /// A missing stack names the table row and every path tried; an index beyond a stack or a
    /// box size unlike the others names the row and the stack.
    pub fn open(table: &ParticleTable, paths: &ImagePaths) -> Result<Self> {
        let mut readers: Vec<MrcReader> = Vec::new();
        let mut by_name: HashMap<&str, usize> = HashMap::new();
        let mut location = Vec::with_capacity(table.len());
        let mut shape: Option<([usize; 2], usize)> = None;
        for (row, p) in table.particles.iter().enumerate() {
            let at = |e: Error| e.at_row(row + 1).with_path(&table.path);
            let reader = match by_name.get(p.image.path.as_str()) {
                Some(&r) => r,
                None => {
                    let resolved = paths.resolve(&table.path, &p.image.path).map_err(|tried| {
                        let tried: Vec<String> = tried.iter().map(|t| t.display().to_string()).collect();
                        at(Error::missing(format!(
                            "image stack '{}' not found; tried: {}",
                            p.image.path,
                            tried.join(", ")
                        ))
                        .in_field("image"))
                    })?;
                    let reader = MrcReader::open(&resolved).map_err(|e| {
                        at(Error::new(e.kind(), format!("image stack '{}': {e}", p.image.path)))
                    })?;
                    readers.push(reader);
                    by_name.insert(p.image.path.as_str(), readers.len() - 1);
                    readers.len() - 1
                }
            };
            let r = &readers[reader];
            if p.image.index >= r.image_count() {
                return Err(at(Error::invalid(format!(
                    "image {} of {} requested, but the stack holds {} images",
                    p.image.index + 1,
                    r.path().display(),
                    r.image_count()
                ))
                .in_field("image")));
            }
            let this = r.image_shape();
            match shape {
                None => shape = Some((this, row)),
                Some((first, first_row)) if first != this => {
                    return Err(at(Error::mismatch(format!(
                        "mixed box sizes: {} has {}×{} images but row {} has {}×{}",
                        r.path().display(),
                        this[0],
                        this[1],
                        first_row + 1,
                        first[0],
                        first[1]
                    ))));
                }
                _ => {}
            }
            if let Some(size) = table.optics_of(row).image_size {
                if this != [size, size] {
                    return Err(at(Error::mismatch(format!(
                        "{} has {}×{} images but optics group {} says the box is {size}",
                        r.path().display(),
                        this[0],
                        this[1],
                        table.optics_of(row).number
                    ))));
                }
            }
            location.push((reader, p.image.index));
        }
        let shape = shape.map_or([0, 0], |(s, _)| s);
        Ok(ParticleImages { readers, location, shape })
    }

    /// Image size (nx, ny).
    pub fn shape(&self) -> [usize; 2] {
        self.shape
    }

    /// Number of particles.
    pub fn len(&self) -> usize {
        self.location.len()
    }

    /// Whether there are no particles.
    pub fn is_empty(&self) -> bool {
        self.location.is_empty()
    }

    /// Reads particle `i`'s image into `out`, using `scratch` for the raw bytes.
    pub fn read(&self, i: usize, out: &mut [f32], scratch: &mut Vec<u8>) -> Result<()> {
        let (reader, index) = self.location[i];
        self.readers[reader].read_image_with_scratch(index, out, scratch)
    }
}
