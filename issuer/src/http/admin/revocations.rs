//! `/v1/admin/revocations`: the entries in force, and revoking one token by its `jti`.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use keymint_jwks::{Jti, UnixTime};
use serde::Deserialize;

use super::{AdminErrors, Answer, CanRead, CanWrite, DONE, Done, invalid};
use crate::domain::admin::api::RevocationView;
use crate::http::AppState;
use crate::store::Store;

/// `POST /v1/admin/revocations` body: revoke one token.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeToken {
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    jti: String,
}

#[utoipa::path(get, path = "/v1/admin/revocations", tag = "revocations", description = "admin:read — revocation entries in force.",
    security(("admin_token" = [])),
    responses(
        (status = 200, body = Vec<RevocationView>),
        AdminErrors,
    ))]
pub(crate) async fn list_revocations<S: Store>(
    State(st): State<AppState<S>>,
    CanRead(admin): CanRead,
) -> Answer<Vec<RevocationView>> {
    Ok(Json(st.admin.revocations(&admin, UnixTime::now()).await?))
}

#[utoipa::path(post, path = "/v1/admin/revocations", tag = "revocations", description = "admin:write — revoke one token by its jti.",
    request_body = RevokeToken,
    security(("admin_token" = [])),
    responses(
        (status = 200, body = Done),
        AdminErrors,
    ))]
pub(crate) async fn revoke_token<S: Store>(
    State(st): State<AppState<S>>,
    CanWrite(admin): CanWrite,
    body: Result<Json<RevokeToken>, JsonRejection>,
) -> Answer<Done> {
    let jti = Jti::new(body?.0.jti).map_err(|e| invalid("jti", e))?;
    st.admin.revoke_token(&admin, &jti, UnixTime::now()).await?;
    Ok(Json(DONE))
}
