//! Shared fixtures for the cross-crate tests.
#![allow(dead_code)]

use keymint_jwks::*;
use keymint_verifier::Verifier;

// Not every test binary that includes this module waits for something.
#[allow(unused_imports)]
pub(crate) use keymint_testkit::wait_until;

pub(crate) const NOW: UnixTime = UnixTime(1_800_000_000);
pub(crate) const ISS: &str = "https://issuer.example";
pub(crate) const AUD: &str = "https://api.example";

pub(crate) fn claims() -> Claims {
    Claims {
        iss: Issuer::new(ISS).unwrap(),
        sub: ApiKeyId::new("k7Gx2pQ9rT").unwrap(),
        aud: Audience::new(AUD).unwrap(),
        exp: UnixTime(NOW.0 + 600),
        iat: NOW,
        nbf: Some(NOW),
        jti: Jti::new("jti-0001").unwrap(),
        client_id: ClientId::new("k7Gx2pQ9rT").unwrap(),
        scope: ScopeSet::parse("orders:read orders:write").unwrap(),
        tenant: TenantId::new("acme").unwrap(),
        cnf: None,
    }
}

pub(crate) fn empty_list(signer: &Signer, serial: u64) -> SignedRevocationList {
    signer
        .sign_revocation_list(&RevocationList {
            v: 1,
            iss: Issuer::new(ISS).unwrap(),
            serial,
            iat: NOW,
            exp: UnixTime(NOW.0 + 86_400),
            entries: vec![],
        })
        .unwrap()
}

pub(crate) fn verifier_for(signers: &[&Signer]) -> Verifier {
    let jwks = Jwks::new(signers.iter().map(|s| s.key().public_jwk()).collect()).unwrap();
    let v = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
        .jwks(jwks)
        .build()
        .unwrap();
    v.update_revocations_at(empty_list(signers[0], 1).jws(), NOW)
        .unwrap();
    v
}
