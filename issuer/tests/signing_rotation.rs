//! Signing-key rotation under a running server: a verifier that honours the JWKS cache period never
//! meets an unknown `kid`.
#![allow(clippy::disallowed_methods)]
// tests read the clock: they are the edge

// Test code: a failed step should stop the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::{Duration, Instant};

use keymint_jwks::{Audience, Issuer, Jwks};
use keymint_verifier::Verifier;
use support::*;

const AUD: &str = "https://api.example";

fn kid_of(token: &str) -> String {
    let h = keymint_jwks::jws::decode_segment(token.split('.').next().unwrap(), "header").unwrap();
    let v: serde_json::Value = serde_json::from_slice(&h).unwrap();
    v["kid"].as_str().unwrap().to_owned()
}

fn jwks(s: &Server) -> Jwks {
    Jwks::from_json(
        reply(s.get("/.well-known/jwks.json").call())
            .text
            .as_bytes(),
    )
    .unwrap()
}

#[test]
fn rotation_publishes_next_then_activates_after_the_cache_period_then_retires() {
    let s = Server::start("rotate", &["--jwks-max-age", "2s"]);
    let (_, key) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let t1 = token_request(&s, &key, None).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_kid = kid_of(&t1);

    let out = s.cli(&["signing-keys", "rotate", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_kid = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let rotated = Instant::now();
    // Within a second the new key is published, but the old one still signs.
    let published = wait_until(
        "the next key to be published (1 s)",
        Duration::from_secs(1),
        || {
            let published = jwks(&s);
            published.get(&new_kid).is_some().then_some(published)
        },
    );
    assert!(published.get(&old_kid).is_some());
    let t2 = token_request(&s, &key, None).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        kid_of(&t2),
        old_kid,
        "the next key signed before the cache period passed"
    );

    // A verifier that fetched the JWKS now, and not again, verifies everything that follows.
    let v = Verifier::builder(
        Issuer::new(s.url.as_str()).unwrap(),
        Audience::new(AUD).unwrap(),
    )
    .jwks(published)
    .dangerous()
    .skip_revocation_checks()
    .build()
    .unwrap();
    // Tokens until the new key signs, each verified; it may not sign before the cache period.
    let first_signed = wait_until(
        "the new key to start signing",
        Duration::from_secs(6).saturating_sub(rotated.elapsed()),
        || {
            let t = token_request(&s, &key, None).json()["access_token"]
                .as_str()
                .unwrap()
                .to_owned();
            v.verify(&t)
                .expect("a token signed during the rotation failed to verify");
            // Measured at the token, not after the wait: elapsed time only grows.
            (kid_of(&t) == new_kid).then(|| rotated.elapsed())
        },
    );
    assert!(
        first_signed >= Duration::from_secs(2),
        "activated before the cache period: {first_signed:?}"
    );
    // The old key stays published (retired) while its tokens live. The JWKS is served from the
    // signing set that has just signed with the new key: it is the one after the activation.
    assert!(jwks(&s).get(&old_kid).is_some());
    v.verify(&t1).unwrap();
    let list = s.cli(&["signing-keys", "list", "--json"]);
    let states: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let state_of = |kid: &str| {
        states
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .map(|k| k["state"].as_str().unwrap().to_owned())
    };
    assert_eq!(state_of(&new_kid).as_deref(), Some("active"));
    assert_eq!(state_of(&old_kid).as_deref(), Some("retired"));
    // A second rotation while one is pending is refused... none is pending now, so it starts.
    assert!(s.cli(&["signing-keys", "rotate"]).status.success());
    assert_eq!(s.cli(&["signing-keys", "rotate"]).status.code(), Some(4));
}
