//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::AppState;
use crate::store::Store;

/// `GET /healthz`: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "the process is up", body = String, content_type = "text/plain")))]
pub(crate) async fn healthz() -> impl IntoResponse {
    "ok"
}

/// `GET /readyz`: 503 while the database does not answer.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "the database answers", body = String, content_type = "text/plain"),
        (status = 503, description = "the database does not answer", body = String, content_type = "text/plain"),
    ))]
pub(crate) async fn readyz<S: Store>(State(st): State<AppState<S>>) -> impl IntoResponse {
    match st.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}
