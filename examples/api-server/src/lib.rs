//! The example API server's routes, as a library: the binary serves exactly this router, and the
//! end-to-end tests (`tests/tests/attack_catalogue/`) serve it on a loopback port to attack it
//! over real HTTP.
//!
//! `GET /orders` needs `orders:read`, `POST /orders` needs `orders:write`; both answer JSON naming
//! the caller's tenant. `GET /healthz` is open. Every refusal is the verifier's own answer
//! (`keymint_verifier::layer`): 401 with `WWW-Authenticate`, 403 `insufficient_scope`, 503 when
//! the sources are too stale to vouch for anything.

use axum::Json;
use axum::routing::get;
use keymint_verifier::Verifier;
use keymint_verifier::layer::{Auth, AuthRejection};

/// The API's router, protected by `verifier` (however it was built: static keys, files, or live
/// sources).
pub fn router(verifier: &Verifier) -> axum::Router {
    axum::Router::new()
        .route("/orders", get(list_orders).post(create_order))
        .layer(verifier.layer())
        .route("/healthz", get(|| async { "ok" }))
}

async fn list_orders(auth: Auth) -> Result<Json<serde_json::Value>, AuthRejection> {
    auth.require_scopes(&["orders:read"])?;
    Ok(Json(serde_json::json!({
        "tenant": auth.claims().tenant.as_str(),
        "client_id": auth.claims().client_id.as_str(),
        "orders": [{"id": 1, "item": "coffee"}, {"id": 2, "item": "tea"}],
    })))
}

async fn create_order(auth: Auth) -> Result<Json<serde_json::Value>, AuthRejection> {
    auth.require_scopes(&["orders:write"])?;
    Ok(Json(serde_json::json!({
        "tenant": auth.claims().tenant.as_str(),
        "created": {"id": 3, "item": "cake"},
    })))
}
