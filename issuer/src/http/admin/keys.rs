//! `/v1/admin/keys`: list, create, show, revoke and rotate customer API keys.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse as _;
use keymint_jwks::{Audience, ScopeSet, TenantId, UnixTime};
use serde::{Deserialize, Serialize};

use super::{AdminErrors, Answer, CanRead, CanWrite, DONE, Done, invalid, key_id, optional};
use crate::domain::keys::api_key::{KeyEnv, KeyKind, PrintableKey};
use crate::domain::keys::limits::RateSpec;
use crate::domain::keys::origin::Origin;
use crate::domain::keys::{
    DEFAULT_KEY_LIFETIME, DEFAULT_ROTATION_GRACE, KEYS_PAGE, KeyCursor, KeyView, NewKey,
};
use crate::domain::usage::{DEFAULT_SINCE, KeyUsage};
use crate::http::AppState;
use crate::http::problem::{Problem, ProblemDocument};
use crate::store::Store;

/// `POST /v1/admin/keys` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"tenant": "acme", "scopes": ["orders:read"], "audiences": ["https://api.example.com"], "label": "billing backend"}))]
pub(crate) struct CreateKey {
    #[schema(pattern = "^[A-Za-z0-9._:@-]{1,128}$")]
    tenant: String,
    /// At least one; `admin:*` is reserved.
    #[schema(min_items = 1)]
    scopes: Vec<String>,
    /// At least one.
    #[schema(min_items = 1)]
    audiences: Vec<String>,
    #[serde(default)]
    publishable: bool,
    #[serde(default)]
    origins: Vec<String>,
    /// Seconds.
    ttl: Option<u64>,
    /// Seconds.
    max_ttl: Option<u64>,
    /// Seconds (default 90 days).
    expires_in: Option<u64>,
    label: Option<String>,
    owner: Option<String>,
    #[serde(default)]
    allow_ips: Vec<String>,
    rate_limit: Option<String>,
    #[serde(default)]
    test: bool,
}

impl CreateKey {
    fn parse(self) -> Result<NewKey, Problem> {
        Ok(NewKey {
            kind: if self.publishable {
                KeyKind::Publishable
            } else {
                KeyKind::Secret
            },
            allow_origins: self
                .origins
                .iter()
                .map(|o| Origin::parse(o).map_err(|e| invalid("origin", e)))
                .collect::<Result<_, _>>()?,
            tenant: TenantId::new(self.tenant).map_err(|e| invalid("tenant", e))?,
            scopes: ScopeSet::from_values(self.scopes.iter().map(String::as_str))
                .map_err(|e| invalid("scopes", e))?,
            audiences: self
                .audiences
                .iter()
                .map(|a| Audience::new(a.as_str()).map_err(|e| invalid("audience", e)))
                .collect::<Result<_, _>>()?,
            ttl: self.ttl.map(Duration::from_secs),
            max_ttl: self.max_ttl.map(Duration::from_secs),
            expires_in: self
                .expires_in
                .map_or(DEFAULT_KEY_LIFETIME, Duration::from_secs),
            label: self.label,
            owner: self.owner,
            allow_ips: self
                .allow_ips
                .iter()
                .map(|n| crate::domain::client::parse_net(n).map_err(|e| invalid("allow_ips", e)))
                .collect::<Result<_, _>>()?,
            rate_limit: self
                .rate_limit
                .map(|r| RateSpec::parse(&r).ok_or_else(|| invalid("rate_limit", "not N/s or N/m")))
                .transpose()?,
            env: if self.test {
                KeyEnv::Test
            } else {
                KeyEnv::Live
            },
        })
    }
}

/// A key with its printable secret: shown once. `Debug` is redacted (the key is a
/// [`PrintableKey`]), and the key is zeroized when the answer has been written.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedKey {
    /// The printable key; store it now, it is never shown again.
    #[serde(serialize_with = "expose")]
    #[schema(value_type = String)]
    key: PrintableKey,
    #[serde(flatten)]
    view: KeyView,
}

fn expose<Ser: serde::Serializer>(key: &PrintableKey, s: Ser) -> Result<Ser::Ok, Ser::Error> {
    s.serialize_str(key.expose())
}

/// `GET /v1/admin/keys` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeysQuery {
    #[param(value_type = Option<String>, pattern = "^[A-Za-z0-9._:@-]{1,128}$")]
    tenant: Option<TenantId>,
    /// Keys per page (default and most: 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Where the page starts: the cursor of the previous page's `Link: rel="next"`.
    #[param(pattern = "^-?[0-9]{1,18}[.][A-Za-z0-9]{1,64}$")]
    after: Option<String>,
}

/// `GET /v1/admin/keys/{id}/usage` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageQuery {
    /// Unix seconds (default: 7 days ago); counted from the start of its hour.
    since: Option<u64>,
}

#[utoipa::path(get, path = "/v1/admin/keys/{id}/usage", tag = "keys", description = "admin:read — where the key was used from, how often, and what was refused: its hourly usage rollups since `since`, summed per client network (IPv4 address or IPv6 /64), origin, outcome and reason, the largest counts first.",
    params(("id" = String, Path, description = "Key ID (base62)", pattern = "^[A-Za-z0-9]{1,64}$"), UsageQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = KeyUsage),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        AdminErrors,
    ))]
pub(crate) async fn key_usage<S: Store>(
    State(st): State<AppState<S>>,
    CanRead(admin): CanRead,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<UsageQuery>, QueryRejection>,
) -> Answer<KeyUsage> {
    let since = q?.0.since.map_or_else(usage_since_default, UnixTime);
    Ok(Json(st.admin.key_usage(&admin, &key_id(id)?, since).await?))
}

/// Now less [`DEFAULT_SINCE`].
fn usage_since_default() -> UnixTime {
    UnixTime(
        UnixTime::now()
            .as_secs()
            .saturating_sub(DEFAULT_SINCE.as_secs()),
    )
}

/// `POST /v1/admin/keys/{id}/rotate` body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateKey {
    /// Seconds the old key keeps working (default 24 h).
    grace: Option<u64>,
    /// Revoke the old key at once (a leaked key).
    #[serde(default)]
    revoke_old: bool,
}

#[utoipa::path(get, path = "/v1/admin/keys", tag = "keys", description = "admin:read — API keys, optionally of one tenant, newest first, a page at a time (at most 1000): when more follow, `Link: <…>; rel=\"next\"` (RFC 8288) names the next page.",
    params(KeysQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = Vec<KeyView>, headers(("link" = String, description = "`<next page URL>; rel=\"next\"` when more keys follow"))),
        AdminErrors,
    ))]
pub(crate) async fn list_keys<S: Store>(
    State(st): State<AppState<S>>,
    CanRead(admin): CanRead,
    q: Result<Query<KeysQuery>, QueryRejection>,
) -> Result<axum::response::Response, Problem> {
    let q = q?.0;
    let after = q.after.as_deref().map(KeyCursor::parse).transpose()?;
    let limit = q.limit.unwrap_or(KEYS_PAGE);
    let page = st
        .admin
        .list_keys(
            &admin,
            q.tenant.as_ref(),
            after.as_ref(),
            limit,
            UnixTime::now(),
        )
        .await?;
    let mut res = Json(page.keys).into_response();
    if let Some(next) = page.next {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(t) = &q.tenant {
            query.append_pair("tenant", t.as_str());
        }
        query.append_pair("limit", &limit.clamp(1, KEYS_PAGE).to_string());
        query.append_pair("after", &next.to_string());
        let link = format!("</v1/admin/keys?{}>; rel=\"next\"", query.finish());
        if let Ok(v) = axum::http::HeaderValue::from_str(&link) {
            res.headers_mut().insert(axum::http::header::LINK, v);
        }
    }
    Ok(res)
}

#[utoipa::path(post, path = "/v1/admin/keys", tag = "keys", description = "admin:write — create a customer API key; the printable key is in the answer once.",
    request_body = CreateKey,
    security(("admin_token" = [])),
    responses(
        (status = 201, body = CreatedKey),
        AdminErrors,
    ))]
pub(crate) async fn create_key<S: Store>(
    State(st): State<AppState<S>>,
    CanWrite(admin): CanWrite,
    body: Result<Json<CreateKey>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedKey>), Problem> {
    let (view, key) = st
        .admin
        .create_key(&admin, &body?.0.parse()?, UnixTime::now())
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, view })))
}

#[utoipa::path(get, path = "/v1/admin/keys/{id}", tag = "keys", description = "admin:read — one key (never its secret).",
    params(("id" = String, Path, description = "Key ID (base62)", pattern = "^[A-Za-z0-9]{1,64}$")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = KeyView),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        AdminErrors,
    ))]
pub(crate) async fn get_key<S: Store>(
    State(st): State<AppState<S>>,
    CanRead(admin): CanRead,
    id: Result<Path<String>, PathRejection>,
) -> Answer<KeyView> {
    Ok(Json(
        st.admin.key(&admin, &key_id(id)?, UnixTime::now()).await?,
    ))
}

#[utoipa::path(post, path = "/v1/admin/keys/{id}/revoke", tag = "keys", description = "admin:write — revoke a key and every token it minted.",
    params(("id" = String, Path, description = "Key ID (base62)", pattern = "^[A-Za-z0-9]{1,64}$")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = Done),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json"),
        AdminErrors,
    ))]
pub(crate) async fn revoke_key<S: Store>(
    State(st): State<AppState<S>>,
    CanWrite(admin): CanWrite,
    id: Result<Path<String>, PathRejection>,
) -> Answer<Done> {
    st.admin
        .revoke_key(&admin, &key_id(id)?, UnixTime::now())
        .await?;
    Ok(Json(DONE))
}

#[utoipa::path(post, path = "/v1/admin/keys/{id}/rotate", tag = "keys", description = "admin:write — a successor with the same tenant, scopes and restrictions; the old key keeps working for the grace period, or is revoked at once with revoke_old.",
    params(("id" = String, Path, description = "Key ID (base62)", pattern = "^[A-Za-z0-9]{1,64}$")), request_body(content = Option<RotateKey>, content_type = "application/json"),
    security(("admin_token" = [])),
    responses(
        (status = 201, body = CreatedKey),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json"),
        AdminErrors,
    ))]
pub(crate) async fn rotate_key<S: Store>(
    State(st): State<AppState<S>>,
    CanWrite(admin): CanWrite,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<Option<RotateKey>>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedKey>), Problem> {
    let r = optional(body)?;
    let grace = r.grace.map_or(DEFAULT_ROTATION_GRACE, Duration::from_secs);
    let (view, key) = st
        .admin
        .rotate_key(&admin, &key_id(id)?, grace, r.revoke_old, UnixTime::now())
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, view })))
}
