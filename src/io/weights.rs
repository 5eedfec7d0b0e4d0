//! Network weights as safetensors files (readable by `safetensors.torch.load_file`): an 8-byte
//! little-endian header length, a JSON header naming each tensor's dtype, shape and byte range,
//! then the raw little-endian data. Metadata carries our format name and version.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::npy::literal::{Value, parse};

/// The format name written in the metadata.
pub const FORMAT: &str = "cryomotion-weights";
/// The version written in the metadata; readers refuse other versions.
pub const VERSION: &str = "1";

/// Named f32 tensors with string metadata.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tensors {
    /// Metadata pairs (format and version are added on write).
    pub metadata: Vec<(String, String)>,
    /// (name, shape, values).
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl Tensors {
    /// Adds a tensor.
    ///
    /// # Panics
    /// If the shape does not match the number of values.
    pub fn push(&mut self, name: impl Into<String>, shape: &[usize], values: &[f32]) {
        assert_eq!(shape.iter().product::<usize>(), values.len(), "tensor shape and length");
        self.tensors.push((name.into(), shape.to_vec(), values.to_vec()));
    }

    /// The values of a tensor, checked against the expected shape.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<&[f32]> {
        let (_, s, v) = self
            .tensors
            .iter()
            .find(|(n, _, _)| n == name)
            .ok_or_else(|| Error::missing(format!("no tensor '{name}'")).in_field(name))?;
        if s != shape {
            return Err(Error::mismatch(format!("tensor has shape {s:?}, expected {shape:?}")).in_field(name));
        }
        Ok(v)
    }

    /// A metadata value.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut header = String::from("{\"__metadata__\":{");
        let mut meta =
            vec![("format".to_string(), FORMAT.to_string()), ("version".to_string(), VERSION.to_string())];
        meta.extend(self.metadata.iter().filter(|(k, _)| k != "format" && k != "version").cloned());
        let meta: Vec<String> =
            meta.iter().map(|(k, v)| format!("{}:{}", json_string(k), json_string(v))).collect();
        header += &meta.join(",");
        header.push('}');
        let mut offset = 0usize;
        for (name, shape, values) in &self.tensors {
            let end = offset + 4 * values.len();
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            header += &format!(
                ",{}:{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{offset},{end}]}}",
                json_string(name),
                dims.join(",")
            );
            offset = end;
        }
        header.push('}');
        while header.len() % 8 != 0 {
            header.push(' ');
        }
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        for (_, _, values) in &self.tensors {
            values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        out
    }

    /// Parses a file's bytes; refuses other formats, versions and dtypes with a clear error.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let n = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize);
        let header = n
            .and_then(|n| bytes.get(8..8usize.checked_add(n)?))
            .ok_or_else(|| Error::format("truncated safetensors header"))?;
        let data = &bytes[8 + header.len()..];
        let text =
            std::str::from_utf8(header).map_err(|_| Error::format("safetensors header is not UTF-8"))?;
        let Value::Dict(items) = parse(text.trim_end())? else {
            return Err(Error::format("safetensors header is not a JSON object"));
        };
        let mut out = Tensors::default();
        for (name, value) in items {
            match (name.as_str(), value) {
                ("__metadata__", Value::Dict(meta)) => {
                    for (k, v) in meta {
                        if let Value::Str(v) = v {
                            out.metadata.push((k, v));
                        }
                    }
                }
                (_, Value::Dict(fields)) => out.tensors.push(tensor(&name, &fields, data)?),
                _ => {
                    return Err(
                        Error::format("unexpected entry in the safetensors header").in_field(name.as_str())
                    );
                }
            }
        }
        match (out.meta("format"), out.meta("version")) {
            (Some(FORMAT), Some(VERSION)) => Ok(out),
            (Some(FORMAT), v) => Err(Error::unsupported(format!(
                "weights version {} (this build reads version {VERSION})",
                v.unwrap_or("?")
            ))
            .in_field("version")),
            _ => {
                Err(Error::unsupported("not a cryomotion weights file (no format metadata)")
                    .in_field("format"))
            }
        }
    }

    /// Writes the file atomically.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::io::atomic::write_atomic(path, &self.to_bytes())
    }

    /// Reads a file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(e, path))?;
        Self::parse(&bytes).map_err(|e| e.with_path(path))
    }
}

fn tensor(name: &str, fields: &[(String, Value)], data: &[u8]) -> Result<(String, Vec<usize>, Vec<f32>)> {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    let bad = |m: &str| Error::format(m.to_string()).in_field(name);
    match get("dtype") {
        Some(Value::Str(d)) if d == "F32" => {}
        _ => return Err(Error::unsupported("only F32 tensors are read").in_field(name)),
    }
    let shape = get("shape").ok_or_else(|| bad("no shape"))?.as_shape()?;
    let offsets = get("data_offsets").ok_or_else(|| bad("no data_offsets"))?.as_shape()?;
    let [begin, end] = offsets[..] else { return Err(bad("data_offsets needs two numbers")) };
    let count: usize = shape.iter().product();
    if end < begin || end - begin != 4 * count || end > data.len() {
        return Err(bad("data_offsets do not match the shape or the file"));
    }
    let values =
        data[begin..end].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    Ok((name.to_string(), shape, values))
}

/// `s` as a JSON string literal, quoted and escaped.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_round_trip_and_follow_the_safetensors_layout() {
        let mut t = Tensors::default();
        t.metadata.push(("latent".into(), "6".into()));
        t.push("decoder.hidden.0.weight", &[2, 3], &[1.0, -2.0, 3.5, 0.0, 1e-8, 7.0]);
        t.push("encoder.mean.bias", &[2], &[0.25, -0.5]);
        let bytes = t.to_bytes();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!((8 + n) % 8, 0);
        assert_eq!(bytes.len(), 8 + n + 4 * 8);
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        assert!(header.starts_with("{\"__metadata__\":{\"format\":\"cryomotion-weights\",\"version\":\"1\""));
        assert!(header.contains(
            "\"decoder.hidden.0.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"
        ));
        let back = Tensors::parse(&bytes).unwrap();
        assert_eq!(back.get("decoder.hidden.0.weight", &[2, 3]).unwrap(), &[1.0, -2.0, 3.5, 0.0, 1e-8, 7.0]);
        assert_eq!(back.meta("latent"), Some("6"));
        assert_eq!(back.get("encoder.mean.bias", &[3]).unwrap_err().kind(), crate::ErrorKind::Mismatch);
    }

    #[test]
    fn other_versions_and_truncated_files_are_refused() {
        let mut t = Tensors::default();
        t.push("w", &[1], &[1.0]);
        let bytes = t.to_bytes();
        let text = String::from_utf8_lossy(&bytes).replace("\"version\":\"1\"", "\"version\":\"9\"");
        let e = Tensors::parse(text.as_bytes()).unwrap_err();
        assert_eq!(e.field(), Some("version"));
        assert!(Tensors::parse(&bytes[..bytes.len() - 2]).is_err());
        assert!(Tensors::parse(&bytes[..5]).is_err());
    }
}
