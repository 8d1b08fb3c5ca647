//! RFC 9457 problem documents: how the admin API answers errors (`application/problem+json`).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::DomainError;

/// An admin API error on its way out.
#[derive(Debug)]
pub(crate) struct Problem(pub(crate) DomainError);

impl From<DomainError> for Problem {
    fn from(e: DomainError) -> Self {
        Self(e)
    }
}

impl From<JsonRejection> for Problem {
    fn from(e: JsonRejection) -> Self {
        Self(DomainError::Invalid(format!(
            "request body: {}",
            e.body_text()
        )))
    }
}

impl From<QueryRejection> for Problem {
    fn from(e: QueryRejection) -> Self {
        Self(DomainError::Invalid(format!("query: {}", e.body_text())))
    }
}

impl From<PathRejection> for Problem {
    fn from(e: PathRejection) -> Self {
        Self(DomainError::Invalid(format!("path: {}", e.body_text())))
    }
}

/// An RFC 9457 problem document (for the OpenAPI document; [`Document`] is what is written).
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct ProblemDocument {
    /// `about:blank`: the status says it all.
    r#type: String,
    /// The status' reason phrase.
    title: String,
    /// The HTTP status.
    status: u16,
    /// What went wrong, for people.
    detail: String,
    /// A stable code: unauthenticated, insufficient_scope, not_found, invalid_request, conflict,
    /// rate_limited, temporarily_unavailable, server_error.
    code: String,
}

/// The document (RFC 9457 §3), with `code` as a stable, machine-readable extension member.
#[derive(Serialize)]
struct Document<'a> {
    r#type: &'static str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let (status, code, detail) = match &self.0 {
            DomainError::AdminUnauthenticated { reason, .. } => {
                (StatusCode::UNAUTHORIZED, "unauthenticated", reason.clone())
            }
            DomainError::AdminForbidden { .. } => (
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                self.0.to_string(),
            ),
            DomainError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", self.0.to_string()),
            DomainError::Invalid(m) | DomainError::InvalidRequest(m) => {
                (StatusCode::BAD_REQUEST, "invalid_request", m.clone())
            }
            DomainError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m.clone()),
            DomainError::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests; retry after the time in Retry-After".to_owned(),
            ),
            DomainError::Unavailable(source) => {
                tracing::error!(error = %source, "database unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the service is temporarily unavailable; retry shortly".to_owned(),
                )
            }
            other => {
                // The detail goes to the log once; the client gets a generic body.
                tracing::error!(error = %other, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "internal error".to_owned(),
                )
            }
        };
        let doc = Document {
            r#type: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: &detail,
            code,
        };
        let mut res = (status, Json(doc)).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let challenge = match &self.0 {
            // RFC 6750 §3.1: no error code when no token came at all.
            DomainError::AdminUnauthenticated {
                presented: false, ..
            } => Some("Bearer realm=\"keymint-admin\"".to_owned()),
            DomainError::AdminUnauthenticated {
                presented: true, ..
            } => Some("Bearer realm=\"keymint-admin\", error=\"invalid_token\"".to_owned()),
            DomainError::AdminForbidden { needed } => Some(format!(
                "Bearer realm=\"keymint-admin\", error=\"insufficient_scope\", scope=\"{needed}\""
            )),
            _ => None,
        };
        if let Some(v) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
        match &self.0 {
            DomainError::Unavailable(_) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            DomainError::RateLimited { retry_after } => {
                let secs = retry_after.as_secs().max(1).to_string();
                if let Ok(v) = HeaderValue::from_str(&secs) {
                    h.insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        res
    }
}
