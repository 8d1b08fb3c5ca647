//! The list rules through the public API (issue 13, point 3): `iat` within the leeway, the
//! validity cap, and the serial floor that goes with the key that signed the list in force.

use std::time::Duration;

use keymint_jwks::*;

use crate::*;

const NOW: UnixTime = UnixTime(1_800_000_000);
const ISS: &str = "https://issuer.example";
const AUD: &str = "https://api.example";
const DAY: u64 = 86_400;

fn signer() -> Signer {
    Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap())
}

fn jwks(signers: &[&Signer]) -> Jwks {
    Jwks::new(signers.iter().map(|s| s.key().public_jwk()).collect()).unwrap()
}

fn list_at(
    signer: &Signer,
    serial: u64,
    iat: u64,
    exp: u64,
    entries: Vec<RevocationEntry>,
) -> String {
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

fn list(signer: &Signer, serial: u64) -> String {
    list_at(signer, serial, NOW.0, NOW.0 + DAY, vec![])
}

fn revoking_kid(signer: &Signer, serial: u64, kid: &Kid) -> String {
    let entry = RevocationEntry {
        target: RevocationTarget::Kid(kid.clone()),
        revoked_at: NOW,
        drop_after: UnixTime(NOW.0 + 3_600),
    };
    list_at(signer, serial, NOW.0, NOW.0 + DAY, vec![entry])
}

fn verifier(keys: Jwks) -> Verifier {
    Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
        .jwks(keys)
        .build()
        .unwrap()
}

#[test]
fn a_list_issued_later_than_now_plus_the_leeway_is_refused() {
    let s = signer();
    let v = verifier(jwks(&[&s]));
    let leeway = DEFAULT_LEEWAY.as_secs();
    let ahead = list_at(&s, 1, NOW.0 + leeway + 1, NOW.0 + DAY, vec![]);
    match v.update_revocations_at(&ahead, NOW) {
        Err(UpdateError::IssuedInFuture { iat, now }) => {
            assert_eq!((iat, now), (UnixTime(NOW.0 + leeway + 1), NOW));
        }
        other => panic!("expected IssuedInFuture, got {other:?}"),
    }
    // Far ahead: the attack that would make it outlive every genuine list.
    let far = list_at(&s, 2, NOW.0 + 10 * DAY, NOW.0 + 11 * DAY, vec![]);
    assert!(matches!(
        v.update_revocations_at(&far, NOW),
        Err(UpdateError::IssuedInFuture { .. })
    ));
    assert_eq!(v.revocation_serial(), None);
    // Exactly the leeway ahead is a clock difference, not an attack.
    let edge = list_at(&s, 3, NOW.0 + leeway, NOW.0 + DAY, vec![]);
    assert_eq!(
        v.update_revocations_at(&edge, NOW).unwrap(),
        RevocationUpdate::Installed { serial: 3 }
    );
}

#[test]
fn a_list_valid_for_longer_than_the_cap_is_refused() {
    let s = signer();
    let v = verifier(jwks(&[&s]));
    let cap = MAX_LIST_VALIDITY.as_secs();
    assert_eq!(cap, 7 * DAY);
    // The year 3000.
    let forever = list_at(&s, 1, NOW.0, 32_503_680_000, vec![]);
    match v.update_revocations_at(&forever, NOW) {
        Err(UpdateError::ValidityTooLong { iat, exp, max }) => {
            assert_eq!(
                (iat, exp, max),
                (NOW, UnixTime(32_503_680_000), MAX_LIST_VALIDITY)
            );
        }
        other => panic!("expected ValidityTooLong, got {other:?}"),
    }
    let over = list_at(&s, 2, NOW.0, NOW.0 + cap + 1, vec![]);
    assert!(matches!(
        v.update_revocations_at(&over, NOW),
        Err(UpdateError::ValidityTooLong { .. })
    ));
    let at_cap = list_at(&s, 3, NOW.0, NOW.0 + cap, vec![]);
    assert_eq!(
        v.update_revocations_at(&at_cap, NOW).unwrap(),
        RevocationUpdate::Installed { serial: 3 }
    );
}

#[test]
fn the_validity_cap_can_be_lowered_but_not_raised() {
    let s = signer();
    let v = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
        .jwks(jwks(&[&s]))
        .max_revocation_list_validity(Duration::from_secs(DAY))
        .build()
        .unwrap();
    assert!(matches!(
        v.update_revocations_at(&list_at(&s, 1, NOW.0, NOW.0 + DAY + 1, vec![]), NOW),
        Err(UpdateError::ValidityTooLong { max, .. }) if max == Duration::from_secs(DAY)
    ));
    v.update_revocations_at(&list(&s, 2), NOW).unwrap();
    for bad in [Duration::ZERO, MAX_LIST_VALIDITY + Duration::from_secs(1)] {
        let built = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
            .jwks(jwks(&[&s]))
            .max_revocation_list_validity(bad)
            .build();
        assert!(
            matches!(built, Err(BuildError::ListValidityCap(d)) if d == bad),
            "{bad:?}"
        );
    }
}

/// Issue 13, point 3: a list with serial 2⁶⁴−1 signed by a key the verifier trusted at that moment
/// made every genuine list a rollback until restart. Once that key leaves the key set, the floor
/// goes with it.
#[test]
fn the_serial_floor_goes_when_the_key_that_signed_the_list_in_force_leaves_the_key_set() {
    let (genuine, stolen) = (signer(), signer());
    let v = verifier(jwks(&[&genuine, &stolen]));
    v.update_revocations_at(&list(&genuine, 5), NOW).unwrap();
    v.update_revocations_at(&list(&stolen, u64::MAX), NOW)
        .unwrap();
    // While the key is trusted, its serial binds.
    assert!(matches!(
        v.update_revocations_at(&list(&genuine, 6), NOW),
        Err(UpdateError::Rollback {
            current: u64::MAX,
            offered: 6
        })
    ));
    v.set_keys(jwks(&[&genuine]));
    assert_eq!(
        v.update_revocations_at(&list(&genuine, 6), NOW).unwrap(),
        RevocationUpdate::Installed { serial: 6 }
    );
    // And the genuine serial binds again from there.
    assert!(matches!(
        v.update_revocations_at(&list(&genuine, 5), NOW),
        Err(UpdateError::Rollback { .. })
    ));
}

#[test]
fn the_serial_floor_goes_when_the_key_that_signed_the_list_in_force_is_revoked() {
    let (genuine, stolen) = (signer(), signer());
    let v = verifier(jwks(&[&genuine, &stolen]));
    v.update_revocations_at(&list(&stolen, u64::MAX), NOW)
        .unwrap();
    // The issuer revokes the stolen key; verifiers get the list before the key set drops it.
    let revoking = revoking_kid(&genuine, 7, stolen.key().kid());
    assert_eq!(
        v.update_revocations_at(&revoking, NOW).unwrap(),
        RevocationUpdate::Installed { serial: 7 }
    );
    let token = stolen
        .sign_access_token(&Claims {
            iss: Issuer::new(ISS).unwrap(),
            sub: ApiKeyId::new("key1").unwrap(),
            aud: Audience::new(AUD).unwrap(),
            exp: UnixTime(NOW.0 + 600),
            iat: NOW,
            nbf: None,
            jti: Jti::new("jti-1").unwrap(),
            client_id: ClientId::new("key1").unwrap(),
            scope: ScopeSet::parse("a").unwrap(),
            tenant: TenantId::new("acme").unwrap(),
            cnf: None,
        })
        .unwrap();
    assert!(matches!(
        v.verify_at(&token, NOW),
        Err(VerifyError::Revoked(RevocationTarget::Kid(_)))
    ));
}

#[test]
fn without_a_serial_floor_an_older_list_is_still_refused() {
    let (genuine, stolen) = (signer(), signer());
    let v = verifier(jwks(&[&genuine, &stolen]));
    let old = list_at(&genuine, 3, NOW.0 - 2 * 3_600, NOW.0 + DAY, vec![]);
    v.update_revocations_at(&list(&stolen, u64::MAX), NOW)
        .unwrap();
    v.set_keys(jwks(&[&genuine]));
    // Issued two hours before the list in force: a replay, refused whatever its serial.
    match v.update_revocations_at(&old, NOW) {
        Err(UpdateError::IssuedBeforeInForce {
            offered_iat,
            current_iat,
        }) => assert_eq!((offered_iat, current_iat), (UnixTime(NOW.0 - 7_200), NOW)),
        other => panic!("expected IssuedBeforeInForce, got {other:?}"),
    }
    // Within the leeway of it: a clock difference between replicas, accepted.
    let leeway = DEFAULT_LEEWAY.as_secs();
    let close = list_at(&genuine, 4, NOW.0 - leeway, NOW.0 + DAY, vec![]);
    assert_eq!(
        v.update_revocations_at(&close, NOW).unwrap(),
        RevocationUpdate::Installed { serial: 4 }
    );
}
