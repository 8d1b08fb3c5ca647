//! axum integration (feature `axum`): a layer that hands the verifier to handlers, an extractor
//! that verifies the token from the `Authorization` header (`Bearer`, or `DPoP` with its proof in
//! the `DPoP` header), and one mapping of every failure to HTTP.
//!
//! ```no_run
//! # async fn demo(verifier: keymint_verifier::Verifier) {
//! use axum::{Json, Router, routing::get};
//! use keymint_verifier::layer::{Auth, AuthRejection};
//!
//! async fn orders(auth: Auth) -> Result<Json<serde_json::Value>, AuthRejection> {
//!     auth.require_scopes(&["orders:read"])?;
//!     Ok(Json(serde_json::json!({ "tenant": auth.claims().tenant.as_str() })))
//! }
//! let app: Router = Router::new().route("/orders", get(orders)).layer(verifier.layer());
//! # }
//! ```
//!
//! Answers (RFC 6750 §3, RFC 9449 §7.1): no token → 401 with `WWW-Authenticate: Bearer
//! realm="api"` and no error code; a token that was refused → 401 with `error="invalid_token"`
//! (under the scheme it came with); a bad, replayed or mismatched DPoP proof → 401 `DPoP
//! error="invalid_dpop_proof"`; a nonce required → 401 `DPoP error="use_dpop_nonce"` with a
//! `DPoP-Nonce` header; a genuine token without the scope → 403 `error="insufficient_scope"` and the
//! `scope` needed; a key (or DPoP key) over its share of the DPoP replay cache → 429 with
//! `Retry-After`, for that key alone; sources too stale to vouch for anything → 503 with
//! `Retry-After`. Bodies are small JSON; the token is never logged or echoed.
//!
//! A DPoP proof's `htu` is compared with the verifier's
//! [`dpop_base_url`](crate::VerifierBuilder::dpop_base_url) plus the request path. Without one, a
//! DPoP request is answered 500 `server_error` (`dpop_base_url_missing`): the `Host` header is the
//! client's to choose, so it may only stand in through
//! [`dangerous`](crate::dangerous::DangerousBuilder::dpop_htu_from_host_header).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keymint_jwks::{Claims, Scope};

use crate::{AccessError, VerifiedToken, Verifier, VerifyError};

impl Verifier {
    /// A layer that makes this verifier available to the [`Auth`] extractor.
    pub fn layer(&self) -> axum::Extension<Verifier> {
        axum::Extension(self.clone())
    }
}

/// A request whose token verified: `Authorization: Bearer <token>` (never a DPoP-bound token), or
/// `Authorization: DPoP <token>` with a valid `DPoP` proof for this request. Derefs to the
/// [`VerifiedToken`].
#[derive(Debug, Clone)]
pub struct Auth(pub VerifiedToken);

impl std::ops::Deref for Auth {
    type Target = VerifiedToken;
    fn deref(&self) -> &VerifiedToken {
        &self.0
    }
}

impl Auth {
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
    /// No token came.
    Missing,
    /// A bearer token came and was refused.
    Invalid(VerifyError),
    /// A DPoP token or its proof was refused.
    InvalidDpop(VerifyError),
    /// The verifier cannot vouch for anything right now (stale sources).
    Unavailable(VerifyError),
    /// The token is genuine but lacks what the route needs; the second field is what it needs.
    Forbidden(AccessError, Vec<Scope>),
    /// The token's key is over its share of the DPoP replay cache: it alone is refused for now.
    TooManyProofs {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// A DPoP request came and no [`dpop_base_url`](crate::VerifierBuilder::dpop_base_url) is
    /// configured: a server misconfiguration.
    NoDpopBaseUrl,
    /// The verifier layer is missing or a route names an invalid scope: a server bug.
    Misconfigured,
}

impl<S: Send + Sync> FromRequestParts<S> for Auth {
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
        let token = token.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return match verifier.verify(token) {
                Ok(t) => Ok(Self(t)),
                Err(e) if e.is_unavailable() => Err(AuthRejection::Unavailable(e)),
                Err(e) => Err(AuthRejection::Invalid(e)),
            };
        }
        if !scheme.eq_ignore_ascii_case("dpop") {
            return Err(AuthRejection::Missing);
        }
        let proof = parts
            .headers
            .get("dpop")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                AuthRejection::InvalidDpop(VerifyError::InvalidDpopProof("no DPoP header".into()))
            })?;
        let path = parts.uri.path();
        let url = match verifier.dpop_base_url() {
            Some(base) => format!("{base}{path}"),
            None if !verifier.dpop_htu_from_host() => return Err(AuthRejection::NoDpopBaseUrl),
            None => {
                let host = parts
                    .headers
                    .get(header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("localhost");
                format!("http://{host}{path}")
            }
        };
        match verifier.verify_dpop(token, proof, parts.method.as_str(), &url) {
            Ok(t) => Ok(Self(t)),
            Err(e) if e.is_unavailable() => Err(AuthRejection::Unavailable(e)),
            Err(VerifyError::DpopProofQuota { retry_after_secs }) => {
                Err(AuthRejection::TooManyProofs { retry_after_secs })
            }
            Err(e) => Err(AuthRejection::InvalidDpop(e)),
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
            Self::InvalidDpop(e) => {
                let code = match e {
                    VerifyError::InvalidDpopProof(_) => "invalid_dpop_proof",
                    VerifyError::UseDpopNonce { .. } => "use_dpop_nonce",
                    _ => "invalid_token",
                };
                (
                    StatusCode::UNAUTHORIZED,
                    Some(format!(
                        "DPoP realm=\"api\", error=\"{code}\", algs=\"EdDSA ES256\""
                    )),
                    serde_json::json!({"error": code, "error_description": e.code()}),
                )
            }
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
            Self::TooManyProofs { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                None,
                serde_json::json!({"error": "too_many_requests", "error_description": "dpop_proof_quota"}),
            ),
            Self::NoDpopBaseUrl => (
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                serde_json::json!({"error": "server_error", "error_description": "dpop_base_url_missing"}),
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
        if let Self::InvalidDpop(VerifyError::UseDpopNonce { nonce }) = &self
            && let Ok(v) = HeaderValue::from_str(nonce)
        {
            res.headers_mut().insert("dpop-nonce", v);
        }
        if let Self::TooManyProofs { retry_after_secs } = &self {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        res
    }
}
