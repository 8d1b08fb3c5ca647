//! The one table from domain errors to HTTP: per variant its status, its stable code, what the
//! client may read, `Retry-After`, and the challenge a 401 or 403 carries. Both answer formats
//! render from it: RFC 6749 §5.2 JSON on the token endpoints ([`super::error`]) and RFC 9457
//! problem documents on the admin API ([`super::problem`]). The match has no wildcard arm: a new
//! variant does not compile until it has its row here.

use std::borrow::Cow;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::domain::Chain;
use crate::domain::DomainError;

/// How the token endpoint's client authenticated, for the `WWW-Authenticate` challenge of a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: Bearer` or `X-API-Key` (`/v1/token`).
    Bearer,
    /// HTTP Basic or form credentials (`/oauth2/token`).
    Basic,
}

/// The challenge an answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// None.
    None,
    /// The token endpoint's client authentication failed (`realm="keymint"`, in its scheme).
    Client,
    /// No admin token, or one refused (RFC 6750 §3.1: `error="invalid_token"` only when one came).
    AdminToken {
        /// Whether a token was presented.
        presented: bool,
    },
    /// A valid admin token without the scope needed.
    AdminScope(&'static str),
}

/// One row of the table.
#[derive(Debug)]
pub(crate) struct Row<'a> {
    pub(crate) status: StatusCode,
    /// Stable and machine-readable: the RFC 6749 `error`, the problem document's `code`.
    pub(crate) code: &'static str,
    /// For people; never the detail of a 5xx (that goes to the log).
    pub(crate) detail: Cow<'a, str>,
    /// Whole seconds, rounded up, at least 1.
    pub(crate) retry_after: Option<u64>,
    pub(crate) challenge: Challenge,
}

const UNAVAILABLE: &str = "the service is temporarily unavailable; retry shortly";
const RATE_LIMITED: &str = "too many requests; retry after the time in Retry-After";

/// The row for `e`. A 5xx is logged here, once, with its whole cause chain; its body is generic.
pub(crate) fn row(e: &DomainError) -> Row<'_> {
    let row = |status, code, detail: Cow<'static, str>| Row {
        status,
        code,
        detail,
        retry_after: None,
        challenge: Challenge::None,
    };
    let bad_request = |code, detail: String| row(StatusCode::BAD_REQUEST, code, detail.into());
    match e {
        DomainError::InvalidClient { .. } => Row {
            challenge: Challenge::Client,
            ..row(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed".into(),
            )
        },
        DomainError::InvalidScope(r) => bad_request("invalid_scope", r.to_string()),
        DomainError::InvalidTarget(r) => bad_request("invalid_target", r.to_string()),
        DomainError::InvalidRequest(r) => bad_request("invalid_request", r.to_string()),
        DomainError::Invalid(r) => bad_request("invalid_request", r.to_string()),
        DomainError::InvalidDpopProof(r) => bad_request("invalid_dpop_proof", r.to_string()),
        DomainError::UnauthorizedClient(r) => row(
            StatusCode::FORBIDDEN,
            "unauthorized_client",
            r.to_string().into(),
        ),
        DomainError::RateLimited { retry_after } => Row {
            retry_after: Some(whole_seconds(*retry_after)),
            ..row(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                RATE_LIMITED.into(),
            )
        },
        DomainError::AdminUnauthenticated(r) => Row {
            challenge: Challenge::AdminToken {
                presented: r.presented(),
            },
            ..row(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                r.to_string().into(),
            )
        },
        DomainError::AdminForbidden { needed } => Row {
            challenge: Challenge::AdminScope(needed),
            ..row(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                e.to_string().into(),
            )
        },
        DomainError::ReportRefused(r @ crate::domain::refusal::ScanRefusal::NotEnabled) => {
            row(StatusCode::NOT_FOUND, "not_found", r.to_string().into())
        }
        DomainError::ReportRefused(r) => row(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            r.to_string().into(),
        ),
        DomainError::NotFound(_) => row(StatusCode::NOT_FOUND, "not_found", e.to_string().into()),
        DomainError::Conflict(r) => row(StatusCode::CONFLICT, "conflict", r.to_string().into()),
        DomainError::Unavailable(_) => {
            tracing::error!(error = %Chain(e), "database unavailable");
            Row {
                retry_after: Some(1),
                ..row(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    UNAVAILABLE.into(),
                )
            }
        }
        DomainError::OwnListExpired => {
            tracing::warn!("{e}");
            Row {
                retry_after: Some(1),
                ..row(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    e.to_string().into(),
                )
            }
        }
        DomainError::Corrupt(_) | DomainError::Internal(_) => {
            // This error is the issuer's own: the detail goes to the log once, the client gets
            // a generic body.
            tracing::error!(error = %Chain(e), "internal error");
            row(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error".into(),
            )
        }
    }
}

/// A wait as `Retry-After` says it: whole seconds, rounded up (a client that waits the
/// truncated figure comes back too early), at least 1.
pub(crate) fn whole_seconds(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

impl Row<'_> {
    /// `Cache-Control: no-store`, `Retry-After` and the challenge; `scheme` is the token
    /// endpoint's (the admin API's challenges are always Bearer).
    pub(crate) fn headers(&self, h: &mut HeaderMap, scheme: Scheme) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        let challenge = match (self.challenge, scheme) {
            (Challenge::None, _) => None,
            (Challenge::Client, Scheme::Bearer) => Some("Bearer realm=\"keymint\"".into()),
            (Challenge::Client, Scheme::Basic) => Some("Basic realm=\"keymint\"".into()),
            (Challenge::AdminToken { presented: false }, _) => {
                Some("Bearer realm=\"keymint-admin\"".to_owned())
            }
            (Challenge::AdminToken { presented: true }, _) => {
                Some("Bearer realm=\"keymint-admin\", error=\"invalid_token\"".to_owned())
            }
            (Challenge::AdminScope(needed), _) => Some(format!(
                "Bearer realm=\"keymint-admin\", error=\"insufficient_scope\", scope=\"{needed}\""
            )),
        };
        if let Some(v) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_and_is_never_zero() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(60)), 60);
    }

    #[test]
    fn both_formats_answer_a_domain_error_with_the_same_status_code_and_retry_after() {
        use axum::response::IntoResponse;
        let cases = || {
            [
                DomainError::RateLimited {
                    retry_after: Duration::from_millis(1500),
                },
                DomainError::InvalidScope(crate::domain::refusal::ScopeRefusal::BeyondTheKey),
                DomainError::NotFound(crate::domain::refusal::Missing::Key(
                    keymint_jwks::ApiKeyId::new("k").unwrap(),
                )),
                DomainError::Unavailable(crate::store::StoreError::unavailable("down")),
                DomainError::OwnListExpired,
                DomainError::Internal(crate::domain::Fault::new("boom")),
                DomainError::InvalidClient {
                    reason: crate::domain::ClientFailure::UnknownKey,
                },
            ]
        };
        for (a, b) in cases().into_iter().zip(cases()) {
            let oauth = super::super::error::HttpError::bearer(a).into_response();
            let problem = super::super::problem::Problem(b).into_response();
            assert_eq!(oauth.status(), problem.status());
            assert_eq!(
                oauth.headers().get(header::RETRY_AFTER),
                problem.headers().get(header::RETRY_AFTER)
            );
        }
    }
}
