#![allow(dead_code)]
// Shared fixture: the RFC 8037 key, its JWKS and a list, fixed so that runs are reproducible.
use keymint_jwks::*;

pub const NOW: UnixTime = UnixTime(1_800_000_000);
pub const ISS: &str = "https://issuer.example";

pub fn signer() -> Signer {
    let seed = [
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
        0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
    ];
    Signer::new(SigningKey::ed25519_from_seed(&seed).expect("seed"))
}

pub fn jwks(s: &Signer) -> Jwks {
    Jwks::new(vec![s.key().public_jwk()]).expect("jwks")
}
