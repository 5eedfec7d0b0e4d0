//! Inputs the fuzzers found, each kept as a file under tests/data/regressions.

use std::path::PathBuf;

use cryomotion::io::mrc::MrcReader;
use cryomotion::io::star::{StarFile, parse};

fn regression(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/regressions").join(name)
}

/// fuzz `star`: a byte that is not UTF-8 right after `data`/`loop` split a character when the
/// lexer checked for the `data_` keyword (panic). The file must now parse and round-trip.
#[test]
fn star_non_utf8_after_keyword() {
    let bytes = std::fs::read(regression("star_non_utf8_after_keyword.star")).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    if let Ok(star) = parse(&text) {
        assert_eq!(parse(&star.to_string()).unwrap(), star);
    }
    let _ = StarFile::read(regression("star_non_utf8_after_keyword.star"));
}

/// fuzz `mrc`: dimensions whose product overflows 64 bits wrapped to a small data size, passed the
/// length check and asked for an absurd allocation. It must be a "truncated" error.
#[test]
fn mrc_dims_overflow() {
    let e = MrcReader::open(regression("mrc_dims_overflow.mrc")).unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");
}
