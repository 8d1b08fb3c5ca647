//! axum integration (feature `axum`): a layer that hands the verifier to handlers, an extractor
//! that verifies the `Authorization: Bearer` token, and one mapping of every failure to HTTP.
//!
//! ```no_run
//! # async fn demo(verifier: keymint_verifier::Verifier) {
//! use axum::{Json, Router, routing::get};
//! use keymint_verifier::layer::{AuthRejection, Bearer};
//!
//! async fn orders(auth: Bearer) -> Result<Json<serde_json::Value>, AuthRejection> {
//!     auth.require_scopes(&["orders:read"])?;
//!     Ok(Json(serde_json::json!({ "tenant": auth.claims().tenant.as_str() })))
//! }
//! let app: Router = Router::new().route("/orders", get(orders)).layer(verifier.layer());
//! # }
//! ```
//!
//! Answers (RFC 6750 §3): no token → 401 with `WWW-Authenticate: Bearer realm="api"` and no error
//! code; a token that was refused → 401 with `error="invalid_token"`; a genuine token without the
//! scope → 403 with `error="insufficient_scope"` and the `scope` needed; sources too stale to vouch
//! for anything → 503 with `Retry-After`. Bodies are small JSON; the token is never logged or
//! echoed.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keymint_jwks::{Claims, Scope};

use crate::{AccessError, VerifiedToken, Verifier, VerifyError};

impl Verifier {
    /// A layer that makes this verifier available to the [`Bearer`] extractor.
    pub fn layer(&self) -> axum::Extension<Verifier> {
        axum::Extension(self.clone())
    }
}

/// A request whose `Authorization: Bearer` token verified. Derefs to the [`VerifiedToken`].
#[derive(Debug, Clone)]
pub struct Bearer(pub VerifiedToken);

impl std::ops::Deref for Bearer {
    type Target = VerifiedToken;
    fn deref(&self) -> &VerifiedToken {
        &self.0
    }
}

impl Bearer {
    /// The typed claims.
    pub fn claims(&self) -> &Claims {
        self.0.claims()
    }

    /// Requires every scope in `scopes` (403 `insufficient_scope` otherwise).
    pub fn require_scopes(&self, scopes: &[&str]) -> Result<(), AuthRejection> {
        let parsed: Vec<Scope> = scopes
            .iter()
            .map(|s| Scope::new(*s))
            .collect::<Result<_, _>>()
            .map_err(|_| AuthRejection::Misconfigured)?;
        self.0
            .require_scopes(parsed.iter())
            .map_err(|e| AuthRejection::Forbidden(e, parsed.clone()))
    }
}

/// Why a request was not let through.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthRejection {
    /// No bearer token came.
    Missing,
    /// A token came and was refused.
    Invalid(VerifyError),
    /// The verifier cannot vouch for anything right now (stale sources).
    Unavailable(VerifyError),
    /// The token is genuine but lacks what the route needs; the second field is what it needs.
    Forbidden(AccessError, Vec<Scope>),
    /// The verifier layer is missing or a route names an invalid scope: a server bug.
    Misconfigured,
}

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AuthRejection> {
        let verifier = parts
            .extensions
            .get::<Verifier>()
            .ok_or(AuthRejection::Misconfigured)?;
        // Only the Authorization header: tokens in query strings end up in logs.
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthRejection::Missing)?;
        let (scheme, token) = value.split_once(' ').ok_or(AuthRejection::Missing)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthRejection::Missing);
        }
        match verifier.verify(token.trim()) {
            Ok(t) => Ok(Self(t)),
            Err(e) if e.is_unavailable() => Err(AuthRejection::Unavailable(e)),
            Err(e) => Err(AuthRejection::Invalid(e)),
        }
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let (status, challenge, body) = match &self {
            Self::Missing => (
                StatusCode::UNAUTHORIZED,
                Some("Bearer realm=\"api\"".to_owned()),
                serde_json::json!({"error": "unauthorized", "error_description": "a bearer token is required"}),
            ),
            Self::Invalid(e) => (
                StatusCode::UNAUTHORIZED,
                Some(format!(
                    "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"{}\"",
                    e.code()
                )),
                serde_json::json!({"error": "invalid_token", "error_description": e.code()}),
            ),
            Self::Forbidden(_, needed) => {
                let scope = needed
                    .iter()
                    .map(Scope::as_str)
                    .collect::<Vec<_>>()
                    .join(" ");
                (
                    StatusCode::FORBIDDEN,
                    Some(format!(
                        "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"{scope}\""
                    )),
                    serde_json::json!({"error": "insufficient_scope", "scope": scope}),
                )
            }
            Self::Unavailable(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                serde_json::json!({"error": "temporarily_unavailable", "error_description": e.code()}),
            ),
            Self::Misconfigured => (
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                serde_json::json!({"error": "server_error"}),
            ),
        };
        let mut res = (status, axum::Json(body)).into_response();
        if let Some(c) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, c);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        res
    }
}
