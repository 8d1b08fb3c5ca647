//! `POST /v1/secret-scanning/github`: leaked-key reports from GitHub's secret scanning partner
//! program, signed by GitHub (see [`crate::domain::leaks`]).
//!
//! A refused report (unsigned, badly signed, an unknown signing key, or reports not enabled) is
//! one audit line with the client address and its reason code, and counts against the client
//! like a wrong key: a client that keeps sending forged reports is blocked (429). The refusal is
//! the same whatever the report names.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keymint_jwks::UnixTime;

use super::AppState;
use super::problem::{Problem, ProblemDocument};
use crate::domain::DomainError;
use crate::domain::leaks::Signed;
use crate::store::Store;

/// The largest report accepted (413 beyond): a report names at most a thousand strings.
pub(super) const MAX_REPORT: usize = 256 * 1024;

/// The answer: a JSON array of `{token_hash, token_type, label}`, one per reported string.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct VerdictBody {
    /// SHA-256 of the reported string, lower-case hex.
    token_hash: String,
    /// The report's `type`, echoed.
    token_type: String,
    /// `true_positive` (a key this issuer made) or `false_positive`.
    label: String,
}

/// The refusals of a report (for the OpenAPI document).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum ReportErrors {
    /// A signed report whose body is not an array of {token, type, url, source}.
    #[response(
        status = 400,
        description = "a signed report whose body is not an array of {token, type, url, source}",
        content_type = "application/problem+json"
    )]
    BadRequest(#[to_schema] ProblemDocument),
    /// Unsigned, badly signed, or signed by a key the scanner does not publish.
    #[response(
        status = 401,
        description = "unsigned, badly signed, or signed by a key the scanner does not publish",
        content_type = "application/problem+json"
    )]
    Unsigned(#[to_schema] ProblemDocument),
    /// Reports are not enabled.
    #[response(
        status = 404,
        description = "reports are not enabled (no --secret-scanning-keys)",
        content_type = "application/problem+json"
    )]
    NotEnabled(#[to_schema] ProblemDocument),
    /// Over the size bound.
    #[response(
        status = 413,
        description = "body over 256 KiB",
        content_type = "application/problem+json"
    )]
    TooLarge(#[to_schema] ProblemDocument),
    /// Too many refused reports from this client.
    #[response(
        status = 429,
        description = "too many refused reports from this client (Retry-After)",
        content_type = "application/problem+json"
    )]
    TooMany(#[to_schema] ProblemDocument),
    /// The database is unavailable.
    #[response(
        status = 503,
        description = "database unavailable (Retry-After)",
        content_type = "application/problem+json"
    )]
    Unavailable(#[to_schema] ProblemDocument),
}

#[utoipa::path(post, path = "/v1/secret-scanning/github", tag = "secret scanning",
    description = "A secret-scanning report in GitHub's partner-program format: a JSON array of {token, type, url, source}, signed (ECDSA P-256, SHA-256, DER, base64) in Github-Public-Key-Signature by the key Github-Public-Key-Identifier names in the scanner's public-key document (--secret-scanning-keys). Each real, live key is revoked at once (or only flagged, by the tenant's policy) and audited with the report's url. The same report delivered again gets the same answer and changes nothing.",
    request_body(content = String, content_type = "application/json"),
    params(
        ("Github-Public-Key-Identifier" = String, Header, description = "The scanner key that signed the body"),
        ("Github-Public-Key-Signature" = String, Header, description = "Base64 of the DER ECDSA P-256 signature over the raw body"),
    ),
    responses(
        (status = 200, body = Vec<VerdictBody>),
        ReportErrors,
    ))]
pub(crate) async fn github_report<S: Store>(
    State(st): State<AppState<S>>,
    parts: Parts,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let client =
        super::client_address::client_of(&parts.headers, &parts.extensions, &st.trusted_proxies);
    if let Some(retry_after) = st.tokens.blocked(client.ip) {
        return Problem(DomainError::RateLimited { retry_after }).into_response();
    }
    let now = UnixTime::now();
    // Anyone can post here: a body refused before its signature is read is audited with the
    // client's address and counts against the client, like a forged report.
    let refused = |code: &str| {
        st.tokens
            .refuse_request("leak.report", &client, code, code, now)
            .map(|retry_after| Problem(DomainError::RateLimited { retry_after }).into_response())
    };
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            if let Some(blocked) = refused("too_large") {
                return blocked;
            }
            let problem = serde_json::json!({
                "type": "about:blank", "title": "Payload Too Large", "status": 413,
                "code": "invalid_request", "detail": "the report is larger than 256 KiB",
            });
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/problem+json"),
                )],
                problem.to_string(),
            )
                .into_response();
        }
        Err(e) => {
            if let Some(blocked) = refused("unreadable_body") {
                return blocked;
            }
            return super::admin::invalid("request body", e).into_response();
        }
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let signed = Signed {
        key_identifier: header("github-public-key-identifier"),
        signature: header("github-public-key-signature"),
    };
    match st.leaks.receive(signed, &body, client.ip, now).await {
        Ok(answer) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            answer,
        )
            .into_response(),
        Err(DomainError::ReportRefused(why)) => {
            let blocked =
                st.tokens
                    .refuse_request("leak.report", &client, why.code(), why.code(), now);
            Problem(match blocked {
                Some(retry_after) => DomainError::RateLimited { retry_after },
                None => DomainError::ReportRefused(why),
            })
            .into_response()
        }
        Err(e) => Problem(e).into_response(),
    }
}
