//! The OpenAPI document against the router: every documented operation answers with one of its
//! documented statuses and content types (and JSON where it says JSON).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use keymint_jwks::{ScopeSet, UnixTime};
use tower::ServiceExt as _;

use super::tests::{harness, send, token_req};
use crate::domain::admin;
use crate::store::Store;

fn doc() -> serde_json::Value {
    serde_json::from_str(super::openapi::document()).unwrap()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_served_at_openapi_json() {
    let h = harness("openapi-doc").await;
    let (status, headers, body) = send(
        &h.app,
        Request::get("/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert!(body["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(body, doc());
    let paths: Vec<&String> = body["paths"].as_object().unwrap().keys().collect();
    for p in [
        "/v1/token",
        "/oauth2/token",
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
        "/v1/revocations",
        "/v1/revocations/events",
        "/v1/admin/keys",
        "/v1/admin/keys/{id}/rotate",
        "/v1/admin/audit",
        "/v1/admin/settings",
        "/v1/admin/settings/{name}",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            paths.iter().any(|q| q.as_str() == p),
            "{p} is not documented"
        );
    }
}

#[tokio::test]
async fn every_documented_operation_answers_as_documented() {
    let h = harness("openapi-routes").await;
    let (_, admin_key) = admin::create_admin_key(
        &*h.store,
        &h.hasher,
        &ScopeSet::parse("admin:write").unwrap(),
        None,
        std::time::Duration::from_secs(3600),
        UnixTime::now(),
        "test",
    )
    .await
    .unwrap();
    let (_, _, t) = send(&h.app, token_req(admin_key.expose())).await;
    let admin_token = t["access_token"].as_str().unwrap().to_owned();
    let keys = h.store.keys(None).await.unwrap();
    let customer = keys.iter().find(|k| !k.is_admin).unwrap().key_id.clone();
    let kid = h.state.signing.load().active.key().kid().to_string();
    let doc = doc();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let concrete = path
                .replace("{id}", &customer)
                .replace("{tenant}", "nobody")
                .replace(
                    "{name}",
                    if path.starts_with("/v1/admin/settings") {
                        "jwks-max-age"
                    } else {
                        "widgets"
                    },
                )
                .replace("{kid}", &kid);
            let mut req = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete);
            let mut body = Body::empty();
            if path.starts_with("/v1/admin") {
                req = req.header("Authorization", format!("Bearer {admin_token}"));
            }
            match (method.as_str(), path.as_str()) {
                ("post", "/v1/token") => {
                    req = req.header("Authorization", format!("Bearer {}", h.key))
                }
                ("post", "/oauth2/token") => {
                    req = req.header("Content-Type", "application/x-www-form-urlencoded");
                    body = Body::from(format!(
                        "grant_type=client_credentials&client_id={customer}&client_secret={}",
                        h.key
                    ));
                }
                ("options", _) => req = req.header("Origin", "https://nowhere.example"),
                ("post", "/v1/admin/keys") => {
                    req = req.header("Content-Type", "application/json");
                    body = Body::from(
                        r#"{"tenant":"t","scopes":["a"],"audiences":["https://api.test"]}"#,
                    );
                }
                ("put", "/v1/admin/settings/{name}") => {
                    req = req.header("Content-Type", "application/json");
                    body = Body::from(r#"{"value":"60s"}"#);
                }
                ("put", _) => {
                    req = req.header("Content-Type", "application/json");
                    body = Body::from(r#"{"public":false}"#);
                }
                ("post", "/v1/admin/revocations") => {
                    req = req.header("Content-Type", "application/json");
                    body = Body::from(r#"{"jti":"abcdefgh"}"#);
                }
                _ => {}
            }
            let res = h
                .app
                .clone()
                .oneshot(req.body(body).unwrap())
                .await
                .unwrap();
            let status = res.status();
            let documented = &op["responses"][status.as_str()];
            assert!(
                !documented.is_null(),
                "{method} {path}: answered {status}, which is not documented"
            );
            if let Some(content) = documented["content"].as_object() {
                let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
                assert!(
                    content.keys().any(|k| ct.starts_with(k.as_str())),
                    "{method} {path}: content type {ct} is not documented for {status}"
                );
                if !ct.starts_with("text/event-stream") {
                    let bytes = res.into_body().collect().await.unwrap().to_bytes();
                    if ct.contains("json") {
                        serde_json::from_slice::<serde_json::Value>(&bytes)
                            .unwrap_or_else(|e| panic!("{method} {path}: not JSON: {e}"));
                    }
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 28, "only {checked} operations checked");
}

/// Every admin call can meet a malformed request (or, behind a trusted proxy, a token sent over
/// plain HTTP), no or a bad token, a missing scope and a database that is down: each must be in
/// its documented answers as a problem document, so clients generated from the document handle
/// them.
#[test]
fn every_admin_operation_documents_its_problem_answers() {
    let doc = doc();
    let mut ops = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/admin") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            for status in ["400", "401", "403", "503"] {
                let content = &op["responses"][status]["content"];
                assert!(
                    content.get("application/problem+json").is_some(),
                    "{method} {path}: {status} is not documented as a problem document"
                );
            }
            ops += 1;
        }
    }
    assert!(ops >= 15, "only {ops} admin operations");
}
