//! Arbitrary bytes as a JWK set: a typed error or a set that round-trips.
#![no_main]

use keymint_jwks::Jwks;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = Jwks::from_json(data) {
        let again = Jwks::from_json(set.to_json().as_bytes()).expect("a parsed set re-parses");
        assert_eq!(again, set);
    }
});
