//! Forged revocation lists (issue 13, point 3): a list signed by a key the verifier trusts at that
//! moment (a stolen key, or one about to be retired) must not be able to vouch for ever or to make
//! every genuine list a rollback. Each entry offers the forged list, then checks over HTTP that a
//! genuine list revoking the control token still takes effect.

use keymint_jwks::*;
use keymint_verifier::{UpdateError, Verifier};

use crate::common::{ISS, NOW, claims};
use crate::harness::api;

const DAY: u64 = 86_400;

fn list(signer: &Signer, serial: u64, iat: u64, exp: u64, entries: Vec<RevocationEntry>) -> String {
    signer
        .sign_revocation_list(&RevocationList {
            v: 1,
            iss: Issuer::new(ISS).unwrap(),
            serial,
            iat: UnixTime(iat),
            exp: UnixTime(exp),
            entries,
        })
        .unwrap()
        .jws()
        .to_owned()
}

/// The genuine list that revokes the control token (`jti`), with this serial.
fn revoking_the_control_token(signer: &Signer, serial: u64) -> String {
    let entry = RevocationEntry {
        target: RevocationTarget::Jti(claims().jti),
        revoked_at: NOW,
        drop_after: UnixTime(NOW.0 + 3_600),
    };
    list(signer, serial, NOW.0, NOW.0 + DAY, vec![entry])
}

fn genuine_revocation_takes_effect(verifier: &Verifier, signer: &Signer, serial: u64) {
    verifier
        .update_revocations(&revoking_the_control_token(signer, serial))
        .unwrap();
}

#[test]
fn a_list_issued_far_in_the_future_is_refused() {
    let api = api();
    // Signed "ten days from now", valid for a day from then: it would outlive every genuine list.
    let ahead = list(&api.ed, 2, NOW.0 + 10 * DAY, NOW.0 + 11 * DAY, vec![]);
    assert!(
        matches!(
            api.verifier.update_revocations(&ahead),
            Err(UpdateError::IssuedInFuture { .. })
        ),
        "a list from the future was installed"
    );
    api.assert_accepted(&api.good(), "the list in force stands");
    genuine_revocation_takes_effect(&api.verifier, &api.ed, 3);
    api.assert_refused(
        &api.good(),
        "revoked",
        "a genuine revocation after the forgery",
    );
}

#[test]
fn a_list_valid_until_the_year_3000_is_refused() {
    let api = api();
    // Installed, the verifier would never fail closed again, whatever happened to the issuer.
    let forever = list(&api.ed, 2, NOW.0, 32_503_680_000, vec![]);
    assert!(
        matches!(
            api.verifier.update_revocations(&forever),
            Err(UpdateError::ValidityTooLong { .. })
        ),
        "a list valid for a thousand years was installed"
    );
    let just_over = list(&api.ed, 2, NOW.0, NOW.0 + 7 * DAY + 1, vec![]);
    assert!(matches!(
        api.verifier.update_revocations(&just_over),
        Err(UpdateError::ValidityTooLong { .. })
    ));
    assert_eq!(api.verifier.revocation_serial(), Some(1));
    genuine_revocation_takes_effect(&api.verifier, &api.ed, 2);
    api.assert_refused(
        &api.good(),
        "revoked",
        "a genuine revocation after the forgery",
    );
}

#[test]
fn a_serial_of_two_to_the_64_minus_1_stops_binding_once_its_key_leaves_the_key_set() {
    let api = api();
    // The P-256 key is stolen; the thief signs the highest serial there is, lifting everything.
    api.verifier
        .update_revocations(&list(&api.es, u64::MAX, NOW.0, NOW.0 + DAY, vec![]))
        .unwrap();
    // While the key is trusted, its serial binds (that is what a serial is for).
    assert!(matches!(
        api.verifier
            .update_revocations(&revoking_the_control_token(&api.ed, 2)),
        Err(UpdateError::Rollback { .. })
    ));
    api.assert_accepted(&api.good(), "before the stolen key is dropped");
    // The issuer drops the stolen key from its key set: the serial floor goes with it.
    api.verifier
        .set_keys(Jwks::new(vec![api.ed.key().public_jwk()]).unwrap());
    genuine_revocation_takes_effect(&api.verifier, &api.ed, 2);
    api.assert_refused(
        &api.good(),
        "revoked",
        "a genuine list after the stolen key left",
    );
}

#[test]
fn a_serial_of_two_to_the_64_minus_1_stops_binding_once_its_key_is_revoked() {
    let api = api();
    api.verifier
        .update_revocations(&list(&api.es, u64::MAX, NOW.0, NOW.0 + DAY, vec![]))
        .unwrap();
    // The genuine list that revokes the stolen key (and the control token) arrives before the
    // key set drops the key: it is installed whatever its serial.
    let entries = vec![
        RevocationEntry {
            target: RevocationTarget::Kid(api.es.key().kid().clone()),
            revoked_at: NOW,
            drop_after: UnixTime(NOW.0 + 3_600),
        },
        RevocationEntry {
            target: RevocationTarget::Jti(claims().jti),
            revoked_at: NOW,
            drop_after: UnixTime(NOW.0 + 3_600),
        },
    ];
    api.verifier
        .update_revocations(&list(&api.ed, 2, NOW.0, NOW.0 + DAY, entries))
        .unwrap();
    api.assert_refused(
        &api.good(),
        "revoked",
        "a genuine list revoking the stolen key",
    );
    // The thief's key can no longer speak for the issuer.
    assert!(matches!(
        api.verifier
            .update_revocations(&list(&api.es, u64::MAX, NOW.0, NOW.0 + DAY, vec![])),
        Err(UpdateError::SignedByRevokedKey { .. })
    ));
}
