//! Arbitrary text as a DPoP proof: never a panic; an accepted proof's key thumbprint is well formed.
#![no_main]

use keymint_jwks::dpop::parse_proof;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(p) = parse_proof(text) {
            assert_eq!(p.jkt.as_str().len(), 43);
        }
    }
});
