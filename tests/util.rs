//! Helpers shared by the integration tests.

use std::path::PathBuf;
use std::process::{Command, Output};

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

/// A particle's CTF as cryoDRGN's `ctf.pkl` rows hold it: [box, Å/px, dfU, dfV, df angle (deg),
/// kV, Cs (mm), amplitude contrast, phase shift (deg)].
pub fn cryodrgn_ctf_row(table: &cryomotion::particles::ParticleTable, i: usize, box_size: f64) -> [f64; 9] {
    let (p, g) = (&table.particles[i], table.optics_of(i));
    [
        box_size,
        g.pixel_size,
        p.ctf.defocus_u_angstrom,
        p.ctf.defocus_v_angstrom,
        p.ctf.defocus_angle_deg,
        g.voltage_kv,
        g.spherical_aberration_mm,
        g.amplitude_contrast,
        p.ctf.phase_shift_deg,
    ]
}

/// The plain (no Wiener term) reconstruction of every particle of `dir/particles.star`.
pub fn reconstruct_all(dir: &std::path::Path) -> cryomotion::array::Volume {
    use cryomotion::io::images::{ImagePaths, ParticleImages};
    use cryomotion::ops::reconstruct::{ReconstructOptions, accumulate};
    let table = cryomotion::io::relion::read_particles_star(dir.join("particles.star")).unwrap();
    let images = ParticleImages::open(&table, &ImagePaths::default()).unwrap();
    let all: Vec<usize> = (0..table.len()).collect();
    let one = vec![1u8; table.len()];
    accumulate(&table, &images, &all, &one, &ReconstructOptions::default(), &|_| {}).unwrap()[0]
        .reconstruct(None)
}

/// Runs the cryomotion binary with `args`.
pub fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cryomotion")).args(args).output().unwrap()
}

/// Runs the binary, which must succeed; returns its standard output.
pub fn cli_ok(args: &[&str]) -> String {
    let out = cli(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the binary, which must fail cleanly (no panic); returns its standard error.
pub fn cli_err(args: &[&str]) -> String {
    let out = cli(args);
    assert!(!out.status.success(), "{args:?} should fail");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}
