//! NumPy/.cs reader: never panics; parsed arrays re-serialise identically; .cs conversion errs cleanly.
#![no_main]

use cryomotion::io::cs::particles_from_cs;
use cryomotion::io::npy::NpyArray;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(array) = NpyArray::parse(data.to_vec()) {
        let again = NpyArray::parse(array.to_bytes()).expect("written .npy must parse");
        assert_eq!(again, array);
        let _ = particles_from_cs(array, std::path::Path::new("fuzz.cs"));
    }
});
