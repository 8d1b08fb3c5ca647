//! RFC 9457 problem documents: how the admin API answers errors (`application/problem+json`).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error_table::{self, Scheme};
use crate::domain::DomainError;
use crate::domain::refusal::RequestRefusal;

/// An admin API error on its way out.
#[derive(Debug)]
pub(crate) struct Problem(pub(crate) DomainError);

impl Problem {
    fn unreadable(name: &'static str, why: String) -> Self {
        Self(DomainError::InvalidRequest(RequestRefusal::Unreadable {
            name,
            why,
        }))
    }
}

impl From<DomainError> for Problem {
    fn from(e: DomainError) -> Self {
        Self(e)
    }
}

impl From<JsonRejection> for Problem {
    fn from(e: JsonRejection) -> Self {
        Self::unreadable("request body", e.body_text())
    }
}

impl From<QueryRejection> for Problem {
    fn from(e: QueryRejection) -> Self {
        Self::unreadable("query", e.body_text())
    }
}

impl From<PathRejection> for Problem {
    fn from(e: PathRejection) -> Self {
        Self::unreadable("path", e.body_text())
    }
}

/// What a problem document said, kept with the response for the audit line.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    /// The stable code.
    pub(crate) code: &'static str,
    /// The detail, for people.
    pub(crate) detail: String,
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
        let row = error_table::row(&self.0);
        let doc = Document {
            r#type: "about:blank",
            title: row.status.canonical_reason().unwrap_or("Error"),
            status: row.status.as_u16(),
            detail: &row.detail,
            code: row.code,
        };
        let mut res = (row.status, Json(doc)).into_response();
        // For the admin API's refusal audit (`admin::audit_refusals`), which sees only the
        // response.
        res.extensions_mut().insert(Refusal {
            code: row.code,
            detail: row.detail.to_string(),
        });
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        row.headers(h, Scheme::Bearer);
        res
    }
}
