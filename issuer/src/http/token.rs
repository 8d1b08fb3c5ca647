//! `POST /v1/token` and `POST /oauth2/token`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use keymint_jwks::UnixTime;
use serde::Serialize;

use super::credentials::{OAuth2Call, V1Call};
use super::{AppState, HttpError};
use crate::domain::token::IssuedToken;
use crate::store::Store;

/// RFC 6749 §5.1 access token response.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    scope: String,
    #[serde(skip)]
    cors_origin: Option<String>,
}

impl From<IssuedToken> for TokenResponse {
    fn from(t: IssuedToken) -> Self {
        Self {
            access_token: t.access_token,
            token_type: t.token_type,
            expires_in: t.expires_in,
            scope: t.scope,
            cors_origin: t.cors_origin,
        }
    }
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        let cors = self.cors_origin.clone();
        let mut res = Json(self).into_response();
        if let Some(origin) = cors.and_then(|o| HeaderValue::from_str(&o).ok()) {
            // Only the key's own allowed origin, never `*`.
            res.headers_mut()
                .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            res.headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res.headers_mut()
            .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        res
    }
}

/// The RFC 6749 §5.2 answers both token endpoints may give besides their 400s (for the OpenAPI
/// document).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum TokenErrors {
    /// `invalid_client`.
    #[response(status = 401, description = "invalid_client")]
    InvalidClient(#[to_schema] super::error::OAuthErrorBody),
    /// `unauthorized_client`: the client IP or origin is not allowed for the key.
    #[response(status = 403, description = "unauthorized_client (IP or origin)")]
    UnauthorizedClient(#[to_schema] super::error::OAuthErrorBody),
    /// Body over the limit.
    #[response(status = 413, description = "body over 16 KiB")]
    TooLarge(#[to_schema] super::error::OAuthErrorBody),
    /// Rate limited.
    #[response(status = 429, description = "rate limited (Retry-After)")]
    RateLimited(#[to_schema] super::error::OAuthErrorBody),
    /// The database is unavailable.
    #[response(status = 503, description = "database unavailable (Retry-After)")]
    Unavailable(#[to_schema] super::error::OAuthErrorBody),
}

/// `POST /v1/token`.
#[utoipa::path(post, path = "/v1/token", tag = "token",
    description = "Trade an API key (`Authorization: Bearer <key>` or `X-API-Key`) for a token.",
    request_body(content = Option<super::credentials::V1Body>, content_type = "application/json"),
    security(("api_key" = []), ("api_key_header" = [])),
    responses(
        (status = 200, description = "RFC 6749 §5.1 token response", body = TokenResponse),
        (status = 400, description = "invalid_request, invalid_scope, invalid_target, invalid_dpop_proof", body = super::error::OAuthErrorBody),
        TokenErrors,
    ))]
pub(crate) async fn v1_token<S: Store>(
    State(st): State<AppState<S>>,
    V1Call(call): V1Call,
) -> Result<TokenResponse, HttpError> {
    st.tokens
        .exchange(
            &call.credential,
            &call.request,
            &call.client,
            UnixTime::now(),
        )
        .await
        .map(TokenResponse::from)
        .map_err(HttpError::bearer)
}

/// `POST /oauth2/token`.
#[utoipa::path(post, path = "/oauth2/token", tag = "token",
    description = "OAuth2 client_credentials (RFC 6749 §4.4): client_id = key ID, client_secret = the key, by HTTP Basic or in the form.",
    request_body(content = super::credentials::OAuth2Form, content_type = "application/x-www-form-urlencoded"),
    security(("client_basic" = []), ()),
    responses(
        (status = 200, description = "RFC 6749 §5.1 token response", body = TokenResponse),
        (status = 400, description = "invalid_request, unsupported_grant_type, invalid_scope, invalid_target", body = super::error::OAuthErrorBody),
        TokenErrors,
    ))]
pub(crate) async fn oauth2_token<S: Store>(
    State(st): State<AppState<S>>,
    OAuth2Call(call): OAuth2Call,
) -> Result<TokenResponse, HttpError> {
    st.tokens
        .exchange(
            &call.credential,
            &call.request,
            &call.client,
            UnixTime::now(),
        )
        .await
        .map(TokenResponse::from)
        .map_err(HttpError::basic)
}

/// `OPTIONS /v1/token` and `/oauth2/token`: the CORS preflight. A preflight carries no key, so it
/// is answered for origins that some live publishable key allows; the actual request is then
/// checked against its own key's origins. Any other origin gets 403 and no CORS headers.
#[utoipa::path(options, path = "/v1/token", tag = "token",
    description = "CORS preflight: answered for origins some live publishable key allows.",
    params(("Origin" = Option<String>, Header, description = "The page's origin")),
    responses(
        (status = 204, description = "allowed origin: CORS headers for it"),
        (status = 403, description = "no live publishable key allows this origin"),
    ))]
pub(crate) async fn preflight<S: Store>(
    State(st): State<AppState<S>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| st.tokens.origin_allowed(o));
    let Some(origin) = origin.and_then(|o| HeaderValue::from_str(o).ok()) else {
        return axum::http::StatusCode::FORBIDDEN.into_response();
    };
    let mut res = axum::http::StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, DPoP"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    res
}
