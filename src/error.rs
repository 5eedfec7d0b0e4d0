//! The library's error: what went wrong, and where (file, line or row, field).

use std::fmt;
use std::path::{Path, PathBuf};

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of problem an [`Error`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The operating system failed to read or write a file.
    Io,
    /// The file does not follow its format (bad header, bad syntax, truncated).
    Format,
    /// A required field, column or block is missing.
    MissingField,
    /// A field or column appears twice.
    DuplicateField,
    /// A value cannot be parsed or is outside its valid range.
    InvalidValue,
    /// Valid input that this version does not handle (e.g. an unknown MRC mode).
    Unsupported,
    /// Inputs that must agree do not (e.g. particles with different box sizes).
    Mismatch,
}

/// An error with its location: file, line (text formats) or row (tables), and field.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    path: Option<PathBuf>,
    line: Option<usize>,
    row: Option<usize>,
    field: Option<String>,
    source: Option<std::io::Error>,
}

impl Error {
    /// A new error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), path: None, line: None, row: None, field: None, source: None }
    }

    /// A format error.
    pub fn format(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Format, message)
    }

    /// An invalid value.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidValue, message)
    }

    /// A missing field, column or block.
    pub fn missing(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::MissingField, message)
    }

    /// Unsupported input.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// Inputs that disagree.
    pub fn mismatch(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Mismatch, message)
    }

    /// An I/O error while working on `path`.
    pub fn io(err: std::io::Error, path: &Path) -> Self {
        let mut e = Self::new(ErrorKind::Io, err.to_string());
        e.path = Some(path.to_path_buf());
        e.source = Some(err);
        e
    }

    /// Sets the file, unless one is already set (the innermost file wins).
    pub fn with_path(mut self, path: impl AsRef<Path>) -> Self {
        if self.path.is_none() {
            self.path = Some(path.as_ref().to_path_buf());
        }
        self
    }

    /// Sets the 1-based line number, unless one is already set.
    pub fn at_line(mut self, line: usize) -> Self {
        self.line.get_or_insert(line);
        self
    }

    /// Sets the 1-based row number of a table, unless one is already set.
    pub fn at_row(mut self, row: usize) -> Self {
        self.row.get_or_insert(row);
        self
    }

    /// Sets the field (column, header field, tag), unless one is already set.
    pub fn in_field(mut self, field: impl Into<String>) -> Self {
        if self.field.is_none() {
            self.field = Some(field.into());
        }
        self
    }

    /// The kind of problem.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The file the error is about, if known.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The 1-based line, if known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The 1-based table row, if known.
    pub fn row(&self) -> Option<usize> {
        self.row
    }

    /// The field, if known.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The message without location.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.path {
            write!(f, "{}: ", path.display())?;
        }
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(row) = self.row {
            write!(f, "row {row}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field '{field}': ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_line_row_and_field() {
        let e = Error::invalid("not a number: 'abc'")
            .in_field("rlnDefocusU")
            .at_row(3)
            .at_line(17)
            .with_path("particles.star");
        assert_eq!(e.to_string(), "particles.star: line 17: row 3: field 'rlnDefocusU': not a number: 'abc'");
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
    }

    #[test]
    fn innermost_location_wins() {
        let e = Error::format("x").with_path("inner.mrc").with_path("outer.star");
        assert_eq!(e.path(), Some(Path::new("inner.mrc")));
    }
}
