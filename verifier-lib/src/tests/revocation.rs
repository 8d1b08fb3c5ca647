//! Revocation: each kind of entry, lists that fail closed, and the rules for installing a list.

use super::*;

#[test]
fn revocation_by_key_jti_tenant_and_kid() {
    let f = fixture();
    let token = f.ed.sign_access_token(&claims()).unwrap();
    let cases = [
        // A key entry revokes even tokens issued after the revocation time.
        RevocationTarget::Key(ApiKeyId::new("key1").unwrap()),
        RevocationTarget::Jti(Jti::new("jti-1").unwrap()),
        RevocationTarget::Tenant(TenantId::new("acme").unwrap()),
        RevocationTarget::Kid(f.ed.key().kid().clone()),
    ];
    for target in cases {
        let v = verifier(&f);
        assert!(v.verify_at(&token, NOW).is_ok());
        let revoked_at = match target {
            RevocationTarget::Key(_) => UnixTime(NOW.0 - 100),
            _ => NOW,
        };
        v.update_revocations_at(
            list(&f.ed, 2, vec![entry(target.clone(), revoked_at)]).jws(),
            NOW,
        )
        .unwrap();
        assert_eq!(
            v.verify_at(&token, NOW),
            Err(VerifyError::Revoked(target.clone()))
        );
    }
}

#[test]
fn tenant_entry_spares_tokens_issued_after_the_propagation_bound() {
    let f = fixture();
    let v = verifier(&f);
    let revoked_at = UnixTime(NOW.0 - 100);
    v.update_revocations_at(
        list(
            &f.ed,
            2,
            vec![entry(
                RevocationTarget::Tenant(TenantId::new("acme").unwrap()),
                revoked_at,
            )],
        )
        .jws(),
        NOW,
    )
    .unwrap();
    let cutoff = revoked_at.0 + PROPAGATION_BOUND.as_secs();
    let at = |iat: u64| {
        let mut c = claims();
        c.iat = UnixTime(iat);
        c.nbf = None;
        f.ed.sign_access_token(&c).unwrap()
    };
    assert!(matches!(
        v.verify_at(&at(cutoff - 1), NOW),
        Err(VerifyError::Revoked(_))
    ));
    assert!(v.verify_at(&at(cutoff), NOW).is_ok());
}

#[test]
fn other_tokens_survive_a_jti_revocation() {
    let f = fixture();
    let v = verifier(&f);
    v.update_revocations_at(
        list(
            &f.ed,
            2,
            vec![entry(
                RevocationTarget::Jti(Jti::new("jti-1").unwrap()),
                NOW,
            )],
        )
        .jws(),
        NOW,
    )
    .unwrap();
    let mut c = claims();
    c.jti = Jti::new("jti-2").unwrap();
    assert!(
        v.verify_at(&f.ed.sign_access_token(&c).unwrap(), NOW)
            .is_ok()
    );
}

#[test]
fn no_list_or_an_expired_list_fails_closed() {
    let f = fixture();
    let v = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
        .jwks(f.jwks.clone())
        .build()
        .unwrap();
    let t = f.ed.sign_access_token(&claims()).unwrap();
    let err = v.verify_at(&t, NOW).unwrap_err();
    assert_eq!(err, VerifyError::NoRevocationList);
    assert!(err.is_unavailable());

    v.update_revocations_at(list(&f.ed, 1, vec![]).jws(), NOW)
        .unwrap();
    let list_exp = UnixTime(NOW.0 + 86_400);
    let mut c = claims();
    c.exp = UnixTime(list_exp.0 + 600);
    let long = f.ed.sign_access_token(&c).unwrap();
    assert!(v.verify_at(&long, UnixTime(list_exp.0 - 1)).is_ok());
    let err = v.verify_at(&long, list_exp).unwrap_err();
    assert_eq!(
        err,
        VerifyError::RevocationListExpired {
            exp: list_exp,
            now: list_exp
        }
    );
    assert!(err.is_unavailable());
}

#[test]
fn dangerous_skip_revocation_needs_no_list() {
    let f = fixture();
    let v = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
        .jwks(f.jwks.clone())
        .dangerous()
        .skip_revocation_checks()
        .build()
        .unwrap();
    assert!(
        v.verify_at(&f.ed.sign_access_token(&claims()).unwrap(), NOW)
            .is_ok()
    );
}

#[test]
fn list_updates_refuse_rollback_conflict_foreign_and_expired_lists() {
    let f = fixture();
    let v = verifier(&f);
    let l5 = list(&f.ed, 5, vec![]);
    assert_eq!(
        v.update_revocations_at(l5.jws(), NOW).unwrap(),
        RevocationUpdate::Installed { serial: 5 }
    );
    assert_eq!(
        v.update_revocations_at(l5.jws(), NOW).unwrap(),
        RevocationUpdate::Unchanged { serial: 5 }
    );
    assert!(matches!(
        v.update_revocations_at(list(&f.ed, 4, vec![]).jws(), NOW),
        Err(UpdateError::Rollback {
            current: 5,
            offered: 4
        })
    ));
    // Same serial, other bytes (ES256 re-signs differently every time).
    assert!(matches!(
        v.update_revocations_at(list(&f.es, 5, vec![]).jws(), NOW),
        Err(UpdateError::SerialConflict { serial: 5 })
    ));
    assert!(matches!(
        v.update_revocations_at(list(&f.other, 6, vec![]).jws(), NOW),
        Err(UpdateError::List(RevocationListError::UnknownKid(_)))
    ));
    let foreign =
        f.ed.sign_revocation_list(&RevocationList {
            v: 1,
            iss: Issuer::new("https://evil.example").unwrap(),
            serial: 7,
            iat: NOW,
            exp: UnixTime(NOW.0 + 10),
            entries: vec![],
        })
        .unwrap();
    assert!(matches!(
        v.update_revocations_at(foreign.jws(), NOW),
        Err(UpdateError::List(RevocationListError::WrongIssuer { .. }))
    ));
    assert!(matches!(
        v.update_revocations_at(list(&f.ed, 8, vec![]).jws(), UnixTime(NOW.0 + 86_400)),
        Err(UpdateError::Expired { .. })
    ));
    // A token is never a list.
    let token = f.ed.sign_access_token(&claims()).unwrap();
    assert!(matches!(
        v.update_revocations_at(&token, NOW),
        Err(UpdateError::List(RevocationListError::WrongType))
    ));
    assert_eq!(v.revocation_serial(), Some(5));
}

#[test]
fn a_list_signed_by_a_kid_the_list_in_force_revokes_is_refused_and_the_list_in_force_stays() {
    let f = fixture();
    let v = verifier(&f);
    let revoke_ed = entry(RevocationTarget::Kid(f.ed.key().kid().clone()), NOW);
    v.update_revocations_at(list(&f.es, 2, vec![revoke_ed]).jws(), NOW)
        .unwrap();
    // The revoked key is still in the key set; with it, a newer list that lifts its revocation.
    let lifting = list(&f.ed, 3, vec![]);
    match v.update_revocations_at(lifting.jws(), NOW) {
        Err(UpdateError::SignedByRevokedKey { kid }) => assert_eq!(&kid, f.ed.key().kid()),
        other => panic!("expected SignedByRevokedKey, got {other:?}"),
    }
    assert_eq!(v.revocation_serial(), Some(2));
    let token = f.ed.sign_access_token(&claims()).unwrap();
    assert_eq!(
        v.verify_at(&token, NOW),
        Err(VerifyError::Revoked(RevocationTarget::Kid(
            f.ed.key().kid().clone()
        )))
    );
    // A key that is not revoked still moves the list forward.
    assert_eq!(
        v.update_revocations_at(list(&f.es, 3, vec![]).jws(), NOW)
            .unwrap(),
        RevocationUpdate::Installed { serial: 3 }
    );
}

#[test]
fn files_written_by_publish_are_read() {
    let f = fixture();
    let dir = std::env::temp_dir().join(format!("keymint-verifier-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("jwks.json"), f.jwks.to_json()).unwrap();
    std::fs::write(dir.join("revocations.jws"), list(&f.ed, 3, vec![]).jws()).unwrap();
    let v = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
        .jwks_file(dir.join("jwks.json"))
        .revocation_list_file(dir.join("revocations.jws"))
        .clock(std::sync::Arc::new(clock::FixedClock(NOW)))
        .build()
        .unwrap();
    assert_eq!(v.revocation_serial(), Some(3));
    assert!(
        v.verify(&f.ed.sign_access_token(&claims()).unwrap())
            .is_ok()
    );
    std::fs::write(dir.join("jwks.json"), "garbage").unwrap();
    assert!(matches!(
        v.set_keys_from_file(&dir.join("jwks.json")),
        Err(BuildError::Keys(_))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}
