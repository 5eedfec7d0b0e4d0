//! Writing MRC maps and streaming image stacks, atomically, with correct header statistics.

use std::path::Path;

use super::header::{Mode, MrcHeader, Stats};
use crate::array::{ImageStack, Volume};
use crate::error::{Error, Result};
use crate::io::atomic::AtomicFile;

/// Writes `volume` as a map (space group 1) with voxel size and origin in Å.
///
/// Values are stored in `mode` (float32 or float16 for densities; integer modes round and
/// saturate). The file appears only once complete.
pub fn write_volume(
    path: impl AsRef<Path>,
    volume: &Volume,
    voxel_size: f32,
    origin: [f32; 3],
    mode: Mode,
) -> Result<()> {
    let mut header = MrcHeader::new(volume.shape, mode, [voxel_size; 3], origin);
    let mut stats = Stats::default();
    stats.add(&encoded_values(mode, &volume.data));
    header.set_stats(&stats);
    let mut file = AtomicFile::create(path)?;
    file.write_all(&header.to_bytes())?;
    let mut bytes = Vec::new();
    encode(mode, &volume.data, &mut bytes);
    file.write_all(&bytes)?;
    file.commit()
}

/// Writes `stack` as an image stack (.mrcs) with the given pixel size in Å.
pub fn write_stack(path: impl AsRef<Path>, stack: &ImageStack, pixel_size: f32, mode: Mode) -> Result<()> {
    let mut writer = MrcStackWriter::create(path, stack.shape, pixel_size, mode)?;
    for k in 0..stack.count {
        writer.push(stack.image(k))?;
    }
    writer.finish()
}

/// Writes a stack image by image, so that a stack never needs to be in memory whole.
pub struct MrcStackWriter {
    file: AtomicFile,
    header: MrcHeader,
    stats: Stats,
    bytes: Vec<u8>,
    count: usize,
}

impl MrcStackWriter {
    /// Starts a stack of images of size (nx, ny).
    pub fn create(path: impl AsRef<Path>, shape: [usize; 2], pixel_size: f32, mode: Mode) -> Result<Self> {
        let mut header = MrcHeader::new([shape[0], shape[1], 0], mode, [pixel_size; 3], [0.0; 3]);
        header.ispg = 0;
        let mut file = AtomicFile::create(path)?;
        file.write_all(&header.to_bytes())?;
        Ok(MrcStackWriter { file, header, stats: Stats::default(), bytes: Vec::new(), count: 0 })
    }

    /// Appends one image (nx·ny values, x fastest).
    pub fn push(&mut self, image: &[f32]) -> Result<()> {
        let [nx, ny, _] = self.header.dims;
        if image.len() != nx * ny {
            return Err(Error::mismatch(format!(
                "image {} has {} pixels, the stack's images have {nx}×{ny}",
                self.count + 1,
                image.len()
            ))
            .with_path(self.file.path()));
        }
        encode(self.header.mode, image, &mut self.bytes);
        self.stats.add(&encoded_values(self.header.mode, image));
        self.file.write_all(&self.bytes)?;
        self.count += 1;
        Ok(())
    }

    /// Number of images written so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Writes the final header (image count, statistics) and renames the file into place.
    pub fn finish(mut self) -> Result<()> {
        if self.count == 0 {
            return Err(Error::invalid("an MRC stack needs at least one image").with_path(self.file.path()));
        }
        self.header.dims[2] = self.count;
        self.header.sampling[2] = 1;
        self.header.cell[2] = self.header.cell[0] / self.header.dims[0] as f32;
        self.header.set_stats(&self.stats);
        self.file.seek_to(0)?;
        self.file.write_all(&self.header.to_bytes())?;
        self.file.commit()
    }
}

/// The values as they will read back in `mode` (integer modes round and saturate).
fn encoded_values(mode: Mode, values: &[f32]) -> std::borrow::Cow<'_, [f32]> {
    match mode {
        Mode::Float32 => values.into(),
        Mode::Float16 => values.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect(),
        Mode::Int8 => values.iter().map(|&v| v.round().clamp(-128.0, 127.0)).collect(),
        Mode::Int16 => values.iter().map(|&v| v.round().clamp(-32768.0, 32767.0)).collect(),
        Mode::Uint16 => values.iter().map(|&v| v.round().clamp(0.0, 65535.0)).collect(),
    }
}

/// Converts f32 values into little-endian bytes of `mode`, replacing `out`.
fn encode(mode: Mode, values: &[f32], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(values.len() * mode.bytes());
    match mode {
        Mode::Float32 => values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        Mode::Float16 => {
            values.iter().for_each(|&v| out.extend_from_slice(&half::f16::from_f32(v).to_le_bytes()))
        }
        // `as` casts from f32 saturate
        Mode::Int8 => values.iter().for_each(|&v| out.push(v.round() as i8 as u8)),
        Mode::Int16 => values.iter().for_each(|&v| out.extend_from_slice(&(v.round() as i16).to_le_bytes())),
        Mode::Uint16 => values.iter().for_each(|&v| out.extend_from_slice(&(v.round() as u16).to_le_bytes())),
    }
}
