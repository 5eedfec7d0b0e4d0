//! MRC2014 maps and image stacks (.mrc, .mrcs, .map).
//!
//! Conventions: data are returned x fastest ([z][y][x]) whatever the file's mapc/mapr/maps;
//! voxel size is cell length over sampling (Å); origin is the header's origin field (Å).
//! Writes are little-endian, carry the 'MAP ' tag, machine stamp, labels and true statistics,
//! and go through a temporary file renamed on completion.

mod header;
mod read;
mod write;

pub use header::{HEADER_BYTES, Mode, MrcHeader, Stats};
pub use read::MrcReader;
pub use write::{MrcStackWriter, write_stack, write_volume};

use std::path::Path;

use crate::array::Volume;
use crate::error::Result;

/// A map read from an MRC file: the volume (x fastest), voxel size and origin in Å, and header.
#[derive(Clone, Debug)]
pub struct Map {
    /// Densities, x fastest.
    pub volume: Volume,
    /// Voxel size along X, Y, Z in Å.
    pub voxel_size: [f32; 3],
    /// Origin along X, Y, Z in Å.
    pub origin: [f32; 3],
    /// The header as read.
    pub header: MrcHeader,
}

/// Reads a whole map.
pub fn read_map(path: impl AsRef<Path>) -> Result<Map> {
    let reader = MrcReader::open(path)?;
    let volume = reader.read_volume()?;
    let header = reader.header().clone();
    Ok(Map { volume, voxel_size: header.voxel_size(), origin: header.origin, header })
}
