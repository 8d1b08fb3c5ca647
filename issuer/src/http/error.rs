//! The one mapping from errors to HTTP responses: RFC 6749 §5.2 JSON for the token endpoints.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error_table::{self, Challenge, Row};
use crate::domain::DomainError;
use crate::domain::refusal::RequestRefusal;

pub(crate) use super::error_table::Scheme;

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
    pub(crate) fn invalid_request(scheme: Scheme, why: RequestRefusal) -> Self {
        Self::Domain(DomainError::InvalidRequest(why), scheme)
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
        let (row, scheme) = match &self {
            Self::PayloadTooLarge => (
                Row {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    code: "invalid_request",
                    detail: "the request body is larger than 16 KiB".into(),
                    retry_after: None,
                    challenge: Challenge::None,
                },
                Scheme::Bearer,
            ),
            Self::UnsupportedGrantType => (
                Row {
                    status: StatusCode::BAD_REQUEST,
                    code: "unsupported_grant_type",
                    detail: "only grant_type=client_credentials is supported".into(),
                    retry_after: None,
                    challenge: Challenge::None,
                },
                Scheme::Basic,
            ),
            Self::Domain(e, scheme) => (error_table::row(e), *scheme),
        };
        let mut res = (
            row.status,
            Json(OAuthError {
                error: row.code,
                error_description: &row.detail,
            }),
        )
            .into_response();
        row.headers(res.headers_mut(), scheme);
        res
    }
}
