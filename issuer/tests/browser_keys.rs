//! Browser clients: publishable keys with origin rules and CORS, secret keys refused from browsers,
//! and backend-delegated tokens bound to a browser's DPoP key.
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

use std::time::Duration;

use keymint_jwks::{Audience, Issuer, Jwks};
use keymint_verifier::{Verifier, VerifyError};
use support::*;

const AUD: &str = "https://api.example";
const APP: &str = "https://app.example";

fn pk_request(s: &Server, key: &str, origin: Option<&str>, body: Option<&str>) -> Reply {
    let mut req = s
        .post("/v1/token")
        .set("Authorization", &format!("Bearer {key}"));
    if let Some(o) = origin {
        req = req.set("Origin", o);
    }
    reply(match body {
        Some(b) => req.set("Content-Type", "application/json").send_string(b),
        None => req.call(),
    })
}

/// A CORS preflight for `POST /v1/token` from `origin`, asking for the headers a browser client
/// sends.
fn preflight(s: &Server, origin: &str) -> Reply {
    reply(
        ureq::request("OPTIONS", &format!("{}/v1/token", s.url))
            .set("Origin", origin)
            .set("Access-Control-Request-Method", "POST")
            .set(
                "Access-Control-Request-Headers",
                "authorization, content-type, dpop",
            )
            .call(),
    )
}

fn publishable(s: &Server, extra: &[&str]) -> String {
    publishable_for(s, APP, extra).1
}

/// A publishable key for `origin` with the public scope `catalog:read`: (key ID, key).
fn publishable_for(s: &Server, origin: &str, extra: &[&str]) -> (String, String) {
    assert!(
        s.cli(&["scopes", "add", "catalog:read", "--public"])
            .status
            .success()
    );
    let mut args = vec![
        "--publishable",
        "--origin",
        origin,
        "--tenant",
        "acme",
        "--scope",
        "catalog:read",
        "--audience",
        AUD,
    ];
    args.extend_from_slice(extra);
    s.create_key(&args)
}

#[test]
fn publishable_keys_need_origins_and_public_scopes() {
    let s = Server::start("pk-rules", &[]);
    let no_origin = s.cli(&[
        "keys",
        "create",
        "--publishable",
        "--tenant",
        "acme",
        "--scope",
        "catalog:read",
        "--audience",
        AUD,
    ]);
    assert_eq!(no_origin.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_origin.stderr).contains("--origin"));
    let not_public = s.cli(&[
        "keys",
        "create",
        "--publishable",
        "--origin",
        APP,
        "--tenant",
        "acme",
        "--scope",
        "orders:write",
        "--audience",
        AUD,
    ]);
    assert_eq!(not_public.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&not_public.stderr).contains("not public"));
    let too_long = s.cli(&["scopes", "add", "catalog:read", "--public"]);
    assert!(too_long.status.success());
    let too_long = s.cli(&[
        "keys",
        "create",
        "--publishable",
        "--origin",
        APP,
        "--tenant",
        "acme",
        "--scope",
        "catalog:read",
        "--audience",
        AUD,
        "--max-ttl",
        "1h",
    ]);
    assert_eq!(too_long.status.code(), Some(2));
    let key = publishable(&s, &[]);
    assert!(key.starts_with("km_pk_live_"));
    let list = s.cli(&["scopes", "list", "--json"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("\"public\": true"));
}

#[test]
fn a_publishable_key_works_only_from_its_origins_with_cors_for_that_origin() {
    let s = Server::start("pk-cors", &[]);
    let key = publishable(&s, &[]);
    // CORS is answered from an index of every live key's origins, which follows key changes
    // through the change feed: wait until it has the new key's origin.
    wait_until(
        "the origin index to take the new key's origin",
        Duration::from_secs(3),
        || (preflight(&s, APP).header("access-control-allow-origin") == Some(APP)).then_some(()),
    );
    // Allowed origin: a short token and CORS for exactly that origin.
    let r = pk_request(&s, &key, Some(APP), Some(r#"{"ttl":3600}"#));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert_eq!(r.header("vary"), Some("Origin"));
    assert!(
        r.json()["expires_in"].as_u64().unwrap() <= 600,
        "publishable tokens are short"
    );
    // No Origin, or another one: 403 and no CORS headers.
    for origin in [None, Some("https://evil.example"), Some("null")] {
        let r = pk_request(&s, &key, origin, None);
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (403, Some("unauthorized_client")),
            "{origin:?}"
        );
        assert!(r.header("access-control-allow-origin").is_none());
    }
    // Preflight: answered for an allowed origin with only what is needed, refused otherwise.
    let pre = preflight(&s, APP);
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-origin"), Some(APP));
    assert_eq!(pre.header("access-control-allow-methods"), Some("POST"));
    assert_eq!(
        pre.header("access-control-allow-headers"),
        Some("Authorization, Content-Type, DPoP")
    );
    assert_eq!(pre.header("vary"), Some("Origin"));
    let pre = reply(
        ureq::request("OPTIONS", &format!("{}/v1/token", s.url))
            .set("Origin", "https://evil.example")
            .set("Access-Control-Request-Method", "POST")
            .call(),
    );
    assert_eq!(pre.status, 403);
    assert!(pre.header("access-control-allow-origin").is_none());
}

/// Browsers send an origin without its scheme's default port: a key made for
/// `https://app.example:443` serves `https://app.example`, in the preflight and the token request.
#[test]
fn an_origin_given_with_its_default_port_matches_what_browsers_send() {
    let s = Server::start("pk-default-port", &[]);
    let (id, key) = publishable_for(&s, "https://app.example:443", &[]);
    let shown: serde_json::Value =
        serde_json::from_slice(&s.cli(&["keys", "show", &id, "--json"]).stdout).unwrap();
    assert_eq!(shown["allow_origins"], serde_json::json!([APP]));
    wait_until(
        "the origin index to take the new key's origin",
        Duration::from_secs(3),
        || (preflight(&s, APP).header("access-control-allow-origin") == Some(APP)).then_some(()),
    );
    let r = pk_request(&s, &key, Some(APP), None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
}

#[test]
fn one_client_ip_gets_a_tenth_of_a_publishable_keys_rate_limit() {
    let s = Server::start("pk-rate", &[]);
    // 30/m for the key: 3/m for each client IP.
    let key = publishable(&s, &["--rate-limit", "30/m"]);
    let statuses = (0..4)
        .map(|_| pk_request(&s, &key, Some(APP), None).status)
        .collect::<Vec<_>>();
    assert_eq!(statuses, vec![200, 200, 200, 429]);
}

#[test]
fn a_secret_key_from_a_browser_is_refused_with_a_pointer_to_backend_delegation() {
    let s = Server::start("sk-browser", &[]);
    let (_, key) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let r = pk_request(&s, &key, Some(APP), None);
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (403, Some("unauthorized_client"))
    );
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("backend delegation")
    );
    assert!(r.header("access-control-allow-origin").is_none());
    // From a server (no Origin), the same key works.
    assert_eq!(pk_request(&s, &key, None, None).status, 200);
}

#[test]
fn backend_delegated_tokens_are_narrower_and_bound_to_the_browser_key() {
    let s = Server::start("delegation", &[]);
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
    let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    let r = pk_request(
        &s,
        &key,
        None,
        Some(&format!(
            r#"{{"scope":"orders:read","ttl":120,"dpop_jkt":"{jkt}"}}"#
        )),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["token_type"], "DPoP");
    assert_eq!(r.json()["expires_in"], 120);
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let payload = keymint_jwks::jws::decode_segment(token.split('.').nth(1).unwrap(), "p").unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(claims["cnf"]["jkt"], jkt);
    assert_eq!(claims["scope"], "orders:read");
    // The same through OAuth2.
    let r = reply(s.post("/oauth2/token").send_form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &id),
        ("client_secret", &key),
        ("dpop_jkt", jkt),
    ]));
    assert_eq!(
        (r.status, r.json()["token_type"].as_str()),
        (200, Some("DPoP"))
    );
    // A malformed thumbprint is a malformed request.
    let r = pk_request(&s, &key, None, Some(r#"{"dpop_jkt":"short"}"#));
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // Copied out of the browser and presented as a bearer token, it is refused.
    let v = Verifier::builder(
        Issuer::new(s.url.as_str()).unwrap(),
        Audience::new(AUD).unwrap(),
    )
    .jwks(
        Jwks::from_json(
            reply(s.get("/.well-known/jwks.json").call())
                .text
                .as_bytes(),
        )
        .unwrap(),
    )
    .build()
    .unwrap();
    v.update_revocations(&reply(s.get("/v1/revocations").call()).text)
        .unwrap();
    assert_eq!(
        v.verify(&token).unwrap_err(),
        VerifyError::SenderConstrained
    );
}

#[test]
fn the_token_endpoint_binds_tokens_to_a_dpop_proof_and_refuses_bad_proofs() {
    use keymint_jwks::dpop::make_proof;
    use keymint_jwks::{Algorithm, SigningKey, UnixTime};
    let s = Server::start("dpop-token", &[]);
    let (_, key) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let browser = SigningKey::generate(Algorithm::Es256).unwrap();
    let htu = format!("{}/v1/token", s.url);
    let with_proof = |proof: &str, body: Option<&str>| {
        let req = s
            .post("/v1/token")
            .set("Authorization", &format!("Bearer {key}"))
            .set("DPoP", proof);
        reply(match body {
            Some(b) => req.set("Content-Type", "application/json").send_string(b),
            None => req.call(),
        })
    };
    let good = make_proof(&browser, "POST", &htu, UnixTime::now(), "t1", None, None).unwrap();
    let r = with_proof(&good, None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["token_type"], "DPoP");
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let payload = keymint_jwks::jws::decode_segment(token.split('.').nth(1).unwrap(), "p").unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(claims["cnf"]["jkt"], browser.kid().as_str());

    let stale = make_proof(
        &browser,
        "POST",
        &htu,
        UnixTime(UnixTime::now().0 - 600),
        "t2",
        None,
        None,
    )
    .unwrap();
    let wrong_url = make_proof(
        &browser,
        "POST",
        "https://elsewhere.example/v1/token",
        UnixTime::now(),
        "t3",
        None,
        None,
    )
    .unwrap();
    let wrong_method =
        make_proof(&browser, "GET", &htu, UnixTime::now(), "t4", None, None).unwrap();
    let other = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let mismatch = make_proof(&other, "POST", &htu, UnixTime::now(), "t5", None, None).unwrap();
    for (name, proof, body) in [
        ("replayed", good.as_str(), None),
        ("stale", stale.as_str(), None),
        ("wrong htu", wrong_url.as_str(), None),
        ("wrong htm", wrong_method.as_str(), None),
        ("garbage", "not.a.proof", None),
    ] {
        let r = with_proof(proof, body);
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{name}: {}",
            r.text
        );
    }
    let body = format!(r#"{{"dpop_jkt":"{}"}}"#, browser.kid());
    let r = with_proof(&mismatch, Some(&body));
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
}

/// Issue #13: "public" was checked only when a key was created, so a publishable key made earlier
/// kept minting a scope an admin had since made non-public.
#[test]
fn a_scope_made_non_public_is_no_longer_minted_for_publishable_keys_made_earlier() {
    let s = Server::start("pk-unpublic", &[]);
    assert!(
        s.cli(&["scopes", "add", "orders:read", "--public"])
            .status
            .success()
    );
    let key = publishable(&s, &["--scope", "orders:read"]);
    wait_until(
        "the publishable key to work",
        Duration::from_secs(5),
        || (pk_request(&s, &key, Some(APP), None).status == 200).then_some(()),
    );
    // The admin takes `orders:read` back (no --public): the running server follows the change.
    assert!(s.cli(&["scopes", "add", "orders:read"]).status.success());
    let asked = wait_until("the scope to be refused", Duration::from_secs(5), || {
        let r = pk_request(&s, &key, Some(APP), Some(r#"{"scope":"orders:read"}"#));
        (r.status != 200).then_some(r)
    });
    assert_eq!(
        (asked.status, asked.json()["error"].as_str()),
        (400, Some("invalid_scope")),
        "{}",
        asked.text
    );
    // Asking for nothing in particular gets the public scopes only.
    let r = pk_request(&s, &key, Some(APP), None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["scope"], "catalog:read");
    // Nor does the scope live on in a successor.
    let id = key.split('_').nth(3).unwrap();
    let rotated = s.cli(&["keys", "rotate", id]);
    assert_eq!(rotated.status.code(), Some(2), "{rotated:?}");
    assert!(String::from_utf8_lossy(&rotated.stderr).contains("no longer public"));
}
