//! NumPy `.npy` arrays, plain or structured (the container of cryoSPARC `.cs` files).

use std::path::Path;

use crate::error::{Error, Result};

/// The scalar type of a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    /// Signed integer of 1, 2, 4 or 8 bytes.
    Int(usize),
    /// Unsigned integer of 1, 2, 4 or 8 bytes.
    UInt(usize),
    /// IEEE float of 2, 4 or 8 bytes.
    Float(usize),
    /// Boolean (1 byte).
    Bool,
    /// Fixed-length byte string (`S`), NUL-padded.
    Bytes(usize),
}

impl Scalar {
    /// NumPy's name of the type (e.g. "float32", "bytes[12]").
    pub fn name(self) -> String {
        match self {
            Scalar::Int(n) => format!("int{}", 8 * n),
            Scalar::UInt(n) => format!("uint{}", 8 * n),
            Scalar::Float(n) => format!("float{}", 8 * n),
            Scalar::Bool => "bool".into(),
            Scalar::Bytes(n) => format!("bytes[{n}]"),
        }
    }

    fn size(self) -> usize {
        match self {
            Scalar::Int(n) | Scalar::UInt(n) | Scalar::Float(n) | Scalar::Bytes(n) => n,
            Scalar::Bool => 1,
        }
    }

    fn code(self, big_endian: bool) -> String {
        let order = if big_endian { '>' } else { '<' };
        match self {
            Scalar::Int(n) => format!("{}i{n}", if n == 1 { '|' } else { order }),
            Scalar::UInt(n) => format!("{}u{n}", if n == 1 { '|' } else { order }),
            Scalar::Float(n) => format!("{order}f{n}"),
            Scalar::Bool => "|b1".into(),
            Scalar::Bytes(n) => format!("|S{n}"),
        }
    }
}

/// One field of a record: name, type, sub-array shape, byte offset in the record.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// Field name (empty for a plain array).
    pub name: String,
    /// Element type.
    pub scalar: Scalar,
    /// Whether multi-byte values are big-endian.
    pub big_endian: bool,
    /// Sub-array shape (empty for a scalar field).
    pub shape: Vec<usize>,
    /// Offset of the field within a record.
    pub offset: usize,
}

impl Field {
    /// Number of elements in the field (product of its sub-array shape).
    pub fn count(&self) -> usize {
        self.shape.iter().product()
    }

    fn bytes(&self) -> Option<usize> {
        self.shape.iter().try_fold(self.scalar.size(), |acc, &d| acc.checked_mul(d))
    }
}

/// A one-record-per-row array: for a structured array one row per element, for a plain array
/// one row per element with a single unnamed field.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// The fields of a record.
    pub fields: Vec<Field>,
    /// The array's shape as stored.
    pub shape: Vec<usize>,
    record_bytes: usize,
    data: Vec<u8>,
}

impl NpyArray {
    /// Reads a `.npy` file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(e, path))?;
        Self::parse(bytes).map_err(|e| e.with_path(path))
    }

    /// Parses `.npy` bytes.
    pub fn parse(mut bytes: Vec<u8>) -> Result<Self> {
        if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
            return Err(Error::format("not a NumPy .npy file (missing the \\x93NUMPY magic)"));
        }
        let (header_len, start): (usize, usize) = match bytes[6] {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
            2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, 12),
            v => return Err(Error::unsupported(format!("NumPy format version {v}"))),
        };
        let end = start
            .checked_add(header_len)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| Error::format("file is truncated inside the .npy header"))?;
        let header = std::str::from_utf8(&bytes[start..end])
            .map_err(|_| Error::format("the .npy header is not text"))?;
        let dict = literal::parse(header)?;
        let fortran = dict.get("fortran_order")?;
        if *fortran != literal::Value::Bool(false) {
            return Err(Error::unsupported("Fortran-ordered arrays").in_field("fortran_order"));
        }
        let shape = dict.get("shape")?.as_shape().map_err(|e| e.in_field("shape"))?;
        let descr = dict.get("descr")?;
        let (fields, record_bytes, rows) = match descr {
            literal::Value::Str(code) => {
                let (scalar, big_endian) = parse_code(code, "")?;
                let field = Field { name: String::new(), scalar, big_endian, shape: vec![1], offset: 0 };
                (vec![field], scalar.size(), shape.iter().product::<usize>())
            }
            literal::Value::List(items) => {
                let (fields, size) = parse_fields(items)?;
                (fields, size, shape.iter().product::<usize>())
            }
            _ => {
                return Err(
                    Error::format("descr is neither a type string nor a field list").in_field("descr")
                );
            }
        };
        let needed = rows
            .checked_mul(record_bytes)
            .ok_or_else(|| Error::format("array shape overflows").in_field("shape"))?;
        if bytes.len() - end < needed {
            return Err(Error::format(format!(
                "file is truncated: shape {shape:?} needs {needed} data bytes, the file has {}",
                bytes.len() - end
            )));
        }
        bytes.drain(..end);
        bytes.truncate(needed);
        Ok(NpyArray { fields, shape, record_bytes, data: bytes })
    }

    /// A plain array of type `code` (e.g. `<f4`) and `shape` over raw little- or big-endian data.
    pub fn plain(code: &str, shape: Vec<usize>, data: Vec<u8>) -> Result<Self> {
        let (scalar, big_endian) = parse_code(code, "")?;
        let n: usize = shape.iter().product();
        if data.len() != n * scalar.size() {
            return Err(Error::format(format!(
                "array of shape {shape:?} and type {code} needs {} bytes, found {}",
                n * scalar.size(),
                data.len()
            )));
        }
        let field = Field { name: String::new(), scalar, big_endian, shape: vec![1], offset: 0 };
        Ok(NpyArray { fields: vec![field], shape, record_bytes: scalar.size(), data })
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.record_bytes).unwrap_or(0)
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The field with this name.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    fn field_or_err(&self, name: &str) -> Result<&Field> {
        self.field(name).ok_or_else(|| Error::missing(format!("no field '{name}'")).in_field(name))
    }

    /// The field, checked to hold element `elem`.
    fn element(&self, name: &str, elem: usize) -> Result<&Field> {
        let field = self.field_or_err(name)?;
        if elem >= field.count() {
            let message = format!("field has {} elements, element {elem} was asked for", field.count());
            return Err(Error::format(message).in_field(name));
        }
        Ok(field)
    }

    /// Element `elem` of a numeric field at `row`, as f64.
    ///
    /// # Errors
    /// If the field is missing or holds strings.
    pub fn number(&self, row: usize, name: &str, elem: usize) -> Result<f64> {
        let field = self.element(name, elem)?;
        let size = field.scalar.size();
        let at = row * self.record_bytes + field.offset + elem * size;
        let raw = &self.data[at..at + size];
        let mut buf = [0u8; 8];
        buf[..size].copy_from_slice(raw);
        if field.big_endian {
            buf[..size].reverse();
        }
        let v = match field.scalar {
            Scalar::Float(2) => half::f16::from_bits(u16::from_le_bytes([buf[0], buf[1]])).to_f64(),
            Scalar::Float(4) => f32::from_le_bytes(buf[..4].try_into().unwrap()) as f64,
            Scalar::Float(_) => f64::from_le_bytes(buf),
            Scalar::UInt(_) | Scalar::Bool => u64::from_le_bytes(buf) as f64,
            Scalar::Int(n) => {
                let shift = 64 - 8 * n as u32;
                ((i64::from_le_bytes(buf) << shift) >> shift) as f64
            }
            Scalar::Bytes(_) => {
                return Err(Error::invalid("field holds text, not numbers").in_field(name));
            }
        };
        Ok(v)
    }

    /// A byte-string field at `row`, without its NUL padding.
    pub fn text(&self, row: usize, name: &str) -> Result<String> {
        let field = self.field_or_err(name)?;
        let Scalar::Bytes(n) = field.scalar else {
            return Err(Error::invalid("field holds numbers, not text").in_field(name));
        };
        let at = row * self.record_bytes + field.offset;
        let raw = &self.data[at..at + n];
        let len = raw.iter().position(|&b| b == 0).unwrap_or(n);
        Ok(String::from_utf8_lossy(&raw[..len]).into_owned())
    }

    /// All values of a plain numeric array, in storage order.
    pub fn values(&self) -> Result<Vec<f64>> {
        let name = self.fields[0].name.clone();
        let per_row = self.fields[0].count();
        let mut out = Vec::with_capacity(self.len() * per_row);
        for r in 0..self.len() {
            for e in 0..per_row {
                out.push(self.number(r, &name, e)?);
            }
        }
        Ok(out)
    }

    /// Sets element `elem` of a numeric field at `row`.
    pub fn set_number(&mut self, row: usize, name: &str, elem: usize, value: f64) -> Result<()> {
        let field = self.element(name, elem)?.clone();
        let size = field.scalar.size();
        let mut buf: Vec<u8> = match field.scalar {
            Scalar::Float(2) => half::f16::from_f64(value).to_le_bytes().to_vec(),
            Scalar::Float(4) => (value as f32).to_le_bytes().to_vec(),
            Scalar::Float(_) => value.to_le_bytes().to_vec(),
            Scalar::Int(_) => (value.round() as i64).to_le_bytes()[..size].to_vec(),
            Scalar::UInt(_) | Scalar::Bool => (value.round() as u64).to_le_bytes()[..size].to_vec(),
            Scalar::Bytes(_) => return Err(Error::invalid("field holds text, not numbers").in_field(name)),
        };
        if field.big_endian {
            buf.reverse();
        }
        let at = row * self.record_bytes + field.offset + elem * size;
        self.data[at..at + size].copy_from_slice(&buf);
        Ok(())
    }

    /// A structured array with the given records, in the given order.
    ///
    /// # Panics
    /// If a row is out of range.
    pub fn select_rows(&self, rows: &[usize]) -> NpyArray {
        let mut data = Vec::with_capacity(rows.len() * self.record_bytes);
        for &r in rows {
            data.extend_from_slice(&self.data[r * self.record_bytes..(r + 1) * self.record_bytes]);
        }
        let mut shape = self.shape.clone();
        shape[0] = rows.len();
        NpyArray { fields: self.fields.clone(), shape, record_bytes: self.record_bytes, data }
    }

    /// The array as `.npy` bytes (format 1.0, or 2.0 for very long headers).
    pub fn to_bytes(&self) -> Vec<u8> {
        let descr = if self.fields.len() == 1 && self.fields[0].name.is_empty() {
            format!("'{}'", self.fields[0].scalar.code(self.fields[0].big_endian))
        } else {
            let items: Vec<String> = self
                .fields
                .iter()
                .map(|f| {
                    let code = f.scalar.code(f.big_endian);
                    if f.shape.is_empty() {
                        format!("('{}', '{code}')", f.name)
                    } else {
                        format!("('{}', '{code}', {})", f.name, tuple(&f.shape))
                    }
                })
                .collect();
            format!("[{}]", items.join(", "))
        };
        let mut out = header(&descr, &self.shape);
        out.extend_from_slice(&self.data);
        out
    }
}

/// The `.npy` header of a plain little-endian float32 array of `shape`, for writers that stream
/// the data after it.
pub fn float32_header(shape: &[usize]) -> Vec<u8> {
    header("'<f4'", shape)
}

/// Magic, version, length and the padded header dict (total a multiple of 64 bytes).
fn header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let mut dict = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': {}, }}", tuple(shape));
    let v1 = dict.len() + 11 < 65536;
    let prefix = if v1 { 10 } else { 12 };
    while (prefix + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    if v1 {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out
}

fn tuple(dims: &[usize]) -> String {
    match dims {
        [n] => format!("({n},)"),
        _ => format!("({})", dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

fn parse_fields(items: &[literal::Value]) -> Result<(Vec<Field>, usize)> {
    let mut fields = Vec::new();
    let mut offset = 0;
    for item in items {
        let literal::Value::Tuple(parts) = item else {
            return Err(Error::format("a descr entry is not a tuple").in_field("descr"));
        };
        let (name, code) = match (parts.first(), parts.get(1)) {
            (Some(literal::Value::Str(n)), Some(literal::Value::Str(c))) => (n.clone(), c.clone()),
            (Some(literal::Value::Str(n)), Some(_)) => {
                return Err(Error::unsupported("nested structured fields").in_field(n.as_str()));
            }
            _ => return Err(Error::format("a descr entry lacks a name and type").in_field("descr")),
        };
        let (scalar, big_endian) = parse_code(&code, &name)?;
        let shape = match parts.get(2) {
            Some(v) => v.as_shape().map_err(|e| e.in_field(name.as_str()))?,
            None => Vec::new(),
        };
        let field = Field { name, scalar, big_endian, shape, offset };
        offset = field
            .bytes()
            .and_then(|b| offset.checked_add(b))
            .ok_or_else(|| Error::format("record size overflows").in_field(field.name.as_str()))?;
        fields.push(field);
    }
    Ok((fields, offset))
}

fn parse_code(code: &str, field: &str) -> Result<(Scalar, bool)> {
    let bad = || Error::unsupported(format!("NumPy type '{code}'")).in_field(field);
    let mut chars = code.chars();
    let order = chars.next().ok_or_else(bad)?;
    let big_endian = match order {
        '<' | '|' | '=' => false,
        '>' => true,
        _ => return Err(bad()),
    };
    let kind = chars.next().ok_or_else(bad)?;
    let size: usize = chars.as_str().parse().map_err(|_| bad())?;
    let scalar = match (kind, size) {
        ('i', 1 | 2 | 4 | 8) => Scalar::Int(size),
        ('u', 1 | 2 | 4 | 8) => Scalar::UInt(size),
        ('f', 2 | 4 | 8) => Scalar::Float(size),
        ('b', 1) => Scalar::Bool,
        ('S', n) => Scalar::Bytes(n),
        _ => return Err(bad()),
    };
    Ok((scalar, big_endian))
}

/// Writes `array` to `path` atomically.
pub fn write_npy(path: impl AsRef<Path>, array: &NpyArray) -> Result<()> {
    crate::io::atomic::write_atomic(path, &array.to_bytes())
}

/// The Python literals of a `.npy` header: strings, integers, booleans, tuples, lists, dicts.
pub(crate) mod literal {
    use crate::error::{Error, Result};

    #[derive(Clone, Debug, PartialEq)]
    pub enum Value {
        Str(String),
        Int(i64),
        Bool(bool),
        Tuple(Vec<Value>),
        List(Vec<Value>),
        Dict(Vec<(String, Value)>),
    }

    impl Value {
        pub fn get(&self, key: &str) -> Result<&Value> {
            match self {
                Value::Dict(items) => {
                    items.iter().find(|(k, _)| k == key).map(|(_, v)| v).ok_or_else(|| {
                        Error::missing(format!("the .npy header has no '{key}'")).in_field(key)
                    })
                }
                _ => Err(Error::format("the .npy header is not a dict")),
            }
        }

        pub fn as_shape(&self) -> Result<Vec<usize>> {
            let items = match self {
                Value::Tuple(v) | Value::List(v) => v,
                Value::Int(n) => {
                    return Ok(vec![usize::try_from(*n).map_err(|_| Error::format("negative dimension"))?]);
                }
                _ => return Err(Error::format("shape is not a tuple of integers")),
            };
            items
                .iter()
                .map(|v| match v {
                    Value::Int(n) if *n >= 0 => Ok(*n as usize),
                    _ => Err(Error::format("shape is not a tuple of non-negative integers")),
                })
                .collect()
        }
    }

    pub fn parse(text: &str) -> Result<Value> {
        let mut p = Parser { s: text.as_bytes(), i: 0 };
        let v = p.value(0)?;
        Ok(v)
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn skip(&mut self) {
            while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }

        fn peek(&mut self) -> Option<u8> {
            self.skip();
            self.s.get(self.i).copied()
        }

        fn err(&self, what: &str) -> Error {
            Error::format(format!("bad .npy header at byte {}: {what}", self.i))
        }

        fn value(&mut self, depth: usize) -> Result<Value> {
            if depth > 32 {
                return Err(self.err("nesting too deep"));
            }
            match self.peek().ok_or_else(|| self.err("unexpected end"))? {
                q @ (b'\'' | b'"') => {
                    self.i += 1;
                    let start = self.i;
                    while self.i < self.s.len() && self.s[self.i] != q {
                        self.i += 1;
                    }
                    if self.i >= self.s.len() {
                        return Err(self.err("string not closed"));
                    }
                    let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                    self.i += 1;
                    Ok(Value::Str(text))
                }
                b'(' => self.seq(b')', depth).map(Value::Tuple),
                b'[' => self.seq(b']', depth).map(Value::List),
                b'{' => {
                    self.i += 1;
                    let mut items = Vec::new();
                    loop {
                        if self.peek() == Some(b'}') {
                            self.i += 1;
                            return Ok(Value::Dict(items));
                        }
                        let Value::Str(key) = self.value(depth + 1)? else {
                            return Err(self.err("dict key is not a string"));
                        };
                        if self.peek() != Some(b':') {
                            return Err(self.err("expected ':'"));
                        }
                        self.i += 1;
                        items.push((key, self.value(depth + 1)?));
                        if self.peek() == Some(b',') {
                            self.i += 1;
                        }
                    }
                }
                _ => {
                    let start = self.i;
                    while self.i < self.s.len()
                        && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'-')
                    {
                        self.i += 1;
                    }
                    let word = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                    match word {
                        "True" => Ok(Value::Bool(true)),
                        "False" => Ok(Value::Bool(false)),
                        w => w
                            .trim_end_matches('L')
                            .parse()
                            .map(Value::Int)
                            .map_err(|_| self.err(&format!("unexpected '{w}'"))),
                    }
                }
            }
        }

        fn seq(&mut self, close: u8, depth: usize) -> Result<Vec<Value>> {
            self.i += 1;
            let mut items = Vec::new();
            loop {
                if self.peek() == Some(close) {
                    self.i += 1;
                    return Ok(items);
                }
                items.push(self.value(depth + 1)?);
                match self.peek() {
                    Some(b',') => self.i += 1,
                    Some(c) if c == close => {}
                    _ => return Err(self.err("expected ',' or the end of a sequence")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_array_round_trips() {
        let header = "{'descr': [('uid', '<u8'), ('blob/path', '|S8'), ('pose', '<f4', (3,)), ('flag', '|b1'), ('n', '>i2')], 'fortran_order': False, 'shape': (2,), }";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        for (uid, path, pose, n) in
            [(7u64, b"a.mrc\0\0\0", [0.5f32, -1.0, 2.0], -3i16), (9, b"bb.mrcs\0", [1.0, 2.0, 3.0], 300)]
        {
            bytes.extend_from_slice(&uid.to_le_bytes());
            bytes.extend_from_slice(path);
            pose.iter().for_each(|p| bytes.extend_from_slice(&p.to_le_bytes()));
            bytes.push(1);
            bytes.extend_from_slice(&n.to_be_bytes());
        }
        let a = NpyArray::parse(bytes).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a.number(1, "uid", 0).unwrap(), 9.0);
        assert_eq!(a.text(1, "blob/path").unwrap(), "bb.mrcs");
        assert_eq!(a.number(0, "pose", 1).unwrap(), -1.0);
        assert_eq!(a.number(0, "n", 0).unwrap(), -3.0);
        assert_eq!(a.number(1, "n", 0).unwrap(), 300.0);
        let back = NpyArray::parse(a.to_bytes()).unwrap();
        assert_eq!(back, a);
        assert_eq!(a.to_bytes().iter().position(|&b| b == b'\n').unwrap() % 64, 63);
        let sub = a.select_rows(&[1]);
        assert_eq!(sub.len(), 1);
        assert_eq!(sub.text(0, "blob/path").unwrap(), "bb.mrcs");
    }

    #[test]
    fn bad_headers_are_errors() {
        assert!(NpyArray::parse(b"not numpy".to_vec()).is_err());
        let mut b = b"\x93NUMPY\x01\x00\x40\x00".to_vec();
        b.extend_from_slice(b"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }          \n");
        b.extend_from_slice(&[0; 8]);
        let e = NpyArray::parse(b).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
    }
}
