//! Refusals seen from outside (issue #13): every request refused before a key is looked at, and
//! every admin call refused, is an audit line with the client's address and counts against the
//! client like a wrong key; admin changes name the address they came from.

use axum::body::Body;
use axum::http::{Request, StatusCode};

use super::admin_tests::{admin_token, capture_log};
use tower::ServiceExt as _;

use super::tests::{app_from, harness, send};

fn admin_get(token: &str) -> Request<Body> {
    Request::get("/v1/admin/keys")
        .header("Authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_bogus_admin_token_is_audited_with_the_client_address_and_throttled_like_a_wrong_key() {
    let h = harness("admin-refused").await;
    let (_, good) = admin_token(&h, "admin:read").await;
    let attacker = app_from(&h.state, [198, 51, 100, 77]);
    let (log, guard) = capture_log();
    for n in 0..19 {
        let (status, _, _) = send(&attacker, admin_get("bogus")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    let (status, headers, body) = send(&attacker, admin_get("bogus")).await;
    drop(guard);
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(headers.contains_key("retry-after"));
    let log = log.text();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("admin.auth") && l.contains("198.51.100.77"))
        .collect();
    assert_eq!(lines.len(), 20, "{log}");
    assert!(lines.iter().all(|l| l.contains("refused")), "{log}");
    assert!(!log.contains("bogus"), "the token itself is never logged");
    // Blocked: even a valid admin token is refused from there, without a lookup...
    let (status, _, _) = send(&attacker, admin_get(&good)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // ...and nowhere else.
    let (status, _, _) = send(&h.app, admin_get(&good)).await;
    assert_eq!(status, StatusCode::OK);
}

/// The issuer's own revocation list past its `exp` (the database down for longer than the list's
/// validity, so it could not be re-signed) is the issuer's fault, not the caller's: an admin call
/// is 503 with Retry-After, not a refused token that counts against the admin's address.
#[tokio::test]
async fn an_admin_call_while_the_issuers_own_list_is_expired_is_503_not_a_refused_token() {
    use axum::response::IntoResponse as _;
    use keymint_jwks::{ApiKeyId, Claims, ClientId, Jti, ScopeSet, TenantId, UnixTime};
    let h = harness("admin-stale-list").await;
    let settings = h.state.settings.load();
    let admin = "AdminAAAAAAAAAAA";
    let token_at = |t: UnixTime| {
        let claims = Claims {
            iss: settings.issuer().clone(),
            sub: ApiKeyId::new(admin).unwrap(),
            aud: settings.admin_audience().clone(),
            exp: t.saturating_add(std::time::Duration::from_secs(600)),
            iat: t,
            nbf: Some(t),
            jti: Jti::new(format!("stale-list-{}", t.as_secs())).unwrap(),
            client_id: ClientId::new(admin).unwrap(),
            scope: ScopeSet::parse("admin:read").unwrap(),
            tenant: TenantId::new(crate::domain::reserved::ADMIN_TENANT).unwrap(),
            cnf: None,
        };
        h.state
            .signing
            .load()
            .active
            .sign_access_token(&claims)
            .unwrap()
    };
    let ip = std::net::IpAddr::from([198, 51, 100, 8]);
    // Such a token opens the admin API while the list is current...
    let now = UnixTime::now();
    assert!(
        h.state
            .admin
            .authorize_read(Some(&token_at(now)), ip, now)
            .is_ok()
    );
    // ...and a week on (the harness's list is valid for a day), one made then does not.
    let later = now.saturating_add(std::time::Duration::from_secs(7 * 24 * 3600));
    let Err(e) = h
        .state
        .admin
        .authorize_read(Some(&token_at(later)), ip, later)
    else {
        panic!("an expired list let an admin call through");
    };
    assert!(
        matches!(e, crate::domain::DomainError::OwnListExpired),
        "{e:?}"
    );
    let answer = super::problem::Problem(e).into_response();
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(answer.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn token_requests_refused_before_any_lookup_are_audited_and_throttled() {
    let h = harness("request-refused").await;
    let client = app_from(&h.state, [203, 0, 113, 9]);
    let refusals = [
        // No credentials.
        Request::post("/v1/token").body(Body::empty()).unwrap(),
        // The key in the query string.
        Request::post(format!("/v1/token?api_key={}", h.key))
            .body(Body::empty())
            .unwrap(),
        // Malformed Basic.
        Request::post("/oauth2/token")
            .header("Authorization", "Basic !!!")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(Body::from("grant_type=client_credentials"))
            .unwrap(),
        // A client_id that is not the key's own.
        Request::post("/oauth2/token")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(Body::from(format!(
                "grant_type=client_credentials&client_id=someoneelse&client_secret={}",
                h.key
            )))
            .unwrap(),
    ];
    let (log, guard) = capture_log();
    let mut statuses = Vec::new();
    for req in refusals {
        statuses.push(send(&client, req).await.0);
    }
    drop(guard);
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::BAD_REQUEST,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED
        ]
    );
    let log = log.text();
    for reason in [
        "no credentials",
        "query parameters",
        "malformed",
        "client_id",
    ] {
        assert!(
            log.lines().any(|l| l.contains("token.request")
                && l.contains("203.0.113.9")
                && l.contains(reason)),
            "no audit line for {reason}: {log}"
        );
    }
    assert!(!log.contains(&h.key), "the key is never logged");
    // Sixteen more without credentials: the twentieth refusal blocks the client.
    for n in 0..15 {
        let (status, _, _) = send(
            &client,
            Request::post("/v1/token").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "refusal {n}");
    }
    let (status, headers, _) = send(
        &client,
        Request::post("/v1/token").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        headers["retry-after"], "60",
        "blocked for the minute's cooldown"
    );
    // The block is on the injected clock: a second before the minute is up the client is still
    // refused, at the minute it is heard again.
    h.ticker.advance(std::time::Duration::from_secs(59));
    let (status, headers, _) = send(
        &client,
        Request::post("/v1/token").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "1");
    h.ticker.advance(std::time::Duration::from_secs(1));
    let (status, _, _) = send(
        &client,
        Request::post("/v1/token").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "heard again after the cooldown"
    );
}

#[tokio::test]
async fn an_admin_change_records_the_address_it_came_from() {
    let h = harness("admin-address").await;
    let (_, write) = admin_token(&h, "admin:write").await;
    let admin = app_from(&h.state, [198, 51, 100, 78]);
    let (status, _, body) = send(
        &admin,
        Request::post("/v1/admin/keys")
            .header("Authorization", format!("Bearer {write}"))
            .header("Content-Type", "application/json")
            .body(Body::from(
                r#"{"tenant":"acme","scopes":["a"],"audiences":["https://api.test"]}"#,
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _, page) = send(
        &admin,
        Request::get("/v1/admin/audit?action=key.create")
            .header("Authorization", format!("Bearer {write}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"][0]["client_ip"], "198.51.100.78", "{page}");
}

/// A valid read-only token asking to write is refused (403) and audited with the address, but it
/// is not a guess: it never blocks the admin.
#[tokio::test]
async fn a_missing_scope_is_audited_but_not_counted_as_a_guess() {
    let h = harness("admin-forbidden").await;
    let (_, read) = admin_token(&h, "admin:read").await;
    let admin = app_from(&h.state, [198, 51, 100, 79]);
    let (log, guard) = capture_log();
    for _ in 0..25 {
        let (status, _, _) = send(
            &admin,
            Request::post("/v1/admin/tenants/acme/revoke")
                .header("Authorization", format!("Bearer {read}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    drop(guard);
    let log = log.text();
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("admin.auth") && l.contains("198.51.100.79"))
            .count(),
        25,
        "{log}"
    );
    let (status, _, _) = send(&admin, admin_get(&read)).await;
    assert_eq!(status, StatusCode::OK, "not blocked");
}

/// Found in review: an admin call refused after its token was accepted (a reserved scope asked
/// for a customer key, a revocation of a key that does not exist, a malformed body) left no
/// trace. Each is one audit line with the route, the admin key, the client's address, the code and
/// why; an accepted call is none, and a refused token is still audited where it is checked.
#[tokio::test]
async fn admin_calls_refused_after_the_token_check_are_audited_with_the_admin_key_and_address() {
    let h = harness("admin-call-refused").await;
    let (admin_id, token) = admin_token(&h, "admin:read admin:write").await;
    let from = app_from(&h.state, [192, 0, 2, 44]);
    let post = |path: &str, body: &str| {
        Request::post(path)
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let (log, guard) = capture_log();
    let (reserved, _, _) = send(
        &from,
        post(
            "/v1/admin/keys",
            r#"{"tenant":"acme","scopes":["admin:write"],"audiences":["https://api.test"]}"#,
        ),
    )
    .await;
    let (unknown, _, _) = send(&from, post("/v1/admin/keys/AAAAAAAAAAAAAAAA/revoke", "")).await;
    let (malformed, _, _) = send(&from, post("/v1/admin/keys", "{")).await;
    let (listed, _, _) = send(&from, admin_get(&token)).await;
    drop(guard);
    assert_eq!(
        (reserved, unknown, malformed, listed),
        (
            StatusCode::BAD_REQUEST,
            StatusCode::NOT_FOUND,
            StatusCode::BAD_REQUEST,
            StatusCode::OK
        )
    );
    let log = log.text();
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("outcome=\"refused\""))
        .collect();
    assert_eq!(refused.len(), 3, "{log}");
    for (line, route, code) in [
        (refused[0], "POST /v1/admin/keys", "invalid_request"),
        (refused[1], "POST /v1/admin/keys/{id}/revoke", "not_found"),
        (refused[2], "POST /v1/admin/keys", "invalid_request"),
    ] {
        for needle in [
            format!("action=\"{route}\""),
            format!("code=\"{code}\""),
            "client_ip=192.0.2.44".to_owned(),
            admin_id.clone(),
        ] {
            assert!(line.contains(&needle), "{needle} not in {line}");
        }
    }
    assert!(
        refused[0].contains("admin:"),
        "the reason names the scope: {}",
        refused[0]
    );
    assert!(!log.contains(&token), "the token itself is never logged");
}

/// Over HTTP/2 one connection carries up to 200 streams, so the connection limit alone did not
/// bound push streams: one client could hold tens of thousands, each sent every new list. A
/// client holds at most as many streams as connections (2 in this harness): one more is 503 with
/// `Retry-After` and an audit line with the client's address; a stream that ends frees its place.
#[tokio::test]
async fn a_client_holds_at_most_its_share_of_push_streams() {
    let h = harness("streams").await;
    let events = || {
        Request::get("/v1/revocations/events")
            .body(Body::empty())
            .unwrap()
    };
    let (log, guard) = capture_log();
    let first = h.app.clone().oneshot(events()).await.unwrap();
    let second = h.app.clone().oneshot(events()).await.unwrap();
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let third = h.app.clone().oneshot(events()).await.unwrap();
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(third.headers()["retry-after"], "30");
    // Another client is not held back.
    let other = app_from(&h.state, [192, 0, 2, 8]);
    let elsewhere = other.oneshot(events()).await.unwrap();
    assert_eq!(elsewhere.status(), StatusCode::OK);
    drop(guard);
    let log = log.text();
    let line = log
        .lines()
        .find(|l| l.contains("too_many_streams_from_client"))
        .unwrap_or_else(|| panic!("no audit line: {log}"));
    assert!(line.contains("client_ip=127.0.0.1"), "{line}");
    // The first stream ends (the client went away): its place is free.
    drop(first);
    let again = h.app.clone().oneshot(events()).await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    drop((second, elsewhere, again));
}

/// A publishable key's secret is in every page that uses it: anyone can send it with a forged
/// `Origin`. Those refusals spend the key's quota for that client, so they end in 429 instead of
/// being answered without limit; they do not count against the client for other keys (a mobile
/// app or a shared egress address sending a wrong origin must not block its neighbours' keys).
/// A key's refusals for the client address count against the client like a wrong key.
#[tokio::test]
async fn refusals_for_a_wrong_origin_spend_the_keys_quota_and_for_an_address_count_as_failures() {
    use crate::domain::keys::{self, NewKey};
    let h = harness("origin-throttled").await;
    let now = keymint_jwks::UnixTime::now();
    let pk = super::tests::publishable_key(&h, None).await;
    let (_, for_one_address) = keys::create(
        &*h.store,
        &h.hasher,
        &NewKey {
            allow_ips: vec!["192.0.2.1/32".parse().unwrap()],
            ..NewKey::for_tests()
        },
        now,
        "test",
    )
    .await
    .unwrap();
    let from = |key: &str, origin: &str| {
        Request::post("/v1/token")
            .header("Authorization", format!("Bearer {key}"))
            .header("Origin", origin)
            .body(Body::empty())
            .unwrap()
    };
    let forger = app_from(&h.state, [203, 0, 113, 20]);
    let mut refused = 0;
    let status = loop {
        let (status, _, _) = send(&forger, from(pk.expose(), "https://evil.example")).await;
        if status != StatusCode::FORBIDDEN || refused == 200 {
            break status;
        }
        refused += 1;
    };
    // The key's default per-client share: a tenth of 600 a minute.
    assert_eq!(
        (refused, status),
        (60, StatusCode::TOO_MANY_REQUESTS),
        "refused for the origin until the key's share for this client is spent"
    );
    // That key stays limited for the forger, the right origin included; another client is
    // unaffected, and so are the forger's other keys.
    let (status, _, _) = send(&forger, from(pk.expose(), "https://app.example")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let browser = app_from(&h.state, [198, 51, 100, 20]);
    let (status, _, _) = send(&browser, from(pk.expose(), "https://app.example")).await;
    assert_eq!(status, StatusCode::OK);
    let secret_key = Request::post("/v1/token")
        .header("Authorization", format!("Bearer {}", h.key))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(&forger, secret_key).await;
    assert_eq!(status, StatusCode::OK, "not blocked for other keys: {body}");

    // A secret key refused for the client address counts the same way.
    let elsewhere = app_from(&h.state, [203, 0, 113, 21]);
    let mut refused = 0;
    let status = loop {
        let (status, _, _) = send(
            &elsewhere,
            from(for_one_address.expose(), "https://app.example"),
        )
        .await;
        if status != StatusCode::FORBIDDEN || refused == 30 {
            break status;
        }
        refused += 1;
    };
    assert_eq!((refused, status), (20, StatusCode::TOO_MANY_REQUESTS));
}

/// Guessers spread over a network (five addresses of one IPv4 /24) block the network for lookups,
/// but an unrelated customer next door whose key is already in memory and verifies goes on: a
/// wider block must not let one tenant's neighbour shut it out. A key that needs a lookup is still
/// refused there, and the guessers' own addresses are refused for every key.
#[tokio::test]
async fn a_blocked_network_keeps_guessers_from_the_database_not_its_neighbours_cached_keys() {
    use crate::domain::keys::{self, NewKey};
    let h = harness("network-blocked").await;
    let (_, cold) = keys::create(
        &*h.store,
        &h.hasher,
        &NewKey::for_tests(),
        keymint_jwks::UnixTime::now(),
        "test",
    )
    .await
    .unwrap();
    let token = |key: &str| {
        Request::post("/v1/token")
            .header("Authorization", format!("Bearer {key}"))
            .body(Body::empty())
            .unwrap()
    };
    // The neighbour's key is in use (so in memory).
    let (status, _, _) = send(&app_from(&h.state, [192, 0, 2, 1]), token(&h.key)).await;
    assert_eq!(status, StatusCode::OK);
    // Twenty malformed keys from each of five addresses: each address blocked, and the /24 with
    // its hundredth failure.
    for host in 1..=5u8 {
        let guesser = app_from(&h.state, [198, 51, 100, host]);
        for _ in 0..20 {
            let (status, _, _) = send(&guesser, token("km_sk_live_nonsense")).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
    }
    let neighbour = app_from(&h.state, [198, 51, 100, 200]);
    let (status, _, body) = send(&neighbour, token(&h.key)).await;
    assert_eq!(status, StatusCode::OK, "a cached key that verifies: {body}");
    let (status, _, _) = send(&neighbour, token(cold.expose())).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "a key that needs a lookup waits out the network's block"
    );
    let (status, _, _) = send(&app_from(&h.state, [198, 51, 100, 1]), token(&h.key)).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "a guesser's own address"
    );
    // The admin API checks its token without a lookup: an operator next door is not locked out.
    let (_, admin) = admin_token(&h, "admin:read").await;
    let (status, _, body) = send(&neighbour, admin_get(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A sixth address of the blocked network guessing the secret of the cached key (key IDs are
    // not secret) is still counted, and blocked after its own twenty.
    use crate::domain::keys::api_key::{KeyEnv, KeyKind, SECRET_LEN, assemble};
    let id = h.key.split('_').nth(3).unwrap();
    let wrong = assemble(KeyKind::Secret, KeyEnv::Live, id, &"x".repeat(SECRET_LEN));
    let sixth = app_from(&h.state, [198, 51, 100, 6]);
    for n in 0..20 {
        let (status, _, _) = send(&sixth, token(wrong.expose())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "guess {n}");
    }
    let (status, _, _) = send(&sixth, token(wrong.expose())).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

/// The usage rollups store a refused admin token under the verifier's reason code, never its
/// words: those carry what the token said (here its `kid`), so five bogus tokens were five rows
/// (and an attacker's text in the database) instead of one count of five.
#[tokio::test]
async fn refused_admin_tokens_are_counted_under_a_reason_code_not_the_tokens_words() {
    use crate::store::Store as _;
    use base64::Engine as _;
    let h = harness("admin-refused-code").await;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let (log, guard) = capture_log();
    for n in 0..5 {
        let token = format!(
            "{}.{}.{}",
            b64(&format!(
                r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"attacker-text-{n}"}}"#
            )),
            b64("{}"),
            b64("not a signature")
        );
        let (status, _, _) = send(&app_from(&h.state, [198, 51, 100, 78]), admin_get(&token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    drop(guard);
    // The log line keeps the words, for people.
    assert!(log.text().contains("attacker-text-4"), "{}", log.text());
    h.uses.flush(&*h.store).await;
    let rows: Vec<_> = h
        .store
        .usage_rows(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.count)
        .filter(|c| c.action == "admin.auth")
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].reason, "unknown_kid");
    assert_eq!(rows[0].count, 5);
}
