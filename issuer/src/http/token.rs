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
#[derive(Serialize)]
pub(crate) struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    scope: String,
}

impl From<IssuedToken> for TokenResponse {
    fn from(t: IssuedToken) -> Self {
        Self {
            access_token: t.access_token,
            token_type: "Bearer",
            expires_in: t.expires_in,
            scope: t.scope.to_string(),
        }
    }
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        let mut res = Json(self).into_response();
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res.headers_mut()
            .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        res
    }
}

/// `POST /v1/token`.
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
