//! Arbitrary bytes as a signed revocation list: never a panic, never accepted unless really signed.
#![no_main]

use keymint_jwks::{Issuer, SignedRevocationList};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let s = common::signer();
        let _ = SignedRevocationList::verify(text, &common::jwks(&s), &Issuer::new(common::ISS).unwrap(), 1 << 20);
    }
});
