//! The verified-token cache: what a repeated token skips and what is checked again, and when
//! entries go.

use super::*;

#[test]
fn repeated_token_comes_from_the_cache_but_expiry_and_revocation_are_rechecked() {
    let f = fixture();
    let v = verifier(&f);
    let t = f.ed.sign_access_token(&claims()).unwrap();
    assert_eq!(v.cached_tokens(), 0);
    let first = v.verify_at(&t, NOW).unwrap();
    assert_eq!(v.cached_tokens(), 1);
    assert_eq!(v.verify_at(&t, NOW).unwrap(), first);
    // Expiry on a hit.
    assert!(matches!(
        v.verify_at(&t, UnixTime(NOW.0 + 660)),
        Err(VerifyError::Expired { .. })
    ));
    // Revocation on a hit.
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
    assert!(matches!(v.verify_at(&t, NOW), Err(VerifyError::Revoked(_))));
}

/// A cached token remembers the list it was last found unrevoked in and skips the lookups while
/// that list is in force (issue #14): every new list, whatever it holds, is looked up again, and
/// a lifted revocation lets the token through again.
#[test]
fn a_cached_token_is_looked_up_again_in_every_new_list() {
    let f = fixture();
    let v = verifier(&f);
    let t = f.ed.sign_access_token(&claims()).unwrap();
    let jti = || {
        vec![entry(
            RevocationTarget::Jti(Jti::new("jti-1").unwrap()),
            NOW,
        )]
    };
    let tenant = || {
        vec![entry(
            RevocationTarget::Tenant(TenantId::new("acme").unwrap()),
            NOW,
        )]
    };
    v.verify_at(&t, NOW).unwrap();
    v.verify_at(&t, NOW).unwrap();
    // Revoked by one list, then by another of another kind, then by none.
    v.update_revocations_at(list(&f.ed, 2, jti()).jws(), NOW)
        .unwrap();
    for _ in 0..2 {
        assert!(matches!(
            v.verify_at(&t, NOW),
            Err(VerifyError::Revoked(RevocationTarget::Jti(_)))
        ));
    }
    v.update_revocations_at(list(&f.ed, 3, tenant()).jws(), NOW)
        .unwrap();
    assert!(matches!(
        v.verify_at(&t, NOW),
        Err(VerifyError::Revoked(RevocationTarget::Tenant(_)))
    ));
    v.update_revocations_at(list(&f.ed, 4, vec![]).jws(), NOW)
        .unwrap();
    assert!(v.verify_at(&t, NOW).is_ok());
    assert!(v.verify_at(&t, NOW).is_ok());
    // Found unrevoked in list 4, then list 5 revokes it: the memo of list 4 does not carry over.
    v.update_revocations_at(list(&f.ed, 5, jti()).jws(), NOW)
        .unwrap();
    assert!(matches!(v.verify_at(&t, NOW), Err(VerifyError::Revoked(_))));
}

#[test]
fn cache_entries_go_when_their_kid_leaves_the_key_set() {
    let f = fixture();
    let v = verifier(&f);
    let ed = f.ed.sign_access_token(&claims()).unwrap();
    let es = f.es.sign_access_token(&claims()).unwrap();
    v.verify_at(&ed, NOW).unwrap();
    v.verify_at(&es, NOW).unwrap();
    assert_eq!(v.cached_tokens(), 2);
    v.set_keys(Jwks::new(vec![f.es.key().public_jwk()]).unwrap());
    assert_eq!(v.cached_tokens(), 1);
    assert!(matches!(
        v.verify_at(&ed, NOW),
        Err(VerifyError::UnknownKid { .. })
    ));
    assert!(v.verify_at(&es, NOW).is_ok());
}

#[test]
fn a_kid_revocation_purges_its_cached_tokens() {
    let f = fixture();
    let v = verifier(&f);
    v.verify_at(&f.ed.sign_access_token(&claims()).unwrap(), NOW)
        .unwrap();
    v.verify_at(&f.es.sign_access_token(&claims()).unwrap(), NOW)
        .unwrap();
    v.update_revocations_at(
        list(
            &f.es,
            2,
            vec![entry(RevocationTarget::Kid(f.ed.key().kid().clone()), NOW)],
        )
        .jws(),
        NOW,
    )
    .unwrap();
    assert_eq!(v.cached_tokens(), 1);
}

#[test]
fn verifier_is_send_sync_and_shared_across_threads_while_lists_change() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Verifier>();
    let f = fixture();
    let v = verifier(&f);
    let token = f.ed.sign_access_token(&claims()).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let v = v.clone();
            let token = token.clone();
            s.spawn(move || {
                for _ in 0..200 {
                    match v.verify_at(&token, NOW) {
                        Ok(_) | Err(VerifyError::Revoked(_)) => {}
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
            });
        }
        for serial in 2..50 {
            let entries = if serial % 2 == 0 {
                vec![]
            } else {
                vec![entry(
                    RevocationTarget::Jti(Jti::new("jti-1").unwrap()),
                    NOW,
                )]
            };
            v.update_revocations_at(list(&f.ed, serial, entries).jws(), NOW)
                .unwrap();
        }
    });
    assert_eq!(v.revocation_serial(), Some(49));
    assert!(matches!(
        v.verify_at(&token, NOW),
        Err(VerifyError::Revoked(_))
    ));
}
