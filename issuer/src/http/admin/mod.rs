//! `/v1/admin/…`: keys, scopes, tenants, revocations, signing keys and the audit log, for admin
//! tokens (from admin keys, audience `<issuer>/v1/admin`). `admin:read` lists and reads;
//! `admin:write` also creates, rotates and revokes. Errors are RFC 9457 problem documents.

pub(crate) mod audit;
pub(crate) mod keys;
pub(crate) mod revocations;
pub(crate) mod scopes;
pub(crate) mod signing_keys;
pub(crate) mod tenants;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequestParts, Path};
use axum::http::header;
use axum::http::request::Parts;
use keymint_jwks::ApiKeyId;
use serde::Serialize;
use zeroize::Zeroizing;

use super::problem::{Problem, ProblemDocument};
use crate::domain::DomainError;

pub(crate) type Answer<T> = Result<Json<T>, Problem>;

/// The admin token from `Authorization: Bearer` (never from a query string). Zeroized on drop.
pub(crate) struct AdminBearer(Option<Zeroizing<String>>);

impl AdminBearer {
    pub(crate) fn token(&self) -> Option<&str> {
        self.0.as_deref().map(String::as_str)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AdminBearer {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if super::credentials::arrived_in_clear(&parts.headers, &parts.extensions) {
            return Err(Problem(DomainError::Invalid(
                "the request reached the proxy over plain HTTP: admin tokens must only be sent \
                 over HTTPS"
                    .into(),
            )));
        }
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| Zeroizing::new(t.trim().to_owned()));
        Ok(Self(token))
    }
}

pub(crate) fn invalid(what: &str, e: impl std::fmt::Display) -> Problem {
    Problem(DomainError::Invalid(format!("{what}: {e}")))
}

/// A JSON body that may be left out (no `Content-Type: application/json`) or be `null`: the
/// defaults.
pub(crate) fn optional<T: Default>(
    body: Result<Json<Option<T>>, JsonRejection>,
) -> Result<T, Problem> {
    match body {
        Ok(Json(b)) => Ok(b.unwrap_or_default()),
        Err(JsonRejection::MissingJsonContentType(_)) => Ok(T::default()),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn key_id(id: Result<Path<String>, PathRejection>) -> Result<ApiKeyId, Problem> {
    let Path(id) = id?;
    ApiKeyId::new(id).map_err(|e| invalid("key ID", e))
}

/// The answers every admin call may give, whatever it does (for the OpenAPI document).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum AdminErrors {
    /// A malformed parameter or body, or (behind a trusted proxy) a token that reached the proxy
    /// over plain HTTP.
    #[response(
        status = 400,
        description = "malformed request, or a token sent over plain HTTP to the proxy",
        content_type = "application/problem+json"
    )]
    BadRequest(#[to_schema] ProblemDocument),
    /// No or invalid admin token.
    #[response(
        status = 401,
        description = "no or invalid admin token",
        content_type = "application/problem+json"
    )]
    Unauthenticated(#[to_schema] ProblemDocument),
    /// The token lacks the scope.
    #[response(
        status = 403,
        description = "the token lacks the scope",
        content_type = "application/problem+json"
    )]
    Forbidden(#[to_schema] ProblemDocument),
    /// The database is unavailable (Retry-After).
    #[response(
        status = 503,
        description = "database unavailable",
        content_type = "application/problem+json"
    )]
    Unavailable(#[to_schema] ProblemDocument),
}

/// A count of what an action changed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Done {
    pub(crate) ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) revoked_keys: Option<u64>,
}

pub(crate) const DONE: Done = Done {
    ok: true,
    revoked_keys: None,
};
