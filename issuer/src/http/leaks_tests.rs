//! Secret-scanning reports through the router: signed by the test scanner key, against the
//! recorded public-key document (fixtures, no network).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use keymint_jwks::{ApiKeyId, TenantId, UnixTime};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};

use super::tests::{harness, send, token_req};
use crate::domain::keys::api_key;
use crate::domain::leaks::policy::{self, OnLeak};
use crate::domain::leaks::scanner_keys::{ScannerKeySource, ScannerKeyring, ScannerKeys};
use crate::store::{AuditQuery, Store};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/secret-scanning"
);
/// The current key of the recorded document; its private half is the fixture.
pub(super) const CURRENT: &str = "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c";
/// The retired key of the recorded document (its private half was not kept).
const RETIRED: &str = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";

/// The recorded public-key document as a keyring.
pub(super) fn test_keyring() -> ScannerKeyring {
    let path = std::path::PathBuf::from(FIXTURES).join("public-keys.json");
    let keys = ScannerKeys::from_document(&std::fs::read(&path).unwrap()).unwrap();
    ScannerKeyring::with_keys(ScannerKeySource::File(path), keys)
}

/// Signs `body` as the scanner does: base64 of a DER ECDSA P-256 / SHA-256 signature.
pub(super) fn sign(body: &[u8]) -> String {
    let pem = std::fs::read_to_string(format!("{FIXTURES}/scanner-key.pk8.pem")).unwrap();
    let der = pem::parse(pem).unwrap();
    let rng = ring::rand::SystemRandom::new();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der.contents(), &rng).unwrap();
    let sig = pair.sign(&rng, body).unwrap();
    base64::engine::general_purpose::STANDARD.encode(sig.as_ref())
}

fn report_body(tokens: &[&str]) -> String {
    let items: Vec<serde_json::Value> = tokens
        .iter()
        .map(|t| {
            serde_json::json!({"token": t, "type": "keymint_api_key",
                "url": "https://github.com/octo/leaky/blob/abc/config.env", "source": "content"})
        })
        .collect();
    serde_json::to_string(&items).unwrap()
}

fn report(body: &str, key_id: Option<&str>, signature: Option<&str>) -> Request<Body> {
    let mut b =
        Request::post("/v1/secret-scanning/github").header("Content-Type", "application/json");
    if let Some(k) = key_id {
        b = b.header("Github-Public-Key-Identifier", k);
    }
    if let Some(s) = signature {
        b = b.header("Github-Public-Key-Signature", s);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

fn signed(body: &str) -> Request<Body> {
    report(body, Some(CURRENT), Some(&sign(body.as_bytes())))
}

fn key_id_of(key: &str) -> ApiKeyId {
    api_key::parse(key).unwrap().key_id
}

async fn revoked(h: &super::tests::Harness, key: &str) -> bool {
    h.store
        .key(&key_id_of(key))
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some()
}

async fn audit_actions(h: &super::tests::Harness) -> Vec<(String, String, Option<String>)> {
    let q = AuditQuery {
        limit: 100,
        ..AuditQuery::default()
    };
    h.store
        .audit(&q)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.record.action.starts_with("key.leak"))
        .map(|e| (e.record.action, e.record.outcome, e.record.detail))
        .collect()
}

#[tokio::test]
async fn a_signed_report_of_a_live_key_revokes_it_and_audits_where_it_was_found() {
    let h = harness("leak-revoke").await;
    let body = report_body(&[&h.key]);
    let (status, _, answer) = send(&h.app, signed(&body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer[0]["label"], "true_positive");
    assert_eq!(answer[0]["token_type"], "keymint_api_key");
    assert_eq!(answer[0]["token_hash"].as_str().unwrap().len(), 64);
    assert!(
        !answer.to_string().contains(&h.key),
        "the answer never carries the key"
    );
    assert!(revoked(&h, &h.key).await);
    let list = h.store.revocations(0).await.unwrap();
    assert!(
        list.iter()
            .any(|e| e.target.id() == key_id_of(&h.key).as_str())
    );
    assert_eq!(
        audit_actions(&h).await,
        vec![(
            "key.leak_revoke".into(),
            "ok".into(),
            Some("https://github.com/octo/leaky/blob/abc/config.env (content)".into())
        )]
    );
    let (status, _, _) = send(&h.app, token_req(&h.key)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the issuer refuses the key at once"
    );
}

#[tokio::test]
async fn unsigned_badly_signed_and_unknown_key_reports_are_refused_alike_and_change_nothing() {
    let h = harness("leak-forged").await;
    let real = report_body(&[&h.key]);
    let fake = report_body(&["km_sk_live_AAAAAAAAAAAAAAAA_notakey"]);
    let other_sig = sign(b"another body");
    let mut answers = Vec::new();
    for body in [&real, &fake] {
        for req in [
            report(body, None, None),
            report(body, Some(CURRENT), None),
            report(body, None, Some(&sign(body.as_bytes()))),
            report(body, Some(CURRENT), Some(&other_sig)),
            report(body, Some(CURRENT), Some("not base64!")),
            // Signed by the right key, but claimed for the retired one.
            report(body, Some(RETIRED), Some(&sign(body.as_bytes()))),
            report(body, Some("no-such-key"), Some(&sign(body.as_bytes()))),
        ] {
            let (status, _, problem) = send(&h.app, req).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
            assert_eq!(problem["code"], "invalid_signature");
            answers.push(problem);
        }
    }
    // What a forged report names makes no difference to its answer.
    let (for_real, for_fake) = answers.split_at(answers.len() / 2);
    assert_eq!(for_real, for_fake);
    assert!(!revoked(&h, &h.key).await);
    assert!(audit_actions(&h).await.is_empty());
    let (status, _, _) = send(&h.app, token_req(&h.key)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn forged_reports_are_throttled_per_client_like_wrong_keys() {
    let h = harness("leak-throttle").await;
    let body = report_body(&["x"]);
    let mut last = StatusCode::OK;
    for _ in 0..40 {
        let (status, _, _) = send(&h.app, report(&body, Some(CURRENT), Some("AAAA"))).await;
        last = status;
        if status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_report_naming_a_revoked_an_unknown_a_wrong_secret_and_a_malformed_key_labels_each() {
    let h = harness("leak-mixed").await;
    // Revoked first by a report of its own.
    let (status, _, _) = send(&h.app, signed(&report_body(&[&h.key]))).await;
    assert_eq!(status, StatusCode::OK);
    let parsed = api_key::parse(&h.key).unwrap();
    let unknown = api_key::assemble(
        parsed.kind,
        parsed.env,
        "ZZZZZZZZZZZZZZZZ",
        parsed.secret.expose(),
    );
    let wrong_secret = api_key::assemble(
        parsed.kind,
        parsed.env,
        parsed.key_id.as_str(),
        &"Q".repeat(api_key::SECRET_LEN),
    );
    let mut typo = h.key.clone().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let body = report_body(&[
        &h.key,
        unknown.expose(),
        wrong_secret.expose(),
        &typo,
        "hello",
    ]);
    let (status, _, answer) = send(&h.app, signed(&body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let labels: Vec<&str> = answer
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "true_positive",
            "false_positive",
            "false_positive",
            "false_positive",
            "false_positive"
        ]
    );
    let actions = audit_actions(&h).await;
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert_eq!(
        (actions[0].0.as_str(), actions[0].1.as_str()),
        ("key.leak_report", "already_revoked")
    );
}

#[tokio::test]
async fn the_same_report_twice_revokes_once_and_answers_the_same() {
    let h = harness("leak-replay").await;
    let body = report_body(&[&h.key, "nope"]);
    let first = signed(&body);
    let sig = first.headers()["github-public-key-signature"].clone();
    let (s1, _, a1) = send(&h.app, first).await;
    let again = report(&body, Some(CURRENT), Some(sig.to_str().unwrap()));
    let (s2, _, a2) = send(&h.app, again).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(a1, a2);
    assert_eq!(audit_actions(&h).await.len(), 1, "acted on once");
    assert_eq!(
        h.store.leak_report("0".repeat(64).as_str()).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn a_tenant_whose_policy_is_flag_gets_an_audit_record_and_keeps_its_key() {
    let h = harness("leak-flag").await;
    let rec = h.store.key(&key_id_of(&h.key)).await.unwrap().unwrap();
    let tenant = TenantId::new(rec.tenant.as_str()).unwrap();
    let change = policy::PolicyChange {
        on_leak: Some(OnLeak::Flag),
        webhook: None,
    };
    let enc =
        crate::domain::signing::secret_box::EncryptionKey::new(&zeroize::Zeroizing::new([3; 32]))
            .unwrap();
    policy::set(
        &*h.store,
        &enc,
        &tenant,
        &change,
        UnixTime::now(),
        "test".into(),
    )
    .await
    .unwrap();
    let (status, _, answer) = send(&h.app, signed(&report_body(&[&h.key]))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer[0]["label"], "true_positive");
    assert!(!revoked(&h, &h.key).await);
    let actions = audit_actions(&h).await;
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].0, "key.leak_flag");
    let (status, _, _) = send(&h.app, token_req(&h.key)).await;
    assert_eq!(status, StatusCode::OK, "a flagged key keeps working");
}

#[tokio::test]
async fn a_signed_but_malformed_report_is_400_and_an_oversized_one_413() {
    let h = harness("leak-shape").await;
    let body = r#"{"token":"x"}"#;
    let (status, _, problem) = send(&h.app, signed(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let big = "x".repeat(super::leaks::MAX_REPORT + 1);
    let (status, _, _) = send(&h.app, signed(&big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Between the token endpoint's 16 KiB and the report bound: accepted.
    let many: Vec<String> = (0..400).map(|i| format!("not-a-key-{i:04}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let body = report_body(&refs);
    assert!(body.len() > super::MAX_BODY);
    let (status, _, answer) = send(&h.app, signed(&body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer.as_array().unwrap().len(), 400);
}

#[tokio::test]
async fn an_oversized_report_is_audited_with_the_client_address_and_throttled() {
    let h = harness("leak-oversized").await;
    let client = super::tests::app_from(&h.state, [198, 51, 100, 23]);
    let big = "x".repeat(super::leaks::MAX_REPORT + 1);
    let (log, guard) = super::admin_tests::capture_log();
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(send(&client, signed(&big)).await.0);
    }
    drop(guard);
    assert_eq!(statuses[..19], [StatusCode::PAYLOAD_TOO_LARGE; 19]);
    assert_eq!(statuses[19], StatusCode::TOO_MANY_REQUESTS);
    let log = log.text();
    let lines = log
        .lines()
        .filter(|l| {
            l.contains("leak.report") && l.contains("198.51.100.23") && l.contains("too_large")
        })
        .count();
    assert_eq!(lines, 20, "{log}");
    // Only that client is blocked.
    let (status, _, _) = send(&h.app, signed(&big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_database_down_is_503_and_a_redelivery_then_acts() {
    let h = harness("leak-down").await;
    let body = report_body(&[&h.key]);
    h.store.set_down(true);
    let (status, headers, _) = send(&h.app, signed(&body)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key("retry-after"));
    h.store.set_down(false);
    let (status, _, answer) = send(&h.app, signed(&body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer[0]["label"], "true_positive");
    assert!(revoked(&h, &h.key).await);
}

#[tokio::test]
async fn the_admin_api_sets_a_tenants_policy_and_webhook_and_shows_the_secret_once() {
    let h = harness("leak-admin-policy").await;
    let (_, write) = super::admin_tests::admin_token(&h, "admin:write").await;
    let (_, read) = super::admin_tests::admin_token(&h, "admin:read").await;
    let put = |token: &str, json: &str| {
        Request::put("/v1/admin/tenants/acme/policy")
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .body(Body::from(json.to_owned()))
            .unwrap()
    };
    let get = |token: &str| {
        Request::get("/v1/admin/tenants/acme/policy")
            .header("Authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let (status, _, body) = send(&h.app, get(&read)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["on_leak"], "revoke");
    assert!(body.get("updated_at").is_none(), "the default until set");

    let (status, _, _) = send(&h.app, put(&read, r#"{"on_leak":"flag"}"#)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "admin:read may not change it"
    );
    for bad in [
        r#"{"on_leak":"ignore"}"#,
        r#"{"webhook_url":"http://hooks.example/h"}"#,
        r#"{"on_leak":"flag","surprise":1}"#,
    ] {
        let (status, _, body) = send(&h.app, put(&write, bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (status, _, body) = send(
        &h.app,
        put(
            &write,
            r#"{"on_leak":"flag","webhook_url":"https://hooks.example/h"}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["on_leak"], "flag");
    assert_eq!(body["webhook_url"], "https://hooks.example/h");
    let secret = body["webhook_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("kmwh_") && secret.len() > 40);
    let (_, _, shown) = send(&h.app, get(&read)).await;
    assert_eq!(shown["on_leak"], "flag");
    assert!(shown.get("webhook_secret").is_none(), "shown once");
    assert!(!shown.to_string().contains(&secret));
    // Only on_leak: the webhook stays; "" removes it.
    let (_, _, body) = send(&h.app, put(&write, r#"{"on_leak":"revoke"}"#)).await;
    assert_eq!(body["webhook_url"], "https://hooks.example/h");
    let (_, _, body) = send(&h.app, put(&write, r#"{"webhook_url":""}"#)).await;
    assert!(body.get("webhook_url").is_none());
    let q = AuditQuery {
        action: Some("tenant.policy".into()),
        limit: 10,
        ..AuditQuery::default()
    };
    let records = h.store.audit(&q).await.unwrap();
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| {
        r.record
            .actor
            .as_deref()
            .unwrap_or_default()
            .starts_with("admin-key:")
    }));
    assert!(
        !format!("{records:?}").contains(&secret),
        "the secret is not audited"
    );
}
