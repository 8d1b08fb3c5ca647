//! `/v1/admin/audit`: the stored audit records, filtered and paged newest first.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::{AdminErrors, Answer, CanRead};
use crate::domain::admin::api::AuditPage;
use crate::http::AppState;
use crate::store::{AuditQuery, Store};

/// `GET /v1/admin/audit` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditParams {
    before: Option<i64>,
    action: Option<String>,
    outcome: Option<String>,
    key_id: Option<String>,
    tenant: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/admin/audit", tag = "audit", description = "admin:read — stored audit records (admin actions), newest first; follow next_before for older pages. Issuances and refusals are not stored one row each: they are counted in per-key usage rollups (GET /v1/admin/keys/{id}/usage) and logged one line each; rows of earlier releases stay here until --audit-retention removes them.",
    params(AuditParams),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = AuditPage),
        AdminErrors,
    ))]
pub(crate) async fn audit<S: Store>(
    State(st): State<AppState<S>>,
    CanRead(admin): CanRead,
    q: Result<Query<AuditParams>, QueryRejection>,
) -> Answer<AuditPage> {
    let q = q?.0;
    let query = AuditQuery {
        before: q.before,
        action: q.action,
        outcome: q.outcome,
        key_id: q.key_id,
        tenant: q.tenant,
        since: q.since,
        until: q.until,
        limit: q.limit.unwrap_or(100),
    };
    Ok(Json(st.admin.audit(&admin, query).await?))
}
