//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the handlers' annotations and
//! the request/response types (utoipa), so it cannot drift from the code unnoticed: the router
//! tests check that every documented route answers as documented.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, discovery, health, leaks, metrics, token};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "keymint issuer",
        description = "Trade long-lived API keys for short-lived signed tokens (RFC 9068 JWTs); publish the JWKS and a signed revocation list; administer keys. Errors: RFC 6749 §5.2 at the token endpoints, RFC 9457 problem documents under /v1/admin.",
        license(name = "Apache-2.0")
    ),
    paths(
        token::v1_token, token::oauth2_token, token::preflight,
        discovery::jwks, discovery::metadata, discovery::revocations, discovery::revocation_events,
        health::healthz, health::readyz, metrics::render, openapi_json,
        admin::keys::list_keys, admin::keys::create_key, admin::keys::get_key, admin::keys::key_usage,
        admin::keys::revoke_key, admin::keys::rotate_key,
        admin::scopes::list_scopes, admin::scopes::put_scope,
        admin::tenants::list_tenants, admin::tenants::revoke_tenant,
        admin::tenants::get_policy, admin::tenants::put_policy,
        leaks::github_report,
        admin::revocations::list_revocations, admin::revocations::revoke_token,
        admin::signing_keys::list_signing_keys, admin::signing_keys::rotate_signing_key,
        admin::signing_keys::revoke_signing_key,
        admin::settings::get_settings, admin::settings::put_setting,
        admin::audit::audit,
    ),
    modifiers(&Security),
    tags(
        (name = "token", description = "API key → token"),
        (name = "discovery", description = "What verifiers fetch"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
        (name = "keys", description = "Admin: API keys"),
        (name = "scopes", description = "Admin: scopes"),
        (name = "tenants", description = "Admin: tenants"),
        (name = "revocations", description = "Admin: revocations"),
        (name = "signing keys", description = "Admin: token signing keys"),
        (name = "settings", description = "Admin: the settings every replica shares"),
        (name = "audit", description = "Admin: the audit log"),
        (name = "secret scanning", description = "Leaked-key reports from a secret scanner"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key (km_sk_… or km_pk_…)"))
                    .build(),
            ),
        );
        c.add_security_scheme(
            "api_key_header",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        c.add_security_scheme(
            "client_basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        c.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A token from an admin key (POST /v1/token), audience <issuer>/v1/admin",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as JSON, built once.
pub(crate) fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default())
}

/// `GET /openapi.json`.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "this document (OpenAPI 3.1)", body = Object, content_type = "application/json")))]
pub(crate) async fn openapi_json() -> Response {
    let mut res = document().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}
