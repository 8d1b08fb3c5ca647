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

/// A token of key `sub` with its own `jti`, expiring at `exp`.
fn token_of(f: &Fixture, sub: &str, n: usize, exp: UnixTime) -> String {
    let mut c = claims();
    c.sub = ApiKeyId::new(sub).unwrap();
    c.jti = Jti::new(format!("jti-{sub}-{n}")).unwrap();
    c.exp = exp;
    f.ed.sign_access_token(&c).unwrap()
}

/// Presents tokens of `sub` (`jti` 1, 2, …) until one is not cached (its share is full): the next
/// unused `jti` number.
fn fill_share(f: &Fixture, v: &Verifier, sub: &str, exp: UnixTime) -> usize {
    for n in 1..1_000 {
        let t = token_of(f, sub, n, exp);
        v.verify_at(&t, NOW).unwrap();
        if !v.is_cached(&t) {
            return n + 1;
        }
    }
    panic!("the share of {sub} never filled")
}

fn verifier_with_cache(f: &Fixture, bytes: u64) -> Verifier {
    let v = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
        .jwks(f.jwks.clone())
        .cache_capacity_bytes(bytes)
        .build()
        .unwrap();
    v.update_revocations_at(list(&f.ed, 1, vec![]).jws(), NOW)
        .unwrap();
    v
}

/// One key presenting more valid tokens than the whole cache holds fills only its own share (10 %
/// of the budget): another key's cached token stays cached, and the flood's surplus is verified
/// as usual, just not cached.
#[test]
fn one_keys_tokens_cannot_flush_another_keys_from_the_cache() {
    let f = fixture();
    let budget = 256 * 1024;
    let v = verifier_with_cache(&f, budget);
    let exp = UnixTime(NOW.0 + 600);
    let other = token_of(&f, "other", 0, exp);
    v.verify_at(&other, NOW).unwrap();
    assert!(v.is_cached(&other));

    let weight = other.len() as u64 + crate::cache::ENTRY_OVERHEAD;
    let whole_cache = (budget / weight) as usize;
    let mut cached = 0;
    for n in 0..whole_cache + 50 {
        let t = token_of(&f, "flooder", n, exp);
        let verified = v.verify_at(&t, NOW).unwrap();
        assert_eq!(verified.claims().sub.as_str(), "flooder");
        cached += usize::from(v.is_cached(&t));
    }
    let share = (budget * crate::DEFAULT_CACHE_SHARE_PERCENT).div_ceil(100) / weight;
    assert!(
        cached >= 1 && cached as u64 <= share,
        "{cached} cached, share {share}"
    );
    assert!(v.is_cached(&other), "the flood evicted another key's token");
    assert_eq!(v.cached_tokens(), cached + 1);
    // A key with nothing cached yet is still cached at once.
    let newcomer = token_of(&f, "newcomer", 0, exp);
    v.verify_at(&newcomer, NOW).unwrap();
    assert!(v.is_cached(&newcomer));
}

/// A key past its share is cached again once its earlier tokens can no longer pass (`exp` plus
/// the leeway), not before.
#[test]
fn a_key_past_its_share_is_cached_again_once_its_tokens_expire() {
    let f = fixture();
    let budget = 64 * 1024;
    let v = verifier_with_cache(&f, budget);
    let exp = UnixTime(NOW.0 + 600);
    let n = fill_share(&f, &v, "busy", exp);
    let leeway = DEFAULT_LEEWAY.as_secs();
    let later = UnixTime(exp.0 + 1_200);
    let t = token_of(&f, "busy", n, later);
    v.verify_at(&t, UnixTime(exp.0 + leeway - 1)).unwrap();
    assert!(!v.is_cached(&t));
    v.verify_at(&t, UnixTime(exp.0 + leeway)).unwrap();
    assert!(v.is_cached(&t));
}

/// A token that leaves the cache stops counting against its key at once: a key past its share
/// whose tokens were all purged (their signing key left the key set) is cached again before they
/// would have expired.
#[test]
fn a_key_whose_tokens_left_the_cache_is_cached_again_at_once() {
    let f = fixture();
    let v = verifier_with_cache(&f, 64 * 1024);
    let exp = UnixTime(NOW.0 + 600);
    fill_share(&f, &v, "busy", exp);
    let mut c = claims();
    c.sub = ApiKeyId::new("busy").unwrap();
    c.jti = Jti::new("jti-es").unwrap();
    let by_es = f.es.sign_access_token(&c).unwrap();
    v.verify_at(&by_es, NOW).unwrap();
    assert!(!v.is_cached(&by_es), "the share was not full");
    // The Ed25519 key leaves the set: its tokens leave the cache, and with them the share.
    v.set_keys(Jwks::new(vec![f.es.key().public_jwk()]).unwrap());
    assert_eq!(v.cached_tokens(), 0);
    v.verify_at(&by_es, NOW).unwrap();
    assert!(v.is_cached(&by_es));
}

/// An expired token presented again leaves the cache at once: its holder cannot keep it cached
/// (and fresh in the cache's eyes) after its share was released at `exp` plus the leeway.
#[test]
fn an_expired_token_presented_again_leaves_the_cache() {
    let f = fixture();
    let v = verifier(&f);
    let exp = UnixTime(NOW.0 + 600);
    let t = token_of(&f, "key1", 0, exp);
    v.verify_at(&t, NOW).unwrap();
    assert!(v.is_cached(&t));
    let late = UnixTime(exp.0 + DEFAULT_LEEWAY.as_secs());
    assert!(matches!(
        v.verify_at(&t, late),
        Err(VerifyError::Expired { .. })
    ));
    assert!(!v.is_cached(&t));
}

/// A token that can no longer pass leaves the cache when the next token is cached, even if it is
/// never presented again: no longer counted against its key, it would otherwise hold part of the
/// budget until evicted (a key minting short-lived tokens could fill the cache with them).
#[test]
fn a_token_past_its_time_leaves_the_cache_when_the_next_token_is_cached() {
    let f = fixture();
    let v = verifier(&f);
    let short = token_of(&f, "key1", 0, UnixTime(NOW.0 + 60));
    v.verify_at(&short, NOW).unwrap();
    assert!(v.is_cached(&short));
    let due = UnixTime(NOW.0 + 60 + DEFAULT_LEEWAY.as_secs());
    let other = token_of(&f, "key2", 0, UnixTime(NOW.0 + 600));
    v.verify_at(&other, UnixTime(due.0 - 1)).unwrap();
    assert!(v.is_cached(&short), "still able to pass");
    let third = token_of(&f, "key2", 1, UnixTime(NOW.0 + 600));
    v.verify_at(&third, due).unwrap();
    assert!(!v.is_cached(&short));
    assert_eq!(v.cached_tokens(), 2);
}
