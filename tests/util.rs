//! Helpers shared by the integration tests.

use std::path::PathBuf;

/// A file under ../shared/data (beside the project root); fails clearly if it is missing.
pub fn shared(rel: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(rel);
    assert!(path.exists(), "test data {} is missing: ../shared must sit beside the project", path.display());
    path
}

/// Every file under ../shared/data with one of these extensions, sorted.
pub fn shared_files(extensions: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![shared("")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if extensions.is_empty()
                || path.extension().and_then(|e| e.to_str()).is_some_and(|e| extensions.contains(&e))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Maximum absolute difference between two matrices.
pub fn max_diff(a: &[[f64; 3]; 3], b: &[f64]) -> f64 {
    (0..9).map(|k| (a[k / 3][k % 3] - b[k]).abs()).fold(0.0, f64::max)
}
