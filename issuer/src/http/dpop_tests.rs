//! DPoP at the token endpoint under attack: one key holder flooding proofs is refused alone,
//! proofs dated far ahead are refused, and a refused request takes no room in the replay caches.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use keymint_jwks::dpop::make_proof;
use keymint_jwks::{Algorithm, SigningKey, TenantId, UnixTime};
use keymint_verifier::dpop::{DEFAULT_REPLAY_CAPACITY, ReplayLimits};

use super::tests::{harness, send};
use crate::domain::keys::{self, NewKey};

fn dpop_req(key: &str, proof: &str, body: &str) -> Request<Body> {
    Request::post("/v1/token")
        .header("Authorization", format!("Bearer {key}"))
        .header("DPoP", proof)
        .header("Content-Type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn proof(key: &SigningKey, iat: UnixTime, jti: &str) -> String {
    make_proof(
        key,
        "POST",
        "https://issuer.test/v1/token",
        iat,
        jti,
        None,
        None,
    )
    .unwrap()
}

#[tokio::test]
async fn one_key_flooding_dpop_proofs_is_refused_alone_and_other_tenants_go_on() {
    let h = harness("dpop-flood").await;
    let now = UnixTime::now();
    let (_, other) = keys::create(
        &*h.store,
        &h.hasher,
        &NewKey {
            tenant: TenantId::new("globex").unwrap(),
            ..NewKey::for_tests()
        },
        now,
        "test",
    )
    .await
    .unwrap();
    let share = ReplayLimits::with_capacity(DEFAULT_REPLAY_CAPACITY).per_holder;
    // A fresh DPoP key for every proof: only the per-key share can stop this flooder.
    for n in 0..share {
        let k = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let (status, _, body) = send(
            &h.app,
            dpop_req(&h.key, &proof(&k, now, &format!("f{n}")), ""),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "proof {n}: {body}");
    }
    let k = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let (status, headers, body) = send(&h.app, dpop_req(&h.key, &proof(&k, now, "over"), "")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=66).contains(&retry), "Retry-After {retry}");
    // Another tenant's DPoP request is served.
    let browser = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let (status, _, body) = send(
        &h.app,
        dpop_req(other.expose(), &proof(&browser, now, "victim"), ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "DPoP");
}

#[tokio::test]
async fn a_proof_dated_more_than_five_seconds_ahead_is_refused() {
    let h = harness("dpop-ahead").await;
    let now = UnixTime::now();
    let k = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let (status, _, body) = send(
        &h.app,
        dpop_req(&h.key, &proof(&k, UnixTime(now.0 + 30), "ahead"), ""),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_dpop_proof");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("future"),
        "{body}"
    );
    let (status, _, body) = send(
        &h.app,
        dpop_req(&h.key, &proof(&k, UnixTime(now.0 + 3), "skew"), ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "a few seconds of skew pass: {body}");
}

#[tokio::test]
async fn a_request_refused_for_its_scope_does_not_spend_its_proof() {
    let h = harness("dpop-order").await;
    let now = UnixTime::now();
    let k = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let p = proof(&k, now, "once");
    let (status, _, body) = send(&h.app, dpop_req(&h.key, &p, r#"{"scope":"b"}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_scope");
    // The proof was not claimed by the refused request: it still works once.
    let (status, _, body) = send(&h.app, dpop_req(&h.key, &p, "")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = send(&h.app, dpop_req(&h.key, &p, "")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_dpop_proof");
}

/// Found in review: the proof was recorded locally before the shared store's claim, so a
/// database error answered 503 and the client's retry with the same proof read as a replay.
#[tokio::test]
async fn a_proof_whose_claim_failed_on_the_database_works_on_retry() {
    let h = harness("dpop-retry").await;
    let now = UnixTime::now();
    // Cache the key first, so that only the proof's claim needs the database.
    let (status, _, _) = send(&h.app, super::tests::token_req(&h.key)).await;
    assert_eq!(status, StatusCode::OK);
    let k = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let p = proof(&k, now, "retry");
    h.store.set_down(true);
    let (status, _, body) = send(&h.app, dpop_req(&h.key, &p, "")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    h.store.set_down(false);
    let (status, _, body) = send(&h.app, dpop_req(&h.key, &p, "")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
