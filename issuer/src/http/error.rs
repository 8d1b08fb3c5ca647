//! The one mapping from errors to HTTP responses: RFC 6749 §5.2 JSON for the token endpoints.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::DomainError;

/// How the client authenticated, for the `WWW-Authenticate` challenge of a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: Bearer` or `X-API-Key` (`/v1/token`).
    Bearer,
    /// HTTP Basic or form credentials (`/oauth2/token`).
    Basic,
}

/// An error on its way out.
#[derive(Debug)]
pub enum HttpError {
    /// A domain error.
    Domain(DomainError, Scheme),
    /// The body is over the limit.
    PayloadTooLarge,
    /// `grant_type` is not `client_credentials`.
    UnsupportedGrantType,
}

/// RFC 6749 §5.2 error body (for the OpenAPI document; [`OAuthError`] is what is written).
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct OAuthErrorBody {
    /// RFC 6749 error code.
    error: String,
    /// What went wrong, for people.
    error_description: String,
}

#[derive(Serialize)]
struct OAuthError<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl HttpError {
    pub(crate) fn bearer(e: DomainError) -> Self {
        Self::Domain(e, Scheme::Bearer)
    }
    pub(crate) fn basic(e: DomainError) -> Self {
        Self::Domain(e, Scheme::Basic)
    }
    pub(crate) fn invalid_request(scheme: Scheme, msg: impl Into<String>) -> Self {
        Self::Domain(DomainError::InvalidRequest(msg.into()), scheme)
    }

    /// Why, for an audit line (server-written words only: never what the client sent).
    pub(crate) fn reason(&self) -> String {
        match self {
            Self::PayloadTooLarge => "body over the limit".into(),
            Self::UnsupportedGrantType => "unsupported grant_type".into(),
            Self::Domain(DomainError::InvalidClient { reason }, _) => reason.as_str().into(),
            Self::Domain(e, _) => e.to_string(),
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let (status, code, description, scheme) = match &self {
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "the request body is larger than 16 KiB".to_owned(),
                None,
            ),
            Self::UnsupportedGrantType => (
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only grant_type=client_credentials is supported".to_owned(),
                None,
            ),
            Self::Domain(e, scheme) => match e {
                DomainError::InvalidClient { .. } => (
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "client authentication failed".to_owned(),
                    Some(*scheme),
                ),
                DomainError::InvalidScope(m) => {
                    (StatusCode::BAD_REQUEST, "invalid_scope", m.clone(), None)
                }
                DomainError::InvalidTarget(m) => {
                    (StatusCode::BAD_REQUEST, "invalid_target", m.clone(), None)
                }
                DomainError::InvalidRequest(m) | DomainError::Invalid(m) => {
                    (StatusCode::BAD_REQUEST, "invalid_request", m.clone(), None)
                }
                DomainError::InvalidDpopProof(m) => (
                    StatusCode::BAD_REQUEST,
                    "invalid_dpop_proof",
                    m.clone(),
                    None,
                ),
                DomainError::UnauthorizedClient(m) => (
                    StatusCode::FORBIDDEN,
                    "unauthorized_client",
                    m.clone(),
                    None,
                ),
                DomainError::RateLimited { .. } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many requests; retry after the time in Retry-After".to_owned(),
                    None,
                ),
                DomainError::NotFound(m) => (
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("{m} not found"),
                    None,
                ),
                DomainError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m.clone(), None),
                DomainError::Unavailable(source) => {
                    tracing::error!(error = %source, "database unavailable");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "temporarily_unavailable",
                        "the service is temporarily unavailable; retry shortly".to_owned(),
                        None,
                    )
                }
                other => {
                    // The detail goes to the log once; the client gets a generic body.
                    tracing::error!(error = %other, "internal error");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "server_error",
                        "internal error".to_owned(),
                        None,
                    )
                }
            },
        };
        let mut res = (
            status,
            Json(OAuthError {
                error: code,
                error_description: &description,
            }),
        )
            .into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match scheme {
            Some(Scheme::Bearer) => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"keymint\""),
                );
            }
            Some(Scheme::Basic) => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"keymint\""),
                );
            }
            None => {}
        }
        if let Self::Domain(DomainError::RateLimited { retry_after }, _) = &self {
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                h.insert(header::RETRY_AFTER, v);
            }
        }
        if let Self::Domain(DomainError::Unavailable(_), _) = &self {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}
