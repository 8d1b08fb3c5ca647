//! Arbitrary bytes as a token: never a panic, never an accepted forgery.
#![no_main]

use std::sync::OnceLock;

use keymint_jwks::*;
use keymint_verifier::Verifier;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        let s = common::signer();
        Verifier::builder(Issuer::new(common::ISS).unwrap(), Audience::new("https://api.example").unwrap())
            .jwks(common::jwks(&s))
            .cache_capacity_bytes(0)
            .dangerous()
            .skip_revocation_checks()
            .build()
            .unwrap()
    })
}

/// The one token the fixture key signed: the golden token the corpus is seeded with (Ed25519 is
/// deterministic, so signing the golden claims again gives it byte for byte).
fn golden() -> &'static str {
    static T: OnceLock<String> = OnceLock::new();
    T.get_or_init(|| {
        common::signer()
            .sign_access_token(&common::claims())
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        if let Ok(ok) = verifier().verify_at(token, common::NOW) {
            // Only a token really signed by the fixture key can verify, and the fuzzer cannot make
            // one unless it rediscovers an Ed25519 signature: anything accepted must be the golden
            // token itself, not a re-encoding or a variant of it, and must carry its claims.
            assert_eq!(token, golden());
            assert_eq!(ok.claims(), &common::claims());
        }
    }
});
