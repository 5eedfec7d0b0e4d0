//! Crash-safe output: write to a temporary name beside the target, rename when complete.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A file that appears under its final name only when [`AtomicFile::commit`] is called.
///
/// Dropped without commit (an error, a panic), the temporary file is removed, so a crash never
/// leaves a half-written output under the final name.
pub struct AtomicFile {
    writer: Option<BufWriter<File>>,
    temp_path: PathBuf,
    final_path: PathBuf,
}

impl AtomicFile {
    /// Opens `<dir>/.<name>.tmp-<pid>` for writing; `path` is the final name.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let final_path = path.as_ref().to_path_buf();
        let name = final_path
            .file_name()
            .ok_or_else(|| Error::invalid("output path has no file name").with_path(&final_path))?
            .to_string_lossy()
            .into_owned();
        let temp_path = final_path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let file = File::create(&temp_path).map_err(|e| Error::io(e, &temp_path))?;
        Ok(AtomicFile { writer: Some(BufWriter::with_capacity(1 << 20, file)), temp_path, final_path })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.final_path
    }

    fn writer(&mut self) -> &mut BufWriter<File> {
        self.writer.as_mut().expect("AtomicFile used after commit")
    }

    /// Writes all of `bytes`.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let path = self.final_path.clone();
        self.writer().write_all(bytes).map_err(|e| Error::io(e, &path))
    }

    /// Moves the write position to `offset` bytes from the start (e.g. to rewrite a header).
    pub fn seek_to(&mut self, offset: u64) -> Result<()> {
        let path = self.final_path.clone();
        self.writer().seek(SeekFrom::Start(offset)).map(|_| ()).map_err(|e| Error::io(e, &path))
    }

    /// Flushes, syncs and renames the file to its final name.
    pub fn commit(mut self) -> Result<()> {
        let writer = self.writer.take().expect("AtomicFile committed twice");
        let file = writer.into_inner().map_err(|e| Error::io(e.into_error(), &self.final_path))?;
        file.sync_all().map_err(|e| Error::io(e, &self.final_path))?;
        drop(file);
        std::fs::rename(&self.temp_path, &self.final_path).map_err(|e| Error::io(e, &self.final_path))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.temp_path);
        }
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_appears_until_commit_and_nothing_stays_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("map.mrc");
        {
            let mut f = AtomicFile::create(&target).unwrap();
            f.write_all(b"partial").unwrap();
            assert!(!target.exists());
        }
        assert!(!target.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"complete").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"complete");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
