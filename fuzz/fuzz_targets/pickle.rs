//! Restricted unpickler: never panics, never loops forever.
#![no_main]

use cryomotion::io::pickle::parse_pickle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_pickle(data);
});
