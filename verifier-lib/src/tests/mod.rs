//! Unit tests of the verifier core, by topic, over one fixture (an issuer's keys, a list, a
//! verifier): every check, its boundary, and the cache.

mod cache;
mod claims;
mod dpop;
mod revocation;
mod tokens;

pub(super) use std::time::Duration;

pub(super) use keymint_jwks::jws::encode_segment;
pub(super) use keymint_jwks::*;

pub(super) use crate::*;

pub(super) const NOW: UnixTime = UnixTime(1_800_000_000);
pub(super) const ISS: &str = "https://issuer.example";
pub(super) const AUD: &str = "https://api.example";

pub(super) struct Fixture {
    pub(super) ed: Signer,
    pub(super) es: Signer,
    pub(super) other: Signer,
    pub(super) jwks: Jwks,
}

pub(super) fn fixture() -> Fixture {
    let ed = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let es = Signer::new(SigningKey::generate(Algorithm::Es256).unwrap());
    let other = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let jwks = Jwks::new(vec![ed.key().public_jwk(), es.key().public_jwk()]).unwrap();
    Fixture {
        ed,
        es,
        other,
        jwks,
    }
}

pub(super) fn claims() -> Claims {
    Claims {
        iss: Issuer::new(ISS).unwrap(),
        sub: ApiKeyId::new("key1").unwrap(),
        aud: Audience::new(AUD).unwrap(),
        exp: UnixTime(NOW.0 + 600),
        iat: NOW,
        nbf: Some(NOW),
        jti: Jti::new("jti-1").unwrap(),
        client_id: ClientId::new("key1").unwrap(),
        scope: ScopeSet::parse("orders:read orders:write").unwrap(),
        tenant: TenantId::new("acme").unwrap(),
        cnf: None,
    }
}

pub(super) fn list(
    signer: &Signer,
    serial: u64,
    entries: Vec<RevocationEntry>,
) -> SignedRevocationList {
    signer
        .sign_revocation_list(&RevocationList {
            v: 1,
            iss: Issuer::new(ISS).unwrap(),
            serial,
            iat: NOW,
            exp: UnixTime(NOW.0 + 86_400),
            entries,
        })
        .unwrap()
}

pub(super) fn entry(target: RevocationTarget, revoked_at: UnixTime) -> RevocationEntry {
    RevocationEntry {
        target,
        revoked_at,
        drop_after: UnixTime(revoked_at.0 + 3_600),
    }
}

pub(super) fn verifier(f: &Fixture) -> Verifier {
    let v = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
        .jwks(f.jwks.clone())
        .build()
        .unwrap();
    v.update_revocations_at(list(&f.ed, 1, vec![]).jws(), NOW)
        .unwrap();
    v
}

/// Signs `payload` under an arbitrary header with `signer`'s key.
pub(super) fn sign_raw(signer: &Signer, header: &serde_json::Value, payload: &[u8]) -> String {
    signer
        .sign_compact(&encode_segment(header.to_string().as_bytes()), payload)
        .unwrap()
}

pub(super) fn header(signer: &Signer) -> serde_json::Value {
    serde_json::json!({"alg": signer.key().algorithm().as_str(), "typ": "at+jwt", "kid": signer.key().kid().as_str()})
}

pub(super) fn with_header(
    signer: &Signer,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> String {
    let mut h = header(signer);
    edit(h.as_object_mut().unwrap());
    sign_raw(signer, &h, &claims().to_json())
}

pub(super) fn with_claims(
    signer: &Signer,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> String {
    let mut c: serde_json::Value = serde_json::from_slice(&claims().to_json()).unwrap();
    edit(c.as_object_mut().unwrap());
    sign_raw(signer, &header(signer), c.to_string().as_bytes())
}
