//! `/v1/admin/…`: keys, scopes, tenants, revocations, signing keys, settings and the audit log,
//! for admin tokens (from admin keys, audience `<issuer>/v1/admin`). `admin:read` lists and
//! reads; `admin:write` also creates, rotates, revokes and changes settings. Errors are RFC 9457 problem documents.

pub(crate) mod audit;
pub(crate) mod keys;
pub(crate) mod revocations;
pub(crate) mod scopes;
pub(crate) mod settings;
pub(crate) mod signing_keys;
pub(crate) mod tenants;

use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequestParts, MatchedPath, Path, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use keymint_jwks::ApiKeyId;
use serde::Serialize;
use zeroize::Zeroizing;

use keymint_jwks::UnixTime;

use super::AppState;
use super::problem::{Problem, ProblemDocument, Refusal};
use crate::domain::DomainError;
use crate::domain::admin::api::AdminApi;
use crate::domain::admin::{AdminRead, AdminWrite};
use crate::domain::refusal::{AdminAuthRefusal, RequestRefusal};
use crate::store::Store;

pub(crate) type Answer<T> = Result<Json<T>, Problem>;

/// The admin token from `Authorization: Bearer` (never from a query string), checked for the
/// access the handler's argument type names. Every refusal (no token, a bad one, a missing scope,
/// a token sent in clear) is one audit line with the client's address and counts against the
/// client like a wrong key; a client blocked for failing too often is refused (429) before its
/// token is even looked at.
async fn admin_call<S: Store, T>(
    parts: &Parts,
    st: &AppState<S>,
    authorize: impl FnOnce(&AdminApi<S>, Option<&str>, std::net::IpAddr) -> Result<T, DomainError>,
) -> Result<T, Problem> {
    let client =
        super::client_address::client_of(&parts.headers, &parts.extensions, &st.trusted_proxies);
    if let Some(retry_after) = st.tokens.blocked(client.ip) {
        return Err(Problem(DomainError::RateLimited { retry_after }));
    }
    let checked = if super::client_address::arrived_in_clear(
        &parts.headers,
        &parts.extensions,
        &st.trusted_proxies,
    ) {
        Err(DomainError::InvalidRequest(
            RequestRefusal::AdminTokenInClear,
        ))
    } else {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| Zeroizing::new(t.trim().to_owned()));
        authorize(&st.admin, token.as_deref().map(String::as_str), client.ip)
    };
    checked.map_err(|e| {
        // Only a failed authentication counts against the client: a valid token without the
        // scope (403) or a fault of the issuer's own (500) is not a guess.
        if !matches!(
            e,
            DomainError::AdminUnauthenticated(_) | DomainError::InvalidRequest(_)
        ) {
            st.tokens.note_refusal(
                "admin.auth",
                &client,
                auth_code(&e),
                &e.to_string(),
                UnixTime::now(),
            );
            return Problem(e);
        }
        let blocked = st.tokens.refuse_request(
            "admin.auth",
            &client,
            auth_code(&e),
            &e.to_string(),
            UnixTime::now(),
        );
        Problem(match blocked {
            Some(retry_after) => DomainError::RateLimited { retry_after },
            None => e,
        })
    })
}

/// The stable code of a refused admin call before its token was accepted: the verifier's
/// code for a refused token (`expired`, `unknown_kid`, ...), never its words, which carry what
/// the token said (its `kid`, its times) and would make each refusal a usage row of its own.
fn auth_code(e: &DomainError) -> &'static str {
    match e {
        DomainError::AdminUnauthenticated(AdminAuthRefusal::NoToken) => "no_token",
        DomainError::AdminUnauthenticated(AdminAuthRefusal::Token(v)) => v.code(),
        other => super::error_table::row(other).code,
    }
}

/// Who passed the admin check on this request: set by [`CanRead`] and [`CanWrite`], read by
/// [`audit_refusals`] once the answer is known.
#[derive(Debug, Clone, Default)]
pub(crate) struct Caller(Arc<OnceLock<String>>);

impl Caller {
    fn note(parts: &Parts, admin: &crate::domain::admin::Admin) {
        if let Some(c) = parts.extensions.get::<Self>() {
            let _ = c.0.set(admin.key_id.clone());
        }
    }
}

/// Every admin call refused after its token was accepted (a malformed body or parameter, a
/// reserved scope, an unknown key, a conflict) is one audit line: the route, the admin key, the
/// client's address, the problem's code and detail. Refusals of the token itself are audited
/// where it is checked ([`admin_call`]). Layered on the admin routes only: the token endpoint
/// pays nothing for it.
pub(crate) async fn audit_refusals<S: Store>(
    State(st): State<AppState<S>>,
    mut req: Request,
    next: Next,
) -> Response {
    let caller = Caller::default();
    req.extensions_mut().insert(caller.clone());
    let action = match req.extensions().get::<MatchedPath>() {
        Some(path) => format!("{} {}", req.method(), path.as_str()),
        None => format!("{} /v1/admin", req.method()),
    };
    let client =
        super::client_address::client_of(req.headers(), req.extensions(), &st.trusted_proxies);
    let res = next.run(req).await;
    if res.status().is_client_error()
        && let Some(admin) = caller.0.get()
    {
        let (code, detail) = res
            .extensions()
            .get::<Refusal>()
            .map_or(("refused", ""), |r| (r.code, r.detail.as_str()));
        st.tokens
            .note_admin_refusal(&action, &client, admin, code, detail, UnixTime::now());
    }
    res
}

/// A handler argument that proves `admin:read` (see [`admin_call`]).
pub(crate) struct CanRead(pub(crate) AdminRead);

/// A handler argument that proves `admin:write` (see [`admin_call`]).
pub(crate) struct CanWrite(pub(crate) AdminWrite);

impl<S: Store> FromRequestParts<AppState<S>> for CanRead {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, st: &AppState<S>) -> Result<Self, Problem> {
        let read = admin_call(parts, st, |api, token, ip| {
            api.authorize_read(token, ip, UnixTime::now())
        })
        .await?;
        Caller::note(parts, read.admin());
        Ok(Self(read))
    }
}

impl<S: Store> FromRequestParts<AppState<S>> for CanWrite {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, st: &AppState<S>) -> Result<Self, Problem> {
        let write = admin_call(parts, st, |api, token, ip| {
            api.authorize_write(token, ip, UnixTime::now())
        })
        .await?;
        Caller::note(parts, write.admin());
        Ok(Self(write))
    }
}

pub(crate) fn invalid(what: &'static str, e: impl std::fmt::Display) -> Problem {
    Problem(DomainError::InvalidRequest(RequestRefusal::Unreadable {
        name: what,
        why: e.to_string(),
    }))
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
    /// The client failed authentication too often (Retry-After).
    #[response(
        status = 429,
        description = "too many failed authentications from this client (Retry-After)",
        content_type = "application/problem+json"
    )]
    TooMany(#[to_schema] ProblemDocument),
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
