//! `/v1/admin/…`: keys, scopes, tenants, revocations, signing keys and the audit log, for admin
//! tokens (from admin keys, audience `<issuer>/v1/admin`). `admin:read` lists and reads;
//! `admin:write` also creates, rotates and revokes. Errors are RFC 9457 problem documents.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use keymint_jwks::{Algorithm, ApiKeyId, Audience, Jti, Scope, TenantId};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::AppState;
use super::problem::{Problem, ProblemDocument};
use crate::domain::DomainError;
use crate::domain::admin::Access;
use crate::domain::admin_api::{AuditPage, RevocationView, ScopeView, SigningKeyView};
use crate::domain::api_key::{KeyEnv, KeyKind, PrintableKey};
use crate::domain::keys::{KeyView, NewKey};
use crate::domain::limits::RateSpec;
use crate::domain::origin::Origin;
use crate::store::{AuditQuery, Store, TenantSummary};

type Answer<T> = Result<Json<T>, Problem>;

/// The admin token from `Authorization: Bearer` (never from a query string). Zeroized on drop.
pub(crate) struct AdminBearer(Option<Zeroizing<String>>);

impl AdminBearer {
    fn token(&self) -> Option<&str> {
        self.0.as_deref().map(String::as_str)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AdminBearer {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if super::credentials::arrived_in_clear(&parts.headers, &parts.extensions) {
            return Err(Problem(DomainError::Invalid(
                "the request reached the proxy over plain HTTP: admin tokens must only be sent \
                 over HTTPS"
                    .into(),
            )));
        }
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| Zeroizing::new(t.trim().to_owned()));
        Ok(Self(token))
    }
}

fn invalid(what: &str, e: impl std::fmt::Display) -> Problem {
    Problem(DomainError::Invalid(format!("{what}: {e}")))
}

/// A JSON body that may be left out (no `Content-Type: application/json`) or be `null`: the
/// defaults.
fn optional<T: Default>(body: Result<Json<Option<T>>, JsonRejection>) -> Result<T, Problem> {
    match body {
        Ok(Json(b)) => Ok(b.unwrap_or_default()),
        Err(JsonRejection::MissingJsonContentType(_)) => Ok(T::default()),
        Err(e) => Err(e.into()),
    }
}

fn key_id(id: Result<Path<String>, PathRejection>) -> Result<ApiKeyId, Problem> {
    let Path(id) = id?;
    ApiKeyId::new(id).map_err(|e| invalid("key ID", e))
}

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
            scopes: crate::domain::keys::scopes_from(&self.scopes)?,
            audiences: self
                .audiences
                .iter()
                .map(|a| Audience::new(a.as_str()).map_err(|e| invalid("audience", e)))
                .collect::<Result<_, _>>()?,
            ttl: self.ttl.map(Duration::from_secs),
            max_ttl: self.max_ttl.map(Duration::from_secs),
            expires_in: Duration::from_secs(self.expires_in.unwrap_or(90 * 24 * 3600)),
            label: self.label,
            owner: self.owner,
            allow_ips: self
                .allow_ips
                .iter()
                .map(|n| n.parse().map_err(|e| invalid("allow_ips", e)))
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
    tenant: Option<String>,
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

/// `PUT /v1/admin/scopes/{name}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutScope {
    #[serde(default)]
    public: bool,
}

/// `POST /v1/admin/revocations` body: revoke one token.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeToken {
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    jti: String,
}

/// `POST /v1/admin/signing-keys/rotate` body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateSigningKey {
    /// `EdDSA` (default) or `ES256`.
    #[schema(pattern = "^(EdDSA|ES256)$")]
    alg: Option<String>,
}

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

/// The answers every admin call may give, whatever it does (for the OpenAPI document).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum AdminErrors {
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
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_keys: Option<u64>,
}

const DONE: Done = Done {
    ok: true,
    revoked_keys: None,
};

#[utoipa::path(get, path = "/v1/admin/keys", tag = "keys", description = "admin:read — API keys, optionally of one tenant, newest first.",
    params(KeysQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = Vec<KeyView>),
        (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
        AdminErrors,
    ))]
pub(crate) async fn list_keys<S: Store>(
    State(st): State<AppState<S>>,
    auth: AdminBearer,
    q: Result<Query<KeysQuery>, QueryRejection>,
) -> Answer<Vec<KeyView>> {
    st.admin.authorize(auth.token(), Access::Read)?;
    Ok(Json(st.admin.list_keys(q?.0.tenant.as_deref()).await?))
}

#[utoipa::path(post, path = "/v1/admin/keys", tag = "keys", description = "admin:write — create a customer API key; the printable key is in the answer once.",
    request_body = CreateKey,
    security(("admin_token" = [])),
    responses(
        (status = 201, body = CreatedKey),
        (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
        AdminErrors,
    ))]
pub(crate) async fn create_key<S: Store>(
    State(st): State<AppState<S>>,
    auth: AdminBearer,
    body: Result<Json<CreateKey>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedKey>), Problem> {
    let admin = st.admin.authorize(auth.token(), Access::Write)?;
    let (view, key) = st.admin.create_key(&admin, &body?.0.parse()?).await?;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, view })))
}

#[utoipa::path(get, path = "/v1/admin/keys/{id}", tag = "keys", description = "admin:read — one key (never its secret).",
    params(("id" = String, Path, description = "Key ID (base62)", pattern = "^[A-Za-z0-9]{1,64}$")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = KeyView),
        (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        AdminErrors,
    ))]
pub(crate) async fn get_key<S: Store>(
    State(st): State<AppState<S>>,
    auth: AdminBearer,
    id: Result<Path<String>, PathRejection>,
) -> Answer<KeyView> {
    st.admin.authorize(auth.token(), Access::Read)?;
    Ok(Json(st.admin.key(&key_id(id)?).await?))
}

#[utoipa::path(post, path = "/v1/admin/keys/{id}/revoke", tag = "keys", description = "admin:write — revoke a key and every token it minted.",
    params(("id" = String, Path, description = "Key ID (base62)", pattern = "^[A-Za-z0-9]{1,64}$")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = Done),
        (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json"),
        AdminErrors,
    ))]
pub(crate) async fn revoke_key<S: Store>(
    State(st): State<AppState<S>>,
    auth: AdminBearer,
    id: Result<Path<String>, PathRejection>,
) -> Answer<Done> {
    let admin = st.admin.authorize(auth.token(), Access::Write)?;
    st.admin.revoke_key(&admin, &key_id(id)?).await?;
    Ok(Json(DONE))
}

#[utoipa::path(post, path = "/v1/admin/keys/{id}/rotate", tag = "keys", description = "admin:write — a successor with the same tenant, scopes and restrictions; the old key keeps working for the grace period, or is revoked at once with revoke_old.",
    params(("id" = String, Path, description = "Key ID (base62)", pattern = "^[A-Za-z0-9]{1,64}$")), request_body(content = Option<RotateKey>, content_type = "application/json"),
    security(("admin_token" = [])),
    responses(
        (status = 201, body = CreatedKey),
        (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json"),
        AdminErrors,
    ))]
pub(crate) async fn rotate_key<S: Store>(
    State(st): State<AppState<S>>,
    auth: AdminBearer,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<Option<RotateKey>>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedKey>), Problem> {
    let admin = st.admin.authorize(auth.token(), Access::Write)?;
    let r = optional(body)?;
    let grace = Duration::from_secs(r.grace.unwrap_or(24 * 3600));
    let (view, key) = st
        .admin
        .rotate_key(&admin, &key_id(id)?, grace, r.revoke_old)
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, view })))
}

#[utoipa::path(get, path = "/v1/admin/scopes", tag = "scopes", description = "admin:read — declared scopes.",
    security(("admin_token" = [])),
    responses(
        (status = 200, body = Vec<ScopeView>),
        AdminErrors,
    ))]
pub(crate) async fn list_scopes<S: Store>(
    State(st): State<AppState<S>>,
    auth: AdminBearer,
) -> Answer<Vec<ScopeView>> {
    st.admin.authorize(auth.token(), Access::Read)?;
    Ok(Json(st.admin.scopes().await?))
}

#[utoipa::path(put, path = "/v1/admin/scopes/{name}", tag = "scopes", description = "admin:write — declare a scope; public ones may be carried by publishable keys.",
    params(("name" = String, Path, description = "Scope (RFC 6749 scope-token: visible ASCII but \" and \\)", pattern = "^[\\x21\\x23-\\x5b\\x5d-\\x7e]{1,128}$")), request_body = PutScope,
    security(("admin_token" = [])),
    responses(
        (status = 200, body = ScopeView),
        (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
        AdminErrors,
    ))]
pub(crate) async fn put_scope<S: Store>(
    State(st): State<AppState<S>>,
    auth: AdminBearer,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<PutScope>, JsonRejection>,
) -> Answer<ScopeView> {
    let admin = st.admin.authorize(auth.token(), Access::Write)?;
    let scope = Scope::new(name?.0).map_err(|e| invalid("scope", e))?;
    Ok(Json(
        st.admin.put_scope(&admin, &scope, body?.0.public).await?,
    ))
}

#[utoipa::path(get, path = "/v1/admin/tenants", tag = "tenants", description = "admin:read — tenants with their key counts.",
    security(("admin_token" = [])),
    responses(
        (status = 200, body = Vec<TenantSummary>),
        AdminErrors,
    ))]
pub(crate) async fn list_tenants<S: Store>(
    State(st): State<AppState<S>>,
    auth: AdminBearer,
) -> Answer<Vec<TenantSummary>> {
    st.admin.authorize(auth.token(), Access::Read)?;
    Ok(Json(st.admin.tenants().await?))
}

#[utoipa::path(post, path = "/v1/admin/tenants/{tenant}/revoke", tag = "tenants", description = "admin:write — revoke a tenant: its keys and every token issued to it until now.",
    params(("tenant" = String, Path, description = "Tenant", pattern = "^[A-Za-z0-9._:@-]{1,128}$")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = Done),
        (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
        AdminErrors,
    ))]
pub(crate) async fn revoke_tenant<S: Store>(
    State(st): State<AppState<S>>,
    auth: AdminBearer,
    tenant: Result<Path<String>, PathRejection>,
) -> Answer<Done> {
    let admin = st.admin.authorize(auth.token(), Access::Write)?;
    let tenant = TenantId::new(tenant?.0).map_err(|e| invalid("tenant", e))?;
    let n = st.admin.revoke_tenant(&admin, &tenant).await?;
    Ok(Json(Done {
        ok: true,
        revoked_keys: Some(n),
    }))
}

#[utoipa::path(get, path = "/v1/admin/revocations", tag = "revocations", description = "admin:read — revocation entries in force.",
    security(("admin_token" = [])),
    responses(
        (status = 200, body = Vec<RevocationView>),
        AdminErrors,
    ))]
pub(crate) async fn list_revocations<S: Store>(
    State(st): State<AppState<S>>,
    auth: AdminBearer,
) -> Answer<Vec<RevocationView>> {
    st.admin.authorize(auth.token(), Access::Read)?;
    Ok(Json(st.admin.revocations().await?))
}

#[utoipa::path(post, path = "/v1/admin/revocations", tag = "revocations", description = "admin:write — revoke one token by its jti.",
    request_body = RevokeToken,
    security(("admin_token" = [])),
    responses(
        (status = 200, body = Done),
        (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
        AdminErrors,
    ))]
pub(crate) async fn revoke_token<S: Store>(
    State(st): State<AppState<S>>,
    auth: AdminBearer,
    body: Result<Json<RevokeToken>, JsonRejection>,
) -> Answer<Done> {
    let admin = st.admin.authorize(auth.token(), Access::Write)?;
    let jti = Jti::new(body?.0.jti).map_err(|e| invalid("jti", e))?;
    st.admin.revoke_token(&admin, &jti).await?;
    Ok(Json(DONE))
}

#[utoipa::path(get, path = "/v1/admin/signing-keys", tag = "signing keys", description = "admin:read — signing keys and their states.",
    security(("admin_token" = [])),
    responses(
        (status = 200, body = Vec<SigningKeyView>),
        AdminErrors,
    ))]
pub(crate) async fn list_signing_keys<S: Store>(
    State(st): State<AppState<S>>,
    auth: AdminBearer,
) -> Answer<Vec<SigningKeyView>> {
    st.admin.authorize(auth.token(), Access::Read)?;
    Ok(Json(st.admin.signing_keys().await?))
}

#[utoipa::path(post, path = "/v1/admin/signing-keys/rotate", tag = "signing keys", description = "admin:write — publish a next signing key; it signs after the JWKS cache period.",
    request_body(content = Option<RotateSigningKey>, content_type = "application/json"),
    security(("admin_token" = [])),
    responses(
        (status = 201, body = SigningKeyView),
        (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json"),
        AdminErrors,
    ))]
pub(crate) async fn rotate_signing_key<S: Store>(
    State(st): State<AppState<S>>,
    auth: AdminBearer,
    body: Result<Json<Option<RotateSigningKey>>, JsonRejection>,
) -> Result<(StatusCode, Json<SigningKeyView>), Problem> {
    let admin = st.admin.authorize(auth.token(), Access::Write)?;
    let alg = match optional(body)?.alg.as_deref() {
        None | Some("EdDSA") => Algorithm::EdDsa,
        Some("ES256") => Algorithm::Es256,
        Some(other) => return Err(invalid("alg", format!("{other:?} is not EdDSA or ES256"))),
    };
    let view = st.admin.rotate_signing_key(&admin, alg).await?;
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
    auth: AdminBearer,
    kid: Result<Path<String>, PathRejection>,
) -> Answer<Done> {
    let admin = st.admin.authorize(auth.token(), Access::Write)?;
    st.admin.revoke_signing_key(&admin, &kid?.0).await?;
    Ok(Json(DONE))
}

#[utoipa::path(get, path = "/v1/admin/audit", tag = "audit", description = "admin:read — stored audit records, newest first; follow next_before for older pages.",
    params(AuditParams),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
        AdminErrors,
    ))]
pub(crate) async fn audit<S: Store>(
    State(st): State<AppState<S>>,
    auth: AdminBearer,
    q: Result<Query<AuditParams>, QueryRejection>,
) -> Answer<AuditPage> {
    st.admin.authorize(auth.token(), Access::Read)?;
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
    Ok(Json(st.admin.audit(query).await?))
}
