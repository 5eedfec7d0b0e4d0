//! STAR parser: never panics; whatever parses writes back to text that parses to the same thing,
//! and the particle table builds or fails with an error.
#![no_main]

use cryomotion::io::relion::particles_from_star;
use cryomotion::io::star::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(star) = parse(&text) {
        let again = parse(&star.to_string()).expect("written STAR must parse");
        assert_eq!(again, star, "STAR round trip");
        let _ = particles_from_star(star, std::path::Path::new("fuzz.star"), None);
    }
});
