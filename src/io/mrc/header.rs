//! The 1024-byte MRC2014 header: fields, modes, byte order, axis order, pixel size.

use crate::error::{Error, Result};

/// Size of the main header in bytes.
pub const HEADER_BYTES: usize = 1024;

/// The number format of the data block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Mode 0: signed 8-bit integers.
    Int8,
    /// Mode 1: signed 16-bit integers.
    Int16,
    /// Mode 2: 32-bit floats.
    Float32,
    /// Mode 6: unsigned 16-bit integers.
    Uint16,
    /// Mode 12: 16-bit IEEE floats.
    Float16,
}

impl Mode {
    /// The mode for an MRC mode number.
    ///
    /// # Errors
    /// Modes 3, 4 (complex), 101 (4-bit) and unknown numbers are [`crate::ErrorKind::Unsupported`].
    pub fn from_number(mode: i32) -> Result<Self> {
        Ok(match mode {
            0 => Mode::Int8,
            1 => Mode::Int16,
            2 => Mode::Float32,
            6 => Mode::Uint16,
            12 => Mode::Float16,
            3 | 4 => {
                return Err(Error::unsupported(format!(
                    "MRC mode {mode} (complex data) is not supported; modes 0, 1, 2, 6 and 12 are"
                )));
            }
            _ => {
                return Err(Error::unsupported(format!(
                    "unknown MRC mode {mode}; modes 0, 1, 2, 6 and 12 are supported"
                )));
            }
        })
    }

    /// The MRC mode number.
    pub fn number(self) -> i32 {
        match self {
            Mode::Int8 => 0,
            Mode::Int16 => 1,
            Mode::Float32 => 2,
            Mode::Uint16 => 6,
            Mode::Float16 => 12,
        }
    }

    /// Bytes per value.
    pub fn bytes(self) -> usize {
        match self {
            Mode::Int8 => 1,
            Mode::Int16 | Mode::Uint16 | Mode::Float16 => 2,
            Mode::Float32 => 4,
        }
    }

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Int8 => "int8",
            Mode::Int16 => "int16",
            Mode::Float32 => "float32",
            Mode::Uint16 => "uint16",
            Mode::Float16 => "float16",
        }
    }
}

/// The MRC2014 main header, with values in file order (columns, rows, sections).
#[derive(Clone, Debug, PartialEq)]
pub struct MrcHeader {
    /// Columns, rows, sections (nx, ny, nz).
    pub dims: [usize; 3],
    /// Data format.
    pub mode: Mode,
    /// nxstart, nystart, nzstart: first column, row, section of the map, in voxels.
    pub start: [i32; 3],
    /// mx, my, mz: sampling intervals along X, Y, Z.
    pub sampling: [i32; 3],
    /// Cell edge lengths along X, Y, Z in Å.
    pub cell: [f32; 3],
    /// Cell angles in degrees.
    pub cell_angles: [f32; 3],
    /// mapc, mapr, maps: which axis (1 = X, 2 = Y, 3 = Z) columns, rows and sections run along.
    pub axis_order: [u8; 3],
    /// Minimum, maximum and mean density.
    pub dmin: f32,
    /// Maximum density.
    pub dmax: f32,
    /// Mean density.
    pub dmean: f32,
    /// Space group (0: image or image stack, 1: volume, 401: volume stack).
    pub ispg: i32,
    /// Bytes of extended header after the main header.
    pub nsymbt: usize,
    /// Extended header type (e.g. "FEI1", "CCP4").
    pub exttyp: [u8; 4],
    /// MRC format version (20140 or 20141).
    pub nversion: i32,
    /// Origin of the map along X, Y, Z in Å.
    pub origin: [f32; 3],
    /// Whether the file is big-endian.
    pub big_endian: bool,
    /// RMS deviation of densities from the mean.
    pub rms: f32,
    /// Text labels.
    pub labels: Vec<String>,
}

impl MrcHeader {
    /// A header for data of `dims` (x, y, z), x fastest, voxel size and origin in Å.
    pub fn new(dims: [usize; 3], mode: Mode, voxel_size: [f32; 3], origin: [f32; 3]) -> Self {
        let sampling = dims.map(|n| n as i32);
        MrcHeader {
            dims,
            mode,
            start: [0; 3],
            sampling,
            cell: [0, 1, 2].map(|i| voxel_size[i] * dims[i] as f32),
            cell_angles: [90.0; 3],
            axis_order: [1, 2, 3],
            dmin: 0.0,
            dmax: 0.0,
            dmean: 0.0,
            ispg: 1,
            nsymbt: 0,
            exttyp: [0; 4],
            nversion: 20141,
            origin,
            big_endian: false,
            rms: 0.0,
            labels: vec!["cryomotion".to_string()],
        }
    }

    /// Parses a header; the error names the header field that is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < HEADER_BYTES {
            return Err(Error::format(format!(
                "file is too short for an MRC header: {} of 1024 bytes",
                bytes.len()
            )));
        }
        let big_endian = detect_big_endian(bytes);
        let word = |i: usize| -> [u8; 4] {
            let w: [u8; 4] = bytes[4 * i..4 * i + 4].try_into().unwrap();
            w
        };
        let int = |i: usize| {
            if big_endian { i32::from_be_bytes(word(i)) } else { i32::from_le_bytes(word(i)) }
        };
        let float = |i: usize| f32::from_bits(int(i) as u32);

        let mut dims = [0usize; 3];
        for (k, name) in ["nx", "ny", "nz"].iter().enumerate() {
            let n = int(k);
            if n <= 0 {
                return Err(Error::format(format!("{name} must be positive, found {n}")).in_field(*name));
            }
            dims[k] = n as usize;
        }
        let mode = Mode::from_number(int(3)).map_err(|e| e.in_field("mode"))?;
        let axis_order = [int(16), int(17), int(18)];
        let axis_order = parse_axis_order(axis_order)?;
        let nsymbt = int(23);
        if nsymbt < 0 {
            return Err(Error::format(format!("negative extended header size {nsymbt}")).in_field("nsymbt"));
        }
        let labels_count = int(55).clamp(0, 10) as usize;
        let labels = (0..labels_count)
            .map(|k| {
                let raw = &bytes[224 + 80 * k..224 + 80 * (k + 1)];
                String::from_utf8_lossy(raw).trim_end_matches(['\0', ' ']).to_string()
            })
            .collect();
        Ok(MrcHeader {
            dims,
            mode,
            start: [int(4), int(5), int(6)],
            sampling: [int(7), int(8), int(9)],
            cell: [float(10), float(11), float(12)],
            cell_angles: [float(13), float(14), float(15)],
            axis_order,
            dmin: float(19),
            dmax: float(20),
            dmean: float(21),
            ispg: int(22),
            nsymbt: nsymbt as usize,
            exttyp: word(26),
            nversion: int(27),
            origin: [float(49), float(50), float(51)],
            big_endian,
            rms: float(54),
            labels,
        })
    }

    /// The header as 1024 little-endian bytes, with the 'MAP ' tag and machine stamp.
    pub fn to_bytes(&self) -> [u8; HEADER_BYTES] {
        let mut b = [0u8; HEADER_BYTES];
        let mut put = |i: usize, v: [u8; 4]| b[4 * i..4 * i + 4].copy_from_slice(&v);
        for k in 0..3 {
            put(k, (self.dims[k] as i32).to_le_bytes());
            put(4 + k, self.start[k].to_le_bytes());
            put(7 + k, self.sampling[k].to_le_bytes());
            put(10 + k, self.cell[k].to_le_bytes());
            put(13 + k, self.cell_angles[k].to_le_bytes());
            put(16 + k, (self.axis_order[k] as i32).to_le_bytes());
            put(49 + k, self.origin[k].to_le_bytes());
        }
        put(3, self.mode.number().to_le_bytes());
        put(19, self.dmin.to_le_bytes());
        put(20, self.dmax.to_le_bytes());
        put(21, self.dmean.to_le_bytes());
        put(22, self.ispg.to_le_bytes());
        put(23, (self.nsymbt as i32).to_le_bytes());
        put(26, self.exttyp);
        put(27, self.nversion.to_le_bytes());
        put(52, *b"MAP ");
        put(53, [0x44, 0x44, 0, 0]);
        put(54, self.rms.to_le_bytes());
        let labels = &self.labels[..self.labels.len().min(10)];
        put(55, (labels.len() as i32).to_le_bytes());
        for (k, label) in labels.iter().enumerate() {
            let text = label.as_bytes();
            let n = text.len().min(80);
            b[224 + 80 * k..224 + 80 * k + n].copy_from_slice(&text[..n]);
        }
        b
    }

    /// Byte offset of the data block.
    pub fn data_offset(&self) -> u64 {
        (HEADER_BYTES + self.nsymbt) as u64
    }

    /// Bytes of the data block (saturating: absurd dimensions never wrap to a small size).
    pub fn data_bytes(&self) -> u64 {
        self.dims.iter().fold(self.mode.bytes() as u64, |acc, &n| acc.saturating_mul(n as u64))
    }

    /// Dimensions along X, Y, Z after the axis permutation.
    pub fn dims_xyz(&self) -> [usize; 3] {
        let mut xyz = [0; 3];
        for k in 0..3 {
            xyz[self.axis_order[k] as usize - 1] = self.dims[k];
        }
        xyz
    }

    /// Voxel size along X, Y, Z in Å: cell length over sampling (1 Å where unset).
    pub fn voxel_size(&self) -> [f32; 3] {
        let dims = self.dims_xyz();
        [0, 1, 2].map(|k| {
            let m = if self.sampling[k] > 0 { self.sampling[k] as f32 } else { dims[k] as f32 };
            let size = self.cell[k] / m;
            if size.is_finite() && size > 0.0 { size } else { 1.0 }
        })
    }

    /// Whether the voxel size was set in the header (cell lengths non-zero).
    pub fn has_voxel_size(&self) -> bool {
        self.cell.iter().all(|&c| c.is_finite() && c > 0.0)
    }

    /// Whether the header marks an image stack: space group 0 with one section per image
    /// (mz ≤ 1). RELION writes stacks with space group 1, so callers also look at the extension.
    pub fn is_stack(&self) -> bool {
        self.ispg == 0 && self.sampling[2] <= 1
    }

    /// Writes density statistics (min, max, mean, RMS deviation) from `data`.
    pub fn set_stats(&mut self, stats: &Stats) {
        self.dmin = stats.min as f32;
        self.dmax = stats.max as f32;
        self.dmean = stats.mean() as f32;
        self.rms = stats.rms_deviation() as f32;
    }
}

/// Running min, max, mean and RMS deviation, accumulated in f64.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
    sum: f64,
    sum_sq: f64,
    count: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats { min: f64::INFINITY, max: f64::NEG_INFINITY, sum: 0.0, sum_sq: 0.0, count: 0 }
    }
}

impl Stats {
    /// Adds values.
    pub fn add(&mut self, values: &[f32]) {
        let (mut sum, mut sum_sq) = (0.0f64, 0.0f64);
        for &v in values {
            let v = v as f64;
            self.min = self.min.min(v);
            self.max = self.max.max(v);
            sum += v;
            sum_sq += v * v;
        }
        self.sum += sum;
        self.sum_sq += sum_sq;
        self.count += values.len() as u64;
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum / self.count as f64 }
    }

    /// RMS deviation from the mean.
    pub fn rms_deviation(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let mean = self.mean();
        (self.sum_sq / self.count as f64 - mean * mean).max(0.0).sqrt()
    }
}

fn parse_axis_order(raw: [i32; 3]) -> Result<[u8; 3]> {
    if raw == [0, 0, 0] {
        return Ok([1, 2, 3]); // some writers leave the fields unset
    }
    let mut sorted = raw;
    sorted.sort();
    if sorted != [1, 2, 3] {
        return Err(Error::format(format!("mapc/mapr/maps = {:?} is not a permutation of 1, 2, 3", raw))
            .in_field("mapc/mapr/maps"));
    }
    Ok(raw.map(|v| v as u8))
}

/// Byte order from the machine stamp (word 54); where the stamp is missing or odd, the order in
/// which the mode word is a small number.
fn detect_big_endian(bytes: &[u8]) -> bool {
    match bytes[212] {
        0x44 => return false,
        0x11 => return true,
        _ => {}
    }
    let mode_le = i32::from_le_bytes(bytes[12..16].try_into().unwrap());
    let mode_be = i32::from_be_bytes(bytes[12..16].try_into().unwrap());
    !(0..=255).contains(&mode_le) && (0..=255).contains(&mode_be)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_through_bytes() {
        let mut h = MrcHeader::new([10, 20, 30], Mode::Float16, [1.5, 1.5, 2.0], [3.0, -4.0, 5.0]);
        h.labels.push("second".into());
        let back = MrcHeader::parse(&h.to_bytes()).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.voxel_size(), [1.5, 1.5, 2.0]);
        assert_eq!(&h.to_bytes()[208..212], b"MAP ");
    }

    #[test]
    fn big_endian_header_is_read_from_machine_stamp() {
        let h = MrcHeader::new([7, 5, 3], Mode::Int16, [2.0; 3], [0.0; 3]);
        let le = h.to_bytes();
        let mut be = le;
        for w in 0..56 {
            if w == 52 || w == 26 {
                continue; // character fields keep their order
            }
            be[4 * w..4 * w + 4].reverse();
        }
        be[212..216].copy_from_slice(&[0x11, 0x11, 0, 0]);
        let back = MrcHeader::parse(&be).unwrap();
        assert!(back.big_endian);
        assert_eq!(back.dims, [7, 5, 3]);
        assert_eq!(back.mode, Mode::Int16);
        assert_eq!(back.voxel_size(), [2.0; 3]);
    }

    #[test]
    fn bad_fields_are_named() {
        let mut b = MrcHeader::new([4, 4, 4], Mode::Float32, [1.0; 3], [0.0; 3]).to_bytes();
        b[12..16].copy_from_slice(&101i32.to_le_bytes());
        let e = MrcHeader::parse(&b).unwrap_err();
        assert_eq!(e.field(), Some("mode"));
        assert!(e.to_string().contains("101"));

        let mut b = MrcHeader::new([4, 4, 4], Mode::Float32, [1.0; 3], [0.0; 3]).to_bytes();
        b[64..68].copy_from_slice(&2i32.to_le_bytes());
        assert_eq!(MrcHeader::parse(&b).unwrap_err().field(), Some("mapc/mapr/maps"));

        let e = MrcHeader::parse(&[0u8; 100]).unwrap_err();
        assert!(e.to_string().contains("100 of 1024"));
    }

    #[test]
    fn stats_match_direct_formula() {
        let v = [1.0f32, 2.0, 3.0, 6.0];
        let mut s = Stats::default();
        s.add(&v[..2]);
        s.add(&v[2..]);
        assert_eq!((s.min, s.max, s.mean()), (1.0, 6.0, 3.0));
        let var = v.iter().map(|x| (*x as f64 - 3.0).powi(2)).sum::<f64>() / 4.0;
        assert!((s.rms_deviation() - var.sqrt()).abs() < 1e-12);
    }
}
