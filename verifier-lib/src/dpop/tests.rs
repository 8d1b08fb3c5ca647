//! The DPoP checks and the replay cache's bounds.

use super::*;
use keymint_jwks::dpop::make_proof;
use keymint_jwks::{Algorithm, SigningKey};

const NOW: UnixTime = UnixTime(1_800_000_000);

fn req<'a>(token: Option<&'a str>, jkt: Option<&'a keymint_jwks::Jkt>) -> ProofRequirements<'a> {
    ProofRequirements {
        method: "GET",
        url: "https://api.example/orders?page=2",
        access_token: token,
        bound_jkt: jkt,
    }
}

/// Checks and records, as a verifier does for a token whose `sub` is `k1`.
fn check_and_claim(
    proof: &str,
    r: &ProofRequirements<'_>,
    cache: &ReplayCache,
    now: UnixTime,
) -> Result<DpopProof, ProofError> {
    let p = check_proof(proof, r, None, DEFAULT_PROOF_WINDOW_SECS, now)?;
    cache.record("k1", &p, DEFAULT_PROOF_WINDOW_SECS, now)?;
    Ok(p)
}

fn proof_at(key: &SigningKey, iat: UnixTime, jti: &str) -> String {
    let ath = access_token_hash("tok");
    make_proof(
        key,
        "GET",
        "https://api.example/orders",
        iat,
        jti,
        Some(&ath),
        None,
    )
    .unwrap()
}

#[test]
fn a_matching_proof_passes_once_and_its_replay_is_refused() {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let p = proof_at(&key, NOW, "j1");
    let cache = ReplayCache::new(1000);
    let ok = check_and_claim(
        &p,
        &req(
            Some("tok"),
            Some(&keymint_jwks::Jkt::new(key.kid().as_str()).unwrap()),
        ),
        &cache,
        NOW,
    )
    .unwrap();
    assert_eq!(ok.jkt.as_str(), key.kid().as_str());
    assert!(
        matches!(check_and_claim(&p, &req(Some("tok"), None), &cache, NOW), Err(ProofError::Invalid(m)) if m.contains("replayed"))
    );
}

#[test]
fn a_proof_dated_more_than_five_seconds_ahead_is_refused() {
    let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let cache = ReplayCache::new(1000);
    let five = proof_at(&key, UnixTime(NOW.0 + MAX_PROOF_FUTURE_SECS), "five");
    check_and_claim(&five, &req(Some("tok"), None), &cache, NOW).unwrap();
    for ahead in [MAX_PROOF_FUTURE_SECS + 1, 30, 55] {
        let p = proof_at(&key, UnixTime(NOW.0 + ahead), &format!("ahead{ahead}"));
        assert!(
            matches!(check_and_claim(&p, &req(Some("tok"), None), &cache, NOW), Err(ProofError::Invalid(m)) if m.contains("future")),
            "{ahead} s ahead"
        );
    }
    assert_eq!(cache.len(), 1, "refused proofs take no room");
}

#[test]
fn a_future_dated_proof_is_remembered_for_its_whole_window() {
    let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let ahead = UnixTime(NOW.0 + MAX_PROOF_FUTURE_SECS);
    let p = proof_at(&key, ahead, "ahead");
    let cache = ReplayCache::new(1000);
    check_and_claim(&p, &req(Some("tok"), None), &cache, NOW).unwrap();
    // Still acceptable at iat + window: its ID must still be there.
    let last = UnixTime(ahead.0 + DEFAULT_PROOF_WINDOW_SECS);
    assert!(
        matches!(
            check_and_claim(&p, &req(Some("tok"), None), &cache, last),
            Err(ProofError::Invalid(m)) if m.contains("replayed")
        ),
        "the proof is still inside its window, so its ID must still be remembered"
    );
}

#[test]
fn replay_until_covers_the_whole_window_of_the_proof() {
    assert_eq!(replay_until(NOW, NOW, 60), UnixTime(NOW.0 + 61));
    assert_eq!(
        replay_until(UnixTime(NOW.0 + 5), NOW, 60),
        UnixTime(NOW.0 + 66)
    );
    assert_eq!(
        replay_until(UnixTime(NOW.0 - 60), NOW, 60),
        UnixTime(NOW.0 + 61)
    );
}

#[test]
fn mismatches_are_refused_and_take_no_room() {
    let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let other = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let ath = access_token_hash("tok");
    let cache = ReplayCache::new(100);
    let make = |k: &SigningKey, m: &str, u: &str, iat: u64, jti: &str, ath: Option<&str>| {
        make_proof(k, m, u, UnixTime(iat), jti, ath, None).unwrap()
    };
    let orders = "https://api.example/orders";
    let cases = [
        make(&key, "POST", orders, NOW.0, "a", Some(&ath)),
        make(
            &key,
            "GET",
            "https://api.example/other",
            NOW.0,
            "b",
            Some(&ath),
        ),
        make(&key, "GET", orders, NOW.0 - 61, "c", Some(&ath)),
        make(&key, "GET", orders, NOW.0 + 6, "d", Some(&ath)),
        make(&key, "GET", orders, NOW.0, "e", Some("wrong")),
        make(&key, "GET", orders, NOW.0, "f", None),
        make(&other, "GET", orders, NOW.0, "g", Some(&ath)),
    ];
    for (i, p) in cases.iter().enumerate() {
        let r = check_and_claim(
            p,
            &req(
                Some("tok"),
                Some(&keymint_jwks::Jkt::new(key.kid().as_str()).unwrap()),
            ),
            &cache,
            NOW,
        );
        assert!(matches!(r, Err(ProofError::Invalid(_))), "case {i}: {r:?}");
    }
    assert!(
        cache.is_empty(),
        "refused proofs must not fill the replay cache"
    );
}

#[test]
fn a_full_cache_refuses_new_proofs_and_frees_expired_ones() {
    let cache = ReplayCache::with_limits(ReplayLimits {
        capacity: 2,
        per_holder: 2,
        per_jkt: 2,
    });
    let until = UnixTime(NOW.0 + 10);
    cache.check_and_record("a", "k", "1", until, NOW).unwrap();
    cache.check_and_record("b", "k", "2", until, NOW).unwrap();
    assert_eq!(
        cache.check_and_record("c", "j", "3", until, NOW),
        Err(ProofError::CacheFull)
    );
    // Once the first two have expired, there is room again.
    cache
        .check_and_record("c", "j", "3", UnixTime(NOW.0 + 30), UnixTime(NOW.0 + 10))
        .unwrap();
    assert_eq!(cache.len(), 1);
}

#[test]
fn one_flooding_key_is_refused_alone_even_when_it_rotates_its_dpop_key() {
    // 1 % of 10,000: 100 live proofs per key, and half of that, 50, per jkt.
    let cache = ReplayCache::new(10_000);
    let until = UnixTime(NOW.0 + 66);
    let mut refused = 0;
    for n in 0..5_000 {
        // A fresh jkt every time: only the per-key share can stop this.
        match cache.check_and_record("flooder", &format!("jkt{n}"), "x", until, NOW) {
            Ok(()) => {}
            Err(ProofError::OverQuota {
                who: "key",
                retry_after_secs,
            }) => {
                assert_eq!(retry_after_secs, 66);
                refused += 1;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(refused, 4_900);
    assert_eq!(cache.len(), 100);
    // One DPoP key shared by many holders is bound by its own share.
    for n in 0..50 {
        cache
            .check_and_record(&format!("h{n}"), "shared", &format!("{n}"), until, NOW)
            .unwrap();
    }
    assert!(matches!(
        cache.check_and_record("h-new", "shared", "more", until, NOW),
        Err(ProofError::OverQuota { who: "jkt", .. })
    ));
    // Everyone else goes on.
    cache
        .check_and_record("victim", "victim-jkt", "1", until, NOW)
        .unwrap();
    // The flooder's share comes back as its proofs fall due.
    cache
        .check_and_record("flooder", "again", "y", UnixTime(NOW.0 + 200), until)
        .unwrap();
}

#[test]
fn one_dpop_key_flooding_under_a_shared_key_leaves_the_keys_other_dpop_keys_room() {
    // A publishable key used by many browsers; one of them floods proofs with its one DPoP key.
    let cache = ReplayCache::new(10_000);
    let limits = ReplayLimits::with_capacity(10_000);
    assert_eq!((limits.per_holder, limits.per_jkt), (100, 50));
    let until = UnixTime(NOW.0 + 66);
    let mut refused = 0;
    for n in 0..1_000 {
        match cache.check_and_record("pk", "flooding-browser", &format!("{n}"), until, NOW) {
            Ok(()) => {}
            Err(ProofError::OverQuota { who: "jkt", .. }) => refused += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(refused, 1_000 - 50);
    // The key's other browsers still have half of its share.
    for browser in 0..2 {
        for n in 0..25 {
            cache
                .check_and_record(
                    "pk",
                    &format!("browser{browser}"),
                    &format!("{n}"),
                    until,
                    NOW,
                )
                .unwrap();
        }
    }
    // Only then is the key's own share full, for every DPoP key under it.
    assert!(matches!(
        cache.check_and_record("pk", "browser-late", "1", until, NOW),
        Err(ProofError::OverQuota { who: "key", .. })
    ));
}

#[test]
fn a_released_proof_takes_no_room_and_may_be_recorded_again() {
    let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let p = check_proof(
        &proof_at(&key, NOW, "r1"),
        &req(Some("tok"), None),
        None,
        DEFAULT_PROOF_WINDOW_SECS,
        NOW,
    )
    .unwrap();
    let cache = ReplayCache::new(1000);
    cache
        .record("k1", &p, DEFAULT_PROOF_WINDOW_SECS, NOW)
        .unwrap();
    cache.release(&p);
    assert!(cache.is_empty());
    // Recorded again a little later: the first entry's turn in the heap (NOW + 61) does not
    // drop the second (NOW + 71).
    let again = UnixTime(NOW.0 + 10);
    cache
        .record("k1", &p, DEFAULT_PROOF_WINDOW_SECS, again)
        .unwrap();
    let first_due = UnixTime(NOW.0 + DEFAULT_PROOF_WINDOW_SECS + 1);
    assert!(matches!(
        cache.record("k1", &p, DEFAULT_PROOF_WINDOW_SECS, first_due),
        Err(ProofError::Invalid(m)) if m.contains("replayed")
    ));
}

#[test]
fn entries_fall_due_in_time_order_whatever_the_insert_order() {
    let cache = ReplayCache::new(100_000);
    for (n, until) in [70u64, 61, 66, 62].into_iter().enumerate() {
        cache
            .check_and_record("k", &format!("j{n}"), "x", UnixTime(NOW.0 + until), NOW)
            .unwrap();
    }
    let at = |d: u64| UnixTime(NOW.0 + d);
    assert!(
        cache
            .check_and_record("k", "j1", "x", at(0), at(60))
            .is_err()
    );
    cache
        .check_and_record("probe", "p1", "x", at(61), at(61))
        .unwrap();
    assert_eq!(cache.len(), 4, "j1 (61) fell due, the probe took its place");
    cache
        .check_and_record("probe", "p2", "x", at(100), at(66))
        .unwrap();
    assert_eq!(cache.len(), 2, "p1 (61), j3 (62) and j2 (66) fell due");
    cache
        .check_and_record("k", "j0", "x", at(100), at(70))
        .unwrap();
}

#[test]
fn nonces_are_required_when_configured_and_shared_secrets_agree() {
    let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let nonces = NonceSource::random(300).unwrap();
    let ath = access_token_hash("tok");
    let without = proof_at(&key, NOW, "n1");
    let Err(ProofError::UseNonce(nonce)) =
        check_proof(&without, &req(Some("tok"), None), Some(&nonces), 60, NOW)
    else {
        panic!("a nonce was not demanded");
    };
    let with = make_proof(
        &key,
        "GET",
        "https://api.example/orders",
        NOW,
        "n2",
        Some(&ath),
        Some(&nonce),
    )
    .unwrap();
    check_proof(&with, &req(Some("tok"), None), Some(&nonces), 60, NOW).unwrap();
    assert!(
        !nonces.accepts(&nonce, UnixTime(NOW.0 + 900)),
        "old nonces expire"
    );
    // Two replicas given one secret accept each other's nonces; another secret does not.
    let a = NonceSource::from_secret(&[7; 32], 300).unwrap();
    let b = NonceSource::from_secret(&[7; 32], 300).unwrap();
    let c = NonceSource::from_secret(&[8; 32], 300).unwrap();
    assert!(b.accepts(&a.current(NOW), NOW));
    assert!(!c.accepts(&a.current(NOW), NOW));
    assert!(NonceSource::from_secret(&[7; 31], 300).is_none());
}
