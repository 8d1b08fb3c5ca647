//! `/v1/admin/signing-keys`: the token signing keys, a planned rotation, and the emergency
//! revocation of one.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use keymint_jwks::{Algorithm, Kid, UnixTime};
use serde::Deserialize;

use super::{AdminErrors, Answer, CanRead, CanWrite, DONE, Done, invalid, optional};
use crate::domain::admin::api::SigningKeyView;
use crate::http::AppState;
use crate::http::problem::{Problem, ProblemDocument};
use crate::store::Store;

/// `POST /v1/admin/signing-keys/rotate` body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateSigningKey {
    /// `EdDSA` (default) or `ES256`.
    #[schema(pattern = "^(EdDSA|ES256)$")]
    alg: Option<String>,
}

#[utoipa::path(get, path = "/v1/admin/signing-keys", tag = "signing keys", description = "admin:read — signing keys and their states.",
    security(("admin_token" = [])),
    responses(
        (status = 200, body = Vec<SigningKeyView>),
        AdminErrors,
    ))]
pub(crate) async fn list_signing_keys<S: Store>(
    State(st): State<AppState<S>>,
    CanRead(admin): CanRead,
) -> Answer<Vec<SigningKeyView>> {
    Ok(Json(st.admin.signing_keys(&admin).await?))
}

#[utoipa::path(post, path = "/v1/admin/signing-keys/rotate", tag = "signing keys", description = "admin:write — publish a next signing key; it signs after the JWKS cache period.",
    request_body(content = Option<RotateSigningKey>, content_type = "application/json"),
    security(("admin_token" = [])),
    responses(
        (status = 201, body = SigningKeyView),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json"),
        AdminErrors,
    ))]
pub(crate) async fn rotate_signing_key<S: Store>(
    State(st): State<AppState<S>>,
    CanWrite(admin): CanWrite,
    body: Result<Json<Option<RotateSigningKey>>, JsonRejection>,
) -> Result<(StatusCode, Json<SigningKeyView>), Problem> {
    let alg = match optional(body)?.alg.as_deref() {
        None | Some("EdDSA") => Algorithm::EdDsa,
        Some("ES256") => Algorithm::Es256,
        Some(other) => return Err(invalid("alg", format!("{other:?} is not EdDSA or ES256"))),
    };
    let view = st
        .admin
        .rotate_signing_key(&admin, alg, UnixTime::now())
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(post, path = "/v1/admin/signing-keys/{kid}/revoke", tag = "signing keys", description = "admin:write — emergency: out of the JWKS at once, its kid listed as revoked.",
    params(("kid" = String, Path, description = "Key ID (RFC 7638 thumbprint)", pattern = "^[\\x21-\\x7e]{1,256}$")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = Done),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json"),
        AdminErrors,
    ))]
pub(crate) async fn revoke_signing_key<S: Store>(
    State(st): State<AppState<S>>,
    CanWrite(admin): CanWrite,
    kid: Result<Path<Kid>, PathRejection>,
) -> Answer<Done> {
    st.admin
        .revoke_signing_key(&admin, &kid?.0, UnixTime::now())
        .await?;
    Ok(Json(DONE))
}
