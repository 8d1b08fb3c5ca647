//! The axum integration without a socket: each failure gets its RFC 6750 answer, handlers get the
//! typed claims, and tokens are taken from the Authorization header only.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use common::*;
use http_body_util::BodyExt as _;
use keymint_jwks::*;
use keymint_verifier::layer::{Auth, AuthRejection};
use tower::ServiceExt as _;

async fn orders(auth: Auth) -> Result<String, AuthRejection> {
    auth.require_scopes(&["orders:read"])?;
    Ok(format!("orders of {}", auth.claims().tenant))
}

async fn admin(auth: Auth) -> Result<String, AuthRejection> {
    auth.require_scopes(&["orders:read", "orders:admin"])?;
    Ok("admin".into())
}

fn app(v: &keymint_verifier::Verifier) -> axum::Router {
    axum::Router::new()
        .route("/orders", get(orders))
        .route("/admin", get(admin))
        .layer(v.layer())
}

async fn call(
    app: &axum::Router,
    path: &str,
    auth: Option<&str>,
) -> (StatusCode, Option<String>, String) {
    let mut req = Request::get(path);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (status, challenge, body)
}

fn now_claims() -> Claims {
    let now = UnixTime::now();
    let mut c = claims();
    c.iat = now;
    c.nbf = Some(now);
    c.exp = now.saturating_add(std::time::Duration::from_secs(600));
    c
}

fn verifier(signer: &Signer) -> keymint_verifier::Verifier {
    verifier_with(
        signer,
        keymint_verifier::Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
            .dpop_base_url("http://api.test"),
    )
}

/// `builder` given `signer`'s key set and a fresh empty revocation list.
fn verifier_with(
    signer: &Signer,
    builder: keymint_verifier::VerifierBuilder,
) -> keymint_verifier::Verifier {
    let v = builder
        .jwks(Jwks::new(vec![signer.key().public_jwk()]).unwrap())
        .build()
        .unwrap();
    let now = UnixTime::now();
    let list = signer
        .sign_revocation_list(&RevocationList {
            v: 1,
            iss: Issuer::new(ISS).unwrap(),
            serial: 1,
            iat: now,
            exp: now.saturating_add(std::time::Duration::from_secs(3600)),
            entries: vec![],
        })
        .unwrap();
    v.update_revocations(list.jws()).unwrap();
    v
}

#[tokio::test]
async fn a_good_token_reaches_the_handler_with_typed_claims() {
    let signer = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let app = app(&verifier(&signer));
    let token = signer.sign_access_token(&now_claims()).unwrap();
    let (status, _, body) = call(&app, "/orders", Some(&format!("Bearer {token}"))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "orders of acme"));
    // The scheme is case-insensitive.
    let (status, _, _) = call(&app, "/orders", Some(&format!("bearer {token}"))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn no_token_is_401_without_an_error_code() {
    let signer = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let app = app(&verifier(&signer));
    let token = signer.sign_access_token(&now_claims()).unwrap();
    for (path, auth) in [
        ("/orders".to_owned(), None),
        ("/orders".to_owned(), Some(format!("Basic {token}"))),
        // A token in the query string is ignored: it is not a credential here.
        (format!("/orders?access_token={token}"), None),
    ] {
        let (status, challenge, _) = call(&app, &path, auth.as_deref()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(challenge.as_deref(), Some("Bearer realm=\"api\""));
    }
}

#[tokio::test]
async fn a_refused_token_is_401_invalid_token_and_the_body_never_echoes_it() {
    let signer = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let other = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let app = app(&verifier(&signer));
    let forged = other.sign_access_token(&now_claims()).unwrap();
    let (status, challenge, body) = call(&app, "/orders", Some(&format!("Bearer {forged}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let challenge = challenge.unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(!body.contains(&forged) && !challenge.contains(&forged));
}

#[tokio::test]
async fn a_genuine_token_without_the_scope_is_403_insufficient_scope() {
    let signer = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let app = app(&verifier(&signer));
    let token = signer.sign_access_token(&now_claims()).unwrap();
    let (status, challenge, body) = call(&app, "/admin", Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let challenge = challenge.unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"orders:read orders:admin\""),
        "{challenge}"
    );
    assert!(body.contains("insufficient_scope"));
}

#[tokio::test]
async fn stale_sources_are_503_not_the_clients_fault() {
    let signer = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    // No revocation list installed: the verifier cannot vouch for anything.
    let v =
        keymint_verifier::Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
            .jwks(Jwks::new(vec![signer.key().public_jwk()]).unwrap())
            .build()
            .unwrap();
    let token = signer.sign_access_token(&now_claims()).unwrap();
    let res = app(&v)
        .oneshot(
            Request::get("/orders")
                .header("Authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().get("retry-after").is_some());
    assert!(res.headers().get("www-authenticate").is_none());
}

#[tokio::test]
async fn a_route_without_the_layer_is_a_server_error_not_an_open_door() {
    let signer = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let token = signer.sign_access_token(&now_claims()).unwrap();
    let bare = axum::Router::new().route("/orders", get(orders));
    let (status, _, _) = call(&bare, "/orders", Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

async fn call_dpop(
    app: &axum::Router,
    token: &str,
    proof: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap) {
    let mut req = Request::get("/orders")
        .header("Host", "api.test")
        .header("Authorization", format!("DPoP {token}"));
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    (res.status(), res.headers().clone())
}

fn bound(signer: &Signer, browser: &SigningKey) -> String {
    let mut c = now_claims();
    c.cnf = Some(Confirmation {
        jkt: keymint_jwks::Jkt::new(browser.kid().as_str()).unwrap(),
    });
    signer.sign_access_token(&c).unwrap()
}

fn proof(browser: &SigningKey, token: &str, jti: &str, nonce: Option<&str>) -> String {
    let ath = keymint_jwks::dpop::access_token_hash(token);
    keymint_jwks::dpop::make_proof(
        browser,
        "GET",
        "http://api.test/orders",
        UnixTime::now(),
        jti,
        Some(&ath),
        nonce,
    )
    .unwrap()
}

#[tokio::test]
async fn dpop_tokens_need_their_proof_and_never_pass_as_bearer() {
    let signer = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let browser = SigningKey::generate(Algorithm::Es256).unwrap();
    let app = app(&verifier(&signer));
    let token = bound(&signer, &browser);
    let p = proof(&browser, &token, "p1", None);
    assert_eq!(call_dpop(&app, &token, Some(&p)).await.0, StatusCode::OK);
    // Replayed proof, missing proof, and the token lifted without its key (as a bearer token).
    let (status, headers) = call_dpop(&app, &token, Some(&p)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("DPoP ")
    );
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_dpop_proof\"")
    );
    let (status, _) = call_dpop(&app, &token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, challenge, _) = call(&app, "/orders", Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.unwrap().contains("invalid_token"));
}

#[tokio::test]
async fn dpop_nonces_are_demanded_and_honoured() {
    let signer = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let browser = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let v =
        keymint_verifier::Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
            .jwks(Jwks::new(vec![signer.key().public_jwk()]).unwrap())
            .dpop_base_url("http://api.test")
            .require_dpop_nonce()
            .dangerous()
            .skip_revocation_checks()
            .build()
            .unwrap();
    let app = app(&v);
    let token = bound(&signer, &browser);
    let (status, headers) =
        call_dpop(&app, &token, Some(&proof(&browser, &token, "n1", None))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("use_dpop_nonce")
    );
    let nonce = headers["dpop-nonce"].to_str().unwrap().to_owned();
    let (status, _) = call_dpop(
        &app,
        &token,
        Some(&proof(&browser, &token, "n2", Some(&nonce))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

fn bound_for(signer: &Signer, browser: &SigningKey, sub: &str) -> String {
    let mut c = now_claims();
    c.sub = ApiKeyId::new(sub).unwrap();
    c.cnf = Some(Confirmation {
        jkt: keymint_jwks::Jkt::new(browser.kid().as_str()).unwrap(),
    });
    signer.sign_access_token(&c).unwrap()
}

#[tokio::test]
async fn a_key_flooding_dpop_proofs_gets_429_alone_even_rotating_its_dpop_key() {
    let signer = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    // 1 % of 300 each: three live proofs per key (`sub`) and per DPoP key.
    let v = verifier_with(
        &signer,
        keymint_verifier::Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
            .dpop_base_url("http://api.test")
            .dpop_replay_capacity(300),
    );
    let app = app(&v);
    for n in 0..3 {
        let browser = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let token = bound_for(&signer, &browser, "flooderKey01");
        let p = proof(&browser, &token, &format!("f{n}"), None);
        assert_eq!(call_dpop(&app, &token, Some(&p)).await.0, StatusCode::OK);
    }
    let browser = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let token = bound_for(&signer, &browser, "flooderKey01");
    let (status, headers) =
        call_dpop(&app, &token, Some(&proof(&browser, &token, "over", None))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=66).contains(&retry), "Retry-After {retry}");
    // Another key is served.
    let token = bound_for(&signer, &browser, "victimKey001");
    let (status, _) = call_dpop(&app, &token, Some(&proof(&browser, &token, "v", None))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn dpop_without_a_base_url_is_a_server_error_unless_the_host_header_is_dangerously_trusted() {
    let signer = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let browser = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let builder = || {
        keymint_verifier::Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
    };
    let strict = app(&verifier_with(&signer, builder()));
    let token = bound(&signer, &browser);
    let res = strict
        .clone()
        .oneshot(
            Request::get("/orders")
                .header("Host", "api.test")
                .header("Authorization", format!("DPoP {token}"))
                .header("DPoP", proof(&browser, &token, "h1", None))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(body.contains("dpop_base_url_missing"), "{body}");
    let trusting = app(&verifier_with(
        &signer,
        builder().dangerous().dpop_htu_from_host_header(),
    ));
    let (status, _) = call_dpop(
        &trusting,
        &token,
        Some(&proof(&browser, &token, "h2", None)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}
