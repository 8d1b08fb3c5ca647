//! `/v1/admin/tenants`: tenants with their key counts, revoking a whole tenant, and a tenant's
//! policy for leaked keys.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use keymint_jwks::{TenantId, UnixTime};

use super::{AdminErrors, Answer, CanRead, CanWrite, Done, invalid};
use crate::domain::leaks::policy::{OnLeak, PolicyChange, TenantPolicy, WebhookChange};
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

/// `PUT /v1/admin/tenants/{tenant}/policy` body.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutPolicy {
    /// What a secret-scanning report of one of the tenant's keys does: `revoke` (the default)
    /// or `flag` (an audit record only; the key keeps working). Left out: unchanged.
    #[serde(default)]
    on_leak: Option<String>,
    /// A webhook told of each leaked key (HTTPS; HTTP only to loopback): a new secret is made
    /// and returned in this answer only. An empty string removes the webhook; left out:
    /// unchanged.
    #[serde(default)]
    webhook_url: Option<String>,
}

#[utoipa::path(get, path = "/v1/admin/tenants/{tenant}/policy", tag = "tenants", description = "admin:read — the tenant's policy (the defaults when none was set).",
    params(("tenant" = String, Path, description = "Tenant", pattern = "^[A-Za-z0-9._:@-]{1,128}$")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = TenantPolicy),
        AdminErrors,
    ))]
pub(crate) async fn get_policy<S: Store>(
    State(st): State<AppState<S>>,
    CanRead(admin): CanRead,
    tenant: Result<Path<String>, PathRejection>,
) -> Answer<TenantPolicy> {
    let tenant = TenantId::new(tenant?.0).map_err(|e| invalid("tenant", e))?;
    Ok(Json(st.admin.tenant_policy(&admin, &tenant).await?))
}

#[utoipa::path(put, path = "/v1/admin/tenants/{tenant}/policy", tag = "tenants", description = "admin:write — set what a secret-scanning report of one of the tenant's keys does (revoke it at once, the default, or only flag it) and the webhook told of it (its new secret is in this answer only).",
    params(("tenant" = String, Path, description = "Tenant", pattern = "^[A-Za-z0-9._:@-]{1,128}$")),
    request_body = PutPolicy,
    security(("admin_token" = [])),
    responses(
        (status = 200, body = TenantPolicy),
        AdminErrors,
    ))]
pub(crate) async fn put_policy<S: Store>(
    State(st): State<AppState<S>>,
    CanWrite(admin): CanWrite,
    tenant: Result<Path<String>, PathRejection>,
    body: Result<Json<PutPolicy>, JsonRejection>,
) -> Answer<TenantPolicy> {
    let tenant = TenantId::new(tenant?.0).map_err(|e| invalid("tenant", e))?;
    let body = body?.0;
    let change = PolicyChange {
        on_leak: body.on_leak.as_deref().map(OnLeak::parse).transpose()?,
        webhook: match body.webhook_url.as_deref() {
            None => None,
            Some("") => Some(WebhookChange::Remove),
            Some(url) => Some(WebhookChange::parse(url)?),
        },
    };
    Ok(Json(
        st.admin
            .set_tenant_policy(&admin, &tenant, &change, UnixTime::now())
            .await?,
    ))
}
