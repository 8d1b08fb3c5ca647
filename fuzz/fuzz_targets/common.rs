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

/// The claims of the golden token (`tests/fixtures/golden/token_ed25519.jwt`, also the
/// `verify_token` corpus seed), as `tests/tests/common/mod.rs` has them.
pub fn claims() -> Claims {
    Claims {
        iss: Issuer::new(ISS).expect("iss"),
        sub: ApiKeyId::new("k7Gx2pQ9rT").expect("sub"),
        aud: Audience::new("https://api.example").expect("aud"),
        exp: UnixTime(NOW.0 + 600),
        iat: NOW,
        nbf: Some(NOW),
        jti: Jti::new("jti-0001").expect("jti"),
        client_id: ClientId::new("k7Gx2pQ9rT").expect("client_id"),
        scope: ScopeSet::parse("orders:read orders:write").expect("scope"),
        tenant: TenantId::new("acme").expect("tenant"),
        cnf: None,
    }
}
