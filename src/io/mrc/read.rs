//! Reading MRC maps and stacks: whole volumes, or single images by random access.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::header::{HEADER_BYTES, Mode, MrcHeader};
use crate::array::Volume;
use crate::error::{Error, Result};

/// An open MRC file: the header, and reads of any image without reading the rest.
///
/// Reads use positioned I/O (`pread`), so one reader can serve several threads, and memory stays
/// bounded by what is asked for, however large the stack.
#[derive(Debug)]
pub struct MrcReader {
    path: PathBuf,
    source: Source,
    header: MrcHeader,
}

/// Where the bytes are: a file read by position, or memory (maps embedded in the binary).
#[derive(Debug)]
enum Source {
    File(File),
    Memory(Vec<u8>),
}

impl Source {
    fn len(&self) -> std::io::Result<u64> {
        match self {
            Source::File(f) => Ok(f.metadata()?.len()),
            Source::Memory(b) => Ok(b.len() as u64),
        }
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        match self {
            Source::File(f) => read_at(f, buf, offset),
            Source::Memory(b) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                let src = start
                    .checked_add(buf.len())
                    .and_then(|end| b.get(start..end))
                    .ok_or(std::io::ErrorKind::UnexpectedEof)?;
                buf.copy_from_slice(src);
                Ok(())
            }
        }
    }
}

impl MrcReader {
    /// Opens `path`, parses the header and checks that the file holds all the data it announces.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(e, path))?;
        Self::from_source(Source::File(file), path)
    }

    /// Reads an MRC file held in memory; `name` is used in messages.
    pub fn from_bytes(bytes: Vec<u8>, name: impl AsRef<Path>) -> Result<Self> {
        Self::from_source(Source::Memory(bytes), name.as_ref())
    }

    fn from_source(source: Source, path: &Path) -> Result<Self> {
        let len = source.len().map_err(|e| Error::io(e, path))?;
        let mut bytes = vec![0u8; HEADER_BYTES.min(len as usize)];
        source.read_at(&mut bytes, 0).map_err(|e| Error::io(e, path))?;
        let header = MrcHeader::parse(&bytes).map_err(|e| e.with_path(path))?;
        let needed = header.data_offset().saturating_add(header.data_bytes());
        if len < needed {
            let [nx, ny, nz] = header.dims;
            return Err(Error::format(format!(
                "file is truncated: the header announces {nx}×{ny}×{nz} {} values ({} bytes after \
                 {} header bytes) but the file has {len} bytes",
                header.mode.name(),
                header.data_bytes(),
                header.data_offset()
            ))
            .with_path(path));
        }
        Ok(MrcReader { path: path.to_path_buf(), source, header })
    }

    /// The header.
    pub fn header(&self) -> &MrcHeader {
        &self.header
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of 2D sections, i.e. images of a stack.
    pub fn image_count(&self) -> usize {
        self.header.dims[2]
    }

    /// Size (nx, ny) of one image along X and Y.
    pub fn image_shape(&self) -> [usize; 2] {
        let [nc, nr, _] = self.header.dims;
        if self.header.axis_order[0] == 2 { [nr, nc] } else { [nc, nr] }
    }

    /// Reads image `index` (0-based) into `out` (nx·ny values, x fastest).
    ///
    /// # Panics
    /// If `out.len()` is not the number of pixels of an image.
    pub fn read_image(&self, index: usize, out: &mut [f32]) -> Result<()> {
        let mut scratch = Vec::new();
        self.read_image_with_scratch(index, out, &mut scratch)
    }

    /// [`MrcReader::read_image`] with a caller-owned byte buffer, for loops without allocation.
    pub fn read_image_with_scratch(
        &self,
        index: usize,
        out: &mut [f32],
        scratch: &mut Vec<u8>,
    ) -> Result<()> {
        let [nc, nr, ns] = self.header.dims;
        assert_eq!(out.len(), nc * nr, "image buffer length");
        if index >= ns {
            return Err(Error::invalid(format!(
                "image {} requested but the stack holds {ns} images (1-based index {} is beyond the end)",
                index,
                index + 1
            ))
            .with_path(&self.path));
        }
        if self.header.axis_order[2] != 3 {
            return Err(Error::unsupported(format!(
                "images cannot be read one by one from a file whose sections run along axis {} \
                 (mapc/mapr/maps = {:?}); read it as a volume",
                self.header.axis_order[2], self.header.axis_order
            ))
            .with_path(&self.path));
        }
        let bytes = nc * nr * self.header.mode.bytes();
        scratch.resize(bytes, 0);
        let offset = self.header.data_offset() + (index * bytes) as u64;
        self.source.read_at(scratch, offset).map_err(|e| Error::io(e, &self.path))?;
        if self.header.axis_order[0] == 2 {
            let mut tmp = vec![0.0f32; nc * nr];
            decode(self.header.mode, self.header.big_endian, scratch, &mut tmp);
            // file rows run along X: transpose into x fastest
            for r in 0..nr {
                for c in 0..nc {
                    out[c * nr + r] = tmp[r * nc + c];
                }
            }
        } else {
            decode(self.header.mode, self.header.big_endian, scratch, out);
        }
        Ok(())
    }

    /// Reads the whole data block as a volume with X fastest, whatever the file's axis order.
    pub fn read_volume(&self) -> Result<Volume> {
        let n = self.header.dims.iter().product::<usize>();
        let mut raw = vec![0u8; n * self.header.mode.bytes()];
        self.source.read_at(&mut raw, self.header.data_offset()).map_err(|e| Error::io(e, &self.path))?;
        let mut values = vec![0.0f32; n];
        decode(self.header.mode, self.header.big_endian, &raw, &mut values);
        drop(raw);
        Ok(permute_to_xyz(&self.header, values))
    }
}

/// Reorders data stored in the file's (column, row, section) order into x fastest.
fn permute_to_xyz(header: &MrcHeader, values: Vec<f32>) -> Volume {
    let shape = header.dims_xyz();
    if header.axis_order == [1, 2, 3] {
        return Volume::from_vec(shape, values);
    }
    let [nc, nr, ns] = header.dims;
    let mut strides = [0usize; 3]; // output stride of one step along column, row, section
    let xyz_strides = [1, shape[0], shape[0] * shape[1]];
    for k in 0..3 {
        strides[k] = xyz_strides[header.axis_order[k] as usize - 1];
    }
    let mut out = vec![0.0f32; values.len()];
    let mut i = 0;
    for s in 0..ns {
        for r in 0..nr {
            let base = s * strides[2] + r * strides[1];
            for c in 0..nc {
                out[base + c * strides[0]] = values[i];
                i += 1;
            }
        }
    }
    Volume::from_vec(shape, out)
}

/// Converts raw values of `mode` into f32.
fn decode(mode: Mode, big_endian: bool, bytes: &[u8], out: &mut [f32]) {
    debug_assert_eq!(bytes.len(), out.len() * mode.bytes());
    macro_rules! convert {
        ($t:ty, $n:expr, $f:expr) => {
            for (o, chunk) in out.iter_mut().zip(bytes.chunks_exact($n)) {
                let raw: [u8; $n] = chunk.try_into().unwrap();
                let v = if big_endian { <$t>::from_be_bytes(raw) } else { <$t>::from_le_bytes(raw) };
                *o = $f(v);
            }
        };
    }
    match mode {
        Mode::Int8 => {
            for (o, &b) in out.iter_mut().zip(bytes) {
                *o = b as i8 as f32;
            }
        }
        Mode::Int16 => convert!(i16, 2, |v: i16| v as f32),
        Mode::Uint16 => convert!(u16, 2, |v: u16| v as f32),
        Mode::Float32 => convert!(f32, 4, |v: f32| v),
        Mode::Float16 => convert!(u16, 2, |v: u16| half::f16::from_bits(v).to_f32()),
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}
