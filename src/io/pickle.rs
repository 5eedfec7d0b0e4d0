//! NumPy arrays from Python pickles (cryoDRGN's `poses.pkl`, `ctf.pkl`), by a restricted
//! unpickler: it builds tuples, lists, dicts, numbers, strings and NumPy arrays, and refuses
//! every other Python global, so loading a pickle can never run code.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::npy::NpyArray;

/// A Python value from a pickle.
#[derive(Clone, Debug, PartialEq)]
pub enum PyValue {
    /// None.
    None,
    /// bool.
    Bool(bool),
    /// int.
    Int(i64),
    /// float.
    Float(f64),
    /// str.
    Str(String),
    /// bytes.
    Bytes(Vec<u8>),
    /// tuple.
    Tuple(Vec<PyValue>),
    /// list.
    List(Vec<PyValue>),
    /// dict, in insertion order.
    Dict(Vec<(PyValue, PyValue)>),
    /// numpy.ndarray.
    Array(NpyArray),
    /// A partly built object (a whitelisted global, a dtype, an empty array).
    #[doc(hidden)]
    Internal(Internal),
}

#[doc(hidden)]
#[derive(Clone, Debug, PartialEq)]
pub enum Internal {
    Global(String),
    Dtype(String),
    EmptyArray,
}

const ALLOWED: &[&str] = &[
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.ndarray",
    "numpy.dtype",
];

/// Reads a pickle file.
pub fn read_pickle(path: impl AsRef<Path>) -> Result<PyValue> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(e, path))?;
    parse_pickle(&bytes).map_err(|e| e.with_path(path))
}

/// Runs the restricted unpickler over `bytes`.
pub fn parse_pickle(bytes: &[u8]) -> Result<PyValue> {
    let mut m = Machine {
        b: bytes,
        i: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Vec::new(),
        containers: 0,
        copied: 0,
    };
    m.run()
}

/// Most containers a pickle may build: bounds nesting depth (and so recursion when values drop).
const MAX_CONTAINERS: usize = 1000;

/// Rough size of a value in bytes, to bound what memo look-ups copy.
fn weight(v: &PyValue) -> usize {
    match v {
        PyValue::Str(s) => s.len() + 8,
        PyValue::Bytes(b) => b.len() + 8,
        PyValue::Array(a) => a.len() * a.fields.iter().map(|f| f.count()).sum::<usize>() * 8 + 8,
        PyValue::Tuple(items) | PyValue::List(items) => items.iter().map(weight).sum::<usize>() + 8,
        PyValue::Dict(items) => items.iter().map(|(k, v)| weight(k) + weight(v)).sum::<usize>() + 8,
        _ => 8,
    }
}

struct Machine<'a> {
    b: &'a [u8],
    i: usize,
    stack: Vec<PyValue>,
    marks: Vec<usize>,
    memo: Vec<Option<PyValue>>,
    containers: usize,
    copied: usize,
}

impl Machine<'_> {
    fn err(&self, what: impl std::fmt::Display) -> Error {
        Error::format(format!("pickle byte {}: {what}", self.i))
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end =
            self.i.checked_add(n).filter(|&e| e <= self.b.len()).ok_or_else(|| self.err("truncated"))?;
        let s = &self.b[self.i..end];
        self.i = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.b[self.i..];
        let n = rest.iter().position(|&c| c == b'\n').ok_or_else(|| self.err("unterminated line"))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.i += n + 1;
        Ok(s)
    }

    fn pop(&mut self) -> Result<PyValue> {
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }

    fn pop_mark(&mut self) -> Result<Vec<PyValue>> {
        let mark = self.marks.pop().ok_or_else(|| self.err("no MARK"))?;
        if mark > self.stack.len() {
            return Err(self.err("MARK beyond stack"));
        }
        Ok(self.stack.split_off(mark))
    }

    fn memo_put(&mut self, index: usize) -> Result<()> {
        let top = self.stack.last().cloned().ok_or_else(|| self.err("memo of empty stack"))?;
        if index > 1 << 20 {
            return Err(self.err("memo index too large"));
        }
        if self.memo.len() <= index {
            self.memo.resize(index + 1, None);
        }
        self.memo[index] = Some(top);
        Ok(())
    }

    fn container(&mut self) -> Result<()> {
        self.containers += 1;
        if self.containers > MAX_CONTAINERS {
            return Err(self.err(format!("more than {MAX_CONTAINERS} containers")));
        }
        Ok(())
    }

    fn memo_get(&mut self, index: usize) -> Result<()> {
        let v = self.memo.get(index).cloned().flatten().ok_or_else(|| self.err("unknown memo index"))?;
        self.copied += weight(&v);
        if self.copied > 16 * self.b.len() + (1 << 20) {
            return Err(self.err("memo references expand far beyond the file's size"));
        }
        self.stack.push(v);
        Ok(())
    }

    fn global(&mut self, name: String) -> Result<()> {
        if !ALLOWED.contains(&name.as_str()) {
            return Err(
                self.err(format!("refusing to load Python global '{name}' (only NumPy arrays are read)"))
            );
        }
        self.stack.push(PyValue::Internal(Internal::Global(name)));
        Ok(())
    }

    fn run(&mut self) -> Result<PyValue> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.take(8)?; // FRAME
                }
                b'.' => return self.pop(),
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(format!("{module}.{name}"))?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (PyValue::Str(m), PyValue::Str(n)) => self.global(format!("{m}.{n}"))?,
                        _ => return Err(self.err("STACK_GLOBAL needs two strings")),
                    }
                }
                b'q' => {
                    let k = self.u8()? as usize;
                    self.memo_put(k)?;
                }
                b'r' => {
                    let k = self.u32()? as usize;
                    self.memo_put(k)?;
                }
                0x94 => {
                    let k = self.memo.len();
                    self.memo_put(k)?;
                }
                b'h' => {
                    let k = self.u8()? as usize;
                    self.memo_get(k)?;
                }
                b'j' => {
                    let k = self.u32()? as usize;
                    self.memo_get(k)?;
                }
                b'K' => {
                    let v = self.u8()? as i64;
                    self.stack.push(PyValue::Int(v));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.take(2)?.try_into().unwrap()) as i64;
                    self.stack.push(PyValue::Int(v));
                }
                b'J' => {
                    let v = self.u32()? as i32 as i64;
                    self.stack.push(PyValue::Int(v));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let raw = self.take(n)?;
                    if n > 8 {
                        return Err(self.err("integer too large"));
                    }
                    let mut buf = if raw.last().is_some_and(|&b| b & 0x80 != 0) { [0xff; 8] } else { [0; 8] };
                    buf[..n].copy_from_slice(raw);
                    self.stack.push(PyValue::Int(i64::from_le_bytes(buf)));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().unwrap());
                    self.stack.push(PyValue::Float(v));
                }
                b'N' => self.stack.push(PyValue::None),
                0x88 => self.stack.push(PyValue::Bool(true)),
                0x89 => self.stack.push(PyValue::Bool(false)),
                b'(' => self.marks.push(self.stack.len()),
                b't' => {
                    self.container()?;
                    let items = self.pop_mark()?;
                    self.stack.push(PyValue::Tuple(items));
                }
                b')' => {
                    self.container()?;
                    self.stack.push(PyValue::Tuple(Vec::new()));
                }
                0x85..=0x87 => {
                    self.container()?;
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(self.err("stack underflow"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(PyValue::Tuple(items));
                }
                b']' => {
                    self.container()?;
                    self.stack.push(PyValue::List(Vec::new()));
                }
                b'l' => {
                    self.container()?;
                    let items = self.pop_mark()?;
                    self.stack.push(PyValue::List(items));
                }
                b'a' => {
                    let v = self.pop()?;
                    match self.stack.last_mut() {
                        Some(PyValue::List(l)) => l.push(v),
                        _ => return Err(self.err("APPEND to a non-list")),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.stack.last_mut() {
                        Some(PyValue::List(l)) => l.extend(items),
                        _ => return Err(self.err("APPENDS to a non-list")),
                    }
                }
                b'}' => {
                    self.container()?;
                    self.stack.push(PyValue::Dict(Vec::new()));
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    match self.stack.last_mut() {
                        Some(PyValue::Dict(d)) => d.push((k, v)),
                        _ => return Err(self.err("SETITEM on a non-dict")),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(self.err("SETITEMS with an odd count"));
                    }
                    let mut it = items.into_iter();
                    let Some(PyValue::Dict(d)) = self.stack.last_mut() else {
                        return Err(self.err("SETITEMS on a non-dict"));
                    };
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        d.push((k, v));
                    }
                }
                0x8c | b'X' => {
                    let n = if op == 0x8c { self.u8()? as usize } else { self.u32()? as usize };
                    let s = String::from_utf8_lossy(self.take(n)?).into_owned();
                    self.stack.push(PyValue::Str(s));
                }
                b'C' | b'B' | b'U' | b'T' => {
                    // bytes (protocol 3) or Python 2 str, which NumPy used for array data
                    let n =
                        if matches!(op, b'C' | b'U') { self.u8()? as usize } else { self.u32()? as usize };
                    let v = self.take(n)?.to_vec();
                    self.stack.push(PyValue::Bytes(v));
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.reduce(callable, args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.pop()?;
                    let v = self.build(obj, state)?;
                    self.stack.push(v);
                }
                _ => return Err(self.err(format!("unsupported pickle opcode 0x{op:02x}"))),
            }
        }
    }

    fn reduce(&self, callable: PyValue, args: PyValue) -> Result<PyValue> {
        let PyValue::Internal(Internal::Global(name)) = callable else {
            return Err(self.err("REDUCE of a non-callable"));
        };
        match (name.as_str(), args) {
            // a code without byte order is native (little-endian on every platform we build for);
            // BUILD may set it, but memoised copies of the dtype keep this default
            ("numpy.dtype", PyValue::Tuple(a)) => match a.first() {
                Some(PyValue::Str(code)) => Ok(PyValue::Internal(Internal::Dtype(format!("<{code}")))),
                _ => Err(self.err("numpy.dtype without a type code")),
            },
            (n, _) if n.ends_with("_reconstruct") => Ok(PyValue::Internal(Internal::EmptyArray)),
            _ => Err(self.err(format!("cannot call {name}"))),
        }
    }

    fn build(&self, obj: PyValue, state: PyValue) -> Result<PyValue> {
        let PyValue::Tuple(s) = state else { return Err(self.err("BUILD state is not a tuple")) };
        match obj {
            PyValue::Internal(Internal::Dtype(code)) => {
                // state: (version, byte order, ...)
                let order = match s.get(1) {
                    Some(PyValue::Str(o)) if o == ">" => ">",
                    _ => "<",
                };
                Ok(PyValue::Internal(Internal::Dtype(format!("{order}{}", &code[1..]))))
            }
            PyValue::Internal(Internal::EmptyArray) => {
                // state: (version, shape, dtype, fortran order, raw data)
                let (shape, dtype, fortran, data) = match s.as_slice() {
                    [_, shape, dtype, fortran, data] => (shape, dtype, fortran, data),
                    _ => return Err(self.err("unexpected ndarray state")),
                };
                let shape: Vec<usize> = match shape {
                    PyValue::Tuple(dims) => dims
                        .iter()
                        .map(|d| match d {
                            PyValue::Int(n) if *n >= 0 => Ok(*n as usize),
                            _ => Err(self.err("bad array dimension")),
                        })
                        .collect::<Result<_>>()?,
                    _ => return Err(self.err("array shape is not a tuple")),
                };
                let (PyValue::Internal(Internal::Dtype(code)), PyValue::Bool(false), PyValue::Bytes(data)) =
                    (dtype, fortran, data)
                else {
                    return Err(self.err("unsupported ndarray (object dtype or Fortran order)"));
                };
                NpyArray::plain(code, shape, data.clone()).map(PyValue::Array)
            }
            _ => Err(self.err("BUILD of an unsupported object")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_running_globals_are_refused() {
        // pickle.dumps(os.system, "ls") style payload: GLOBAL os.system, args ("ls",), REDUCE
        let payload = b"\x80\x03cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.";
        let e = parse_pickle(payload).unwrap_err();
        assert!(e.to_string().contains("refusing to load Python global 'os.system'"), "{e}");
    }

    #[test]
    fn deep_nesting_and_memo_bombs_are_refused() {
        let mut deep = vec![0x80, 0x04, b'N'];
        deep.extend(std::iter::repeat_n(0x85u8, 100_000)); // TUPLE1, 100 000 deep
        deep.push(b'.');
        assert!(parse_pickle(&deep).unwrap_err().to_string().contains("containers"));

        let mut bomb = vec![0x80, 0x04, b'B'];
        bomb.extend_from_slice(&65_536u32.to_le_bytes());
        bomb.extend(std::iter::repeat_n(0u8, 65_536));
        bomb.extend_from_slice(&[b'q', 0]);
        for _ in 0..20_000 {
            bomb.extend_from_slice(&[b'h', 0]); // each look-up copies 64 KiB
        }
        assert!(parse_pickle(&bomb).unwrap_err().to_string().contains("expand"));
    }

    #[test]
    fn plain_containers_and_numbers_from_python() {
        // Python 3.11: pickle.dumps((1, -2, 3.5, 'a', [True, None], {'k': 300, 'big': 2**40}, b'xy'), protocol=4)
        let p4 = b"\x80\x04\x95<\x00\x00\x00\x00\x00\x00\x00(K\x01J\xfe\xff\xff\xffG@\x0c\x00\x00\x00\x00\x00\x00\x8c\x01a\x94]\x94(\x88Ne}\x94(\x8c\x01k\x94M,\x01\x8c\x03big\x94\x8a\x06\x00\x00\x00\x00\x00\x01uC\x02xy\x94t\x94.";
        // the same without the bytes, protocol=2
        let p2 = b"\x80\x02(K\x01J\xfe\xff\xff\xffG@\x0c\x00\x00\x00\x00\x00\x00X\x01\x00\x00\x00aq\x00]q\x01(\x88Ne}q\x02(X\x01\x00\x00\x00kq\x03M,\x01X\x03\x00\x00\x00bigq\x04\x8a\x06\x00\x00\x00\x00\x00\x01utq\x05.";
        let mut expected = vec![
            PyValue::Int(1),
            PyValue::Int(-2),
            PyValue::Float(3.5),
            PyValue::Str("a".into()),
            PyValue::List(vec![PyValue::Bool(true), PyValue::None]),
            PyValue::Dict(vec![
                (PyValue::Str("k".into()), PyValue::Int(300)),
                (PyValue::Str("big".into()), PyValue::Int(1 << 40)),
            ]),
        ];
        assert_eq!(parse_pickle(p2).unwrap(), PyValue::Tuple(expected.clone()));
        expected.push(PyValue::Bytes(b"xy".to_vec()));
        assert_eq!(parse_pickle(p4).unwrap(), PyValue::Tuple(expected));
        assert!(parse_pickle(&p4[..30]).is_err());
    }
}
