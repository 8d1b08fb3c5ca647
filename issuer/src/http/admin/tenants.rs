//! `/v1/admin/tenants`: tenants with their key counts, and revoking a whole tenant.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use keymint_jwks::{TenantId, UnixTime};

use super::{AdminErrors, Answer, CanRead, CanWrite, Done, invalid};
use crate::http::AppState;
use crate::store::{Store, TenantSummary};

#[utoipa::path(get, path = "/v1/admin/tenants", tag = "tenants", description = "admin:read — tenants with their key counts.",
    security(("admin_token" = [])),
    responses(
        (status = 200, body = Vec<TenantSummary>),
        AdminErrors,
    ))]
pub(crate) async fn list_tenants<S: Store>(
    State(st): State<AppState<S>>,
    CanRead(admin): CanRead,
) -> Answer<Vec<TenantSummary>> {
    Ok(Json(st.admin.tenants(&admin, UnixTime::now()).await?))
}

#[utoipa::path(post, path = "/v1/admin/tenants/{tenant}/revoke", tag = "tenants", description = "admin:write — revoke a tenant: its keys and every token issued to it until now.",
    params(("tenant" = String, Path, description = "Tenant", pattern = "^[A-Za-z0-9._:@-]{1,128}$")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = Done),
        AdminErrors,
    ))]
pub(crate) async fn revoke_tenant<S: Store>(
    State(st): State<AppState<S>>,
    CanWrite(admin): CanWrite,
    tenant: Result<Path<String>, PathRejection>,
) -> Answer<Done> {
    let tenant = TenantId::new(tenant?.0).map_err(|e| invalid("tenant", e))?;
    let n = st
        .admin
        .revoke_tenant(&admin, &tenant, UnixTime::now())
        .await?;
    Ok(Json(Done {
        ok: true,
        revoked_keys: Some(n),
    }))
}
