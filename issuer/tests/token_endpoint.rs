//! The token endpoints over real loopback sockets: the RFC 6749 contract and every error.

// Test code: a failed step should stop the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use base64::Engine as _;
use keymint::domain::keys::api_key::{self, KeyEnv, KeyKind};
use keymint_jwks::{Audience, Issuer, Jwks};
use keymint_verifier::Verifier;
use support::*;

const AUD: &str = "https://api.example";

fn verifier(server: &Server, aud: &str) -> Verifier {
    let jwks = reply(server.get("/.well-known/jwks.json").call());
    let list = reply(server.get("/v1/revocations").call());
    let v = Verifier::builder(
        Issuer::new(server.url.as_str()).unwrap(),
        Audience::new(aud).unwrap(),
    )
    .jwks(Jwks::from_json(jwks.text.as_bytes()).unwrap())
    .build()
    .unwrap();
    v.update_revocations(&list.text).unwrap();
    v
}

#[test]
fn v1_token_mints_a_verifiable_rfc9068_token() {
    let s = Server::start("v1", &[]);
    let (id, key) = s.create_key(&[
        "--tenant",
        "acme",
        "--scope",
        "orders:read",
        "--scope",
        "orders:write",
        "--audience",
        AUD,
    ]);
    let r = token_request(&s, &key, None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "orders:read orders:write");
    let token = body["access_token"].as_str().unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");
    let ok = verifier(&s, AUD).verify(token).unwrap();
    let c = ok.claims();
    assert_eq!(c.sub.as_str(), id);
    assert_eq!(c.client_id.as_str(), id);
    assert_eq!(c.tenant.as_str(), "acme");
    assert_eq!(c.aud.as_str(), AUD);
    assert_eq!(c.exp.as_secs() - c.iat.as_secs(), 600);
    assert_eq!(c.nbf, Some(c.iat));
    assert_eq!(ok.kid().as_str(), header["kid"].as_str().unwrap());
}

#[test]
fn requests_may_only_narrow_scope_audience_and_lifetime() {
    let s = Server::start("narrow", &["--max-token-ttl", "45m"]);
    let (_, key) = s.create_key(&[
        "--tenant",
        "acme",
        "--scope",
        "a",
        "--scope",
        "b",
        "--audience",
        AUD,
        "--audience",
        "https://other.example",
        "--max-ttl",
        "30m",
    ]);
    let r = token_request(
        &s,
        &key,
        Some(r#"{"scope":"a","audience":"https://other.example","ttl":99999}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // Cut to the key's maximum (30m), below the server's (45m); expires_in says so.
    assert_eq!(r.json()["expires_in"], 1800);
    assert_eq!(r.json()["scope"], "a");
    let ok = verifier(&s, "https://other.example")
        .verify(r.json()["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(ok.claims().scope.to_string(), "a");

    let r = token_request(
        &s,
        &key,
        Some(r#"{"ttl":60,"audience":"https://api.example"}"#),
    );
    assert_eq!(r.json()["expires_in"], 60);

    let r = token_request(
        &s,
        &key,
        Some(r#"{"scope":"a c","audience":"https://api.example"}"#),
    );
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let r = token_request(&s, &key, Some(r#"{"audience":"https://evil.example"}"#));
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid_target"))
    );
    // Several audiences and none named.
    let r = token_request(&s, &key, None);
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid_target"))
    );
}

#[test]
fn token_lifetime_never_passes_the_key_expiry() {
    let s = Server::start("keyexp", &[]);
    let (_, key) = s.create_key(&[
        "--tenant",
        "acme",
        "--scope",
        "a",
        "--audience",
        AUD,
        "--expires-in",
        "90s",
    ]);
    let r = token_request(&s, &key, None);
    assert_eq!(r.status, 200);
    let expires_in = r.json()["expires_in"].as_u64().unwrap();
    assert!((85..=90).contains(&expires_in), "{expires_in}");
}

#[test]
fn bad_keys_all_get_the_same_invalid_client_answer() {
    let s = Server::start("badkeys", &[]);
    let (id, key) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let (_, other) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let (revoked_id, revoked) =
        s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let (_, expiring) = s.create_key(&[
        "--tenant",
        "acme",
        "--scope",
        "a",
        "--audience",
        AUD,
        "--expires-in",
        "1s",
    ]);
    assert!(s.cli(&["keys", "revoke", &revoked_id]).status.success());
    // Right key ID, someone else's secret, valid checksum.
    let other_secret = &other[other.len() - 49..other.len() - 6];
    let wrong_secret = api_key::assemble(KeyKind::Secret, KeyEnv::Live, &id, other_secret);
    let unknown = api_key::assemble(
        KeyKind::Secret,
        KeyEnv::Live,
        "AAAAAAAAAAAAAAAA",
        other_secret,
    );
    let typo = format!("{}x", &key[..key.len() - 1]);
    // The key made to expire in 1 s: wait until the issuer refuses it (expiry is checked in whole
    // seconds), rather than sleeping past it and hoping.
    wait_until("the 1 s key to expire", Duration::from_secs(5), || {
        (token_request(&s, &expiring, None).status == 401).then_some(())
    });
    let cases = [
        ("malformed", "not-a-key".to_owned()),
        ("checksum typo", typo),
        ("unknown key ID", unknown.expose().to_owned()),
        ("wrong secret", wrong_secret.expose().to_owned()),
        ("revoked", revoked),
        ("expired", expiring),
    ];
    let mut bodies = Vec::new();
    for (name, k) in &cases {
        let r = token_request(&s, k, None);
        assert_eq!(r.status, 401, "{name}: {}", r.text);
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"keymint\""),
            "{name}"
        );
        bodies.push(r.text);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "answers differ: {bodies:?}"
    );
    // No credentials at all.
    let r = reply(s.post("/v1/token").call());
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // The good key still works, and the audit says why each one failed.
    assert_eq!(token_request(&s, &key, None).status, 200);
    s.log_caught_up(&key);
    let out = s.all_output();
    for reason in [
        "malformed key",
        "checksum mismatch",
        "unknown key",
        "wrong secret",
        "revoked key",
        "expired key",
    ] {
        assert!(out.contains(reason), "audit lacks {reason:?}");
    }
}

#[test]
fn malformed_requests_are_invalid_request_and_keys_never_go_in_query_strings() {
    let s = Server::start("malformed", &[]);
    let (_, key) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    for body in [
        "{",
        "[]",
        r#"{"ttl":"ten"}"#,
        r#"{"unknown":1}"#,
        r#"{"ttl":0}"#,
    ] {
        let r = token_request(&s, &key, Some(body));
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (400, Some("invalid_request")),
            "{body}"
        );
    }
    let r = reply(s.post(&format!("/v1/token?api_key={key}")).call());
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let r = reply(
        s.post("/v1/token")
            .set("Authorization", &format!("Bearer {key}"))
            .set("Content-Type", "application/json")
            .send_string(&format!(r#"{{"scope":"{}"}}"#, "a".repeat(17 * 1024))),
    );
    assert_eq!(r.status, 413);
    // What was logged for those requests has been read once a later issuance's line is in.
    s.log_caught_up(&key);
    assert!(!s.all_output().contains(&key), "a key reached the log");
}

#[test]
fn oauth2_client_credentials_with_basic_and_post() {
    let s = Server::start("oauth2", &[]);
    let (id, key) = s.create_key(&[
        "--tenant",
        "acme",
        "--scope",
        "a",
        "--scope",
        "b",
        "--audience",
        AUD,
    ]);
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{key}"))
    );
    let r = reply(
        s.post("/oauth2/token")
            .set("Authorization", &basic)
            .send_form(&[("grant_type", "client_credentials"), ("scope", "a")]),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["scope"], "a");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let r = reply(s.post("/oauth2/token").send_form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &id),
        ("client_secret", &key),
        ("resource", AUD),
    ]));
    assert_eq!(r.status, 200, "{}", r.text);
    verifier(&s, AUD)
        .verify(r.json()["access_token"].as_str().unwrap())
        .unwrap();

    let r = reply(s.post("/oauth2/token").send_form(&[
        ("grant_type", "password"),
        ("client_id", &id),
        ("client_secret", &key),
    ]));
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    // client_id must be the key's own ID, not just some piece of the key (found in review: a
    // substring check let `sk` or `live` through).
    for wrong in ["someoneelse", "sk", "live", "km"] {
        let r = reply(s.post("/oauth2/token").send_form(&[
            ("grant_type", "client_credentials"),
            ("client_id", wrong),
            ("client_secret", &key),
        ]));
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (401, Some("invalid_client")),
            "client_id {wrong}"
        );
    }
    let r = reply(s.post("/oauth2/token").send_form(&[
        ("grant_type", "client_credentials"),
        ("client_id", "someoneelse"),
        ("client_secret", &key),
    ]));
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"keymint\"")
    );
    let r = reply(
        s.post("/oauth2/token")
            .set("Authorization", &basic)
            .send_form(&[
                ("grant_type", "client_credentials"),
                ("client_secret", &key),
            ]),
    );
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let r = reply(
        s.post("/oauth2/token")
            .set("Authorization", &basic)
            .send_form(&[("grant_type", "client_credentials"), ("scope", "c")]),
    );
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid_scope"))
    );
}

#[test]
fn client_ip_outside_the_allow_list_is_unauthorized_client() {
    let s = Server::start("allowip", &[]);
    let allowed_from = |net: &str| {
        s.create_key(&[
            "--tenant",
            "acme",
            "--scope",
            "a",
            "--audience",
            AUD,
            "--allow-ip",
            net,
        ])
        .1
    };
    let outside = allowed_from("10.0.0.0/8");
    let inside = allowed_from("127.0.0.0/8");
    let r = token_request(&s, &outside, None);
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (403, Some("unauthorized_client"))
    );
    assert_eq!(token_request(&s, &inside, None).status, 200);
    // One address is that address alone (/32), not its network.
    assert_eq!(
        token_request(&s, &allowed_from("127.0.0.1"), None).status,
        200
    );
    assert_eq!(
        token_request(&s, &allowed_from("127.0.0.2"), None).status,
        403
    );
}

#[test]
fn over_the_key_rate_limit_is_429_with_retry_after() {
    let s = Server::start("ratelimit", &[]);
    let (_, key) = s.create_key(&[
        "--tenant",
        "acme",
        "--scope",
        "a",
        "--audience",
        AUD,
        "--rate-limit",
        "3/m",
    ]);
    for _ in 0..3 {
        assert_eq!(token_request(&s, &key, None).status, 200);
    }
    let r = token_request(&s, &key, None);
    assert_eq!(r.status, 429);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
}

#[test]
fn failed_authentications_are_throttled_per_client_ip() {
    let s = Server::start("throttle", &[]);
    let (_, key) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let fake = api_key::assemble(
        KeyKind::Secret,
        KeyEnv::Live,
        "BBBBBBBBBBBBBBBB",
        &"C".repeat(43),
    );
    for _ in 0..20 {
        assert_eq!(token_request(&s, fake.expose(), None).status, 401);
    }
    let r = token_request(&s, fake.expose(), None);
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    // While blocked, even a good key from that IP waits: the guesser pays, not the database.
    assert_eq!(token_request(&s, &key, None).status, 429);
}

#[test]
fn json_logs_carry_one_structured_audit_line_per_issuance() {
    let s = Server::start("jsonlog", &["--log-format", "json"]);
    let (id, key) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let first = token_request(&s, &key, None);
    assert_eq!(first.status, 200);
    let first_jti = support::jti_of(first.json()["access_token"].as_str().unwrap());
    let r = token_request(&s, &key, Some(r#"{"scope":"zzz"}"#));
    assert_eq!(r.status, 400);
    // Every line logged for those two requests has been read once a third issuance's is in.
    let marker = s.log_caught_up(&key);
    let lines: Vec<serde_json::Value> = s
        .output
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["action"] == "token.issue")
        .filter(|v| v["jti"] != marker.as_str())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let granted = &lines[0];
    assert_eq!(granted["outcome"], "granted");
    assert_eq!(granted["key_id"], id.as_str());
    assert_eq!(granted["tenant"], "acme");
    assert_eq!(granted["scopes"], "a");
    assert_eq!(granted["client_ip"], "127.0.0.1");
    assert!(granted["at"].as_i64().is_some());
    // The per-token record: the token's own jti, audience and lifetime as fields of their own.
    assert_eq!(granted["jti"], first_jti.as_str(), "{granted}");
    assert_eq!(granted["aud"], AUD);
    assert_eq!(granted["ttl"], 600);
    let refused = &lines[1];
    assert_eq!(refused["outcome"], "refused");
    assert_eq!(refused["scopes"], "zzz");
    assert!(refused["reason"].as_str().unwrap().contains("exceeds"));
}
