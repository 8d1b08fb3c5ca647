//! Golden vectors: a JWKS, an access token and a signed revocation list made from the RFC 8037
//! Ed25519 key with pinned times and IDs. Ed25519 signatures are deterministic, so these bytes
//! must never change unless the format does; other implementations can test against them.
//!
//! Regenerate (and review the diff) with `KEYMINT_UPDATE_GOLDEN=1 cargo test -p keymint-tests --test golden`.
//! CI does the same and fails on any difference from the committed files (`.ci/run`, "golden
//! vectors regenerated").

mod common;

use std::path::PathBuf;

use base64::Engine as _;
use common::*;
use keymint_jwks::*;
use keymint_verifier::{Verifier, VerifyError};

fn rfc8037_signer() -> Signer {
    let seed: [u8; 32] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
        .unwrap()
        .try_into()
        .unwrap();
    Signer::new(SigningKey::ed25519_from_seed(&seed).unwrap())
}

fn revoked_list(signer: &Signer) -> SignedRevocationList {
    let entry = |target, at: u64| RevocationEntry {
        target,
        revoked_at: UnixTime(at),
        drop_after: UnixTime(at + 1_265),
    };
    signer
        .sign_revocation_list(&RevocationList {
            v: 1,
            iss: Issuer::new(ISS).unwrap(),
            serial: 42,
            iat: NOW,
            exp: UnixTime(NOW.0 + 86_400),
            entries: vec![
                entry(
                    RevocationTarget::Key(ApiKeyId::new("revokedKey1").unwrap()),
                    NOW.0 - 10,
                ),
                entry(
                    RevocationTarget::Jti(Jti::new("jti-revoked").unwrap()),
                    NOW.0 - 9,
                ),
                entry(
                    RevocationTarget::Tenant(TenantId::new("globex").unwrap()),
                    NOW.0 - 8,
                ),
                entry(
                    RevocationTarget::Kid(Kid::new("retired-kid-example").unwrap()),
                    NOW.0 - 7,
                ),
            ],
        })
        .unwrap()
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/golden")
}

fn check(name: &str, actual: &str) {
    let path = fixture_dir().join(name);
    if std::env::var_os("KEYMINT_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(fixture_dir()).unwrap();
        // Written aside and renamed into place: the other test reads these files meanwhile, and
        // must see the old bytes or the new ones, never a half-written file.
        let aside = path.with_extension("tmp");
        std::fs::write(&aside, format!("{actual}\n")).unwrap();
        std::fs::rename(&aside, &path).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with KEYMINT_UPDATE_GOLDEN=1", path.display()));
    assert_eq!(expected.trim_end(), actual, "{name} changed");
}

#[test]
fn golden_jwks_token_and_revocation_list_are_stable() {
    let signer = rfc8037_signer();
    let jwks = Jwks::new(vec![signer.key().public_jwk()]).unwrap();
    check("jwks.json", &jwks.to_json());
    check(
        "token_ed25519.jwt",
        &signer.sign_access_token(&claims()).unwrap(),
    );
    check("revocations.jws", revoked_list(&signer).jws());
}

#[test]
fn golden_files_verify_as_documented() {
    let dir = fixture_dir();
    let v = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
        .jwks_file(dir.join("jwks.json"))
        .revocation_list_file(dir.join("revocations.jws"))
        .clock(std::sync::Arc::new(keymint_verifier::clock::FixedClock(
            NOW,
        )))
        .build()
        .unwrap();
    assert_eq!(v.revocation_serial(), Some(42));
    let token = std::fs::read_to_string(dir.join("token_ed25519.jwt")).unwrap();
    let ok = v.verify(token.trim()).unwrap();
    assert_eq!(ok.claims(), &claims());
    assert_eq!(
        ok.kid().as_str(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );

    // The list's entries bite: a token of the revoked tenant issued before the revocation time
    // plus the propagation bound is refused, one issued after it is not.
    let globex = |iat: u64| {
        let mut c = claims();
        c.tenant = TenantId::new("globex").unwrap();
        c.iat = UnixTime(iat);
        c.nbf = None;
        rfc8037_signer().sign_access_token(&c).unwrap()
    };
    let cutoff = NOW.0 - 8 + PROPAGATION_BOUND.as_secs();
    assert!(matches!(
        v.verify(&globex(cutoff - 1)),
        Err(VerifyError::Revoked(RevocationTarget::Tenant(_)))
    ));
    assert!(v.verify(&globex(cutoff)).is_ok());
}
