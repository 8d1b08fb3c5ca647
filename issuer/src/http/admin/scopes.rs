//! `/v1/admin/scopes`: declared scopes, and which of them publishable keys may carry.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use keymint_jwks::{Scope, UnixTime};
use serde::Deserialize;

use super::{AdminErrors, Answer, CanRead, CanWrite, invalid};
use crate::domain::admin::api::ScopeView;
use crate::http::AppState;
use crate::store::{Store, Visibility};

/// `PUT /v1/admin/scopes/{name}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutScope {
    #[serde(default)]
    public: bool,
}

#[utoipa::path(get, path = "/v1/admin/scopes", tag = "scopes", description = "admin:read — declared scopes.",
    security(("admin_token" = [])),
    responses(
        (status = 200, body = Vec<ScopeView>),
        AdminErrors,
    ))]
pub(crate) async fn list_scopes<S: Store>(
    State(st): State<AppState<S>>,
    CanRead(admin): CanRead,
) -> Answer<Vec<ScopeView>> {
    Ok(Json(st.admin.scopes(&admin).await?))
}

#[utoipa::path(put, path = "/v1/admin/scopes/{name}", tag = "scopes", description = "admin:write — declare a scope; public ones may be carried by publishable keys.",
    params(("name" = String, Path, description = "Scope (RFC 6749 scope-token: visible ASCII but \" and \\)", pattern = "^[\\x21\\x23-\\x5b\\x5d-\\x7e]{1,128}$")), request_body = PutScope,
    security(("admin_token" = [])),
    responses(
        (status = 200, body = ScopeView),
        AdminErrors,
    ))]
pub(crate) async fn put_scope<S: Store>(
    State(st): State<AppState<S>>,
    CanWrite(admin): CanWrite,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<PutScope>, JsonRejection>,
) -> Answer<ScopeView> {
    let scope = Scope::new(name?.0).map_err(|e| invalid("scope", e))?;
    Ok(Json(
        st.admin
            .put_scope(
                &admin,
                &scope,
                Visibility::public_if(body?.0.public),
                UnixTime::now(),
            )
            .await?,
    ))
}
