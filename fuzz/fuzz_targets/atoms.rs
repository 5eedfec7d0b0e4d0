//! PDB and mmCIF parsers: never panic.
#![no_main]

use cryomotion::io::atoms::{format_pdb, parse_mmcif, parse_pdb};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(model) = parse_pdb(&text) {
        let _ = format_pdb(&model.models);
    }
    let _ = parse_mmcif(&text);
});
