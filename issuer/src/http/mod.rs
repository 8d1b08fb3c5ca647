//! HTTP: routes, extractors and the one place errors become responses. Handlers extract, call the
//! domain and map; nothing else.
#![allow(clippy::disallowed_methods)] // HTTP is an edge: each request reads the clock once

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use std::sync::Arc;

use crate::domain::admin::api::AdminApi;
use crate::domain::leaks::LeakDesk;
use crate::domain::revocation::ListFeed;
use crate::domain::settings::SharedSettings;
use crate::domain::signing::SigningSet;
use crate::domain::token::TokenService;
use crate::store::Store;

mod admin;
mod client_address;
mod credentials;
mod discovery;
mod error;
mod error_table;
mod event_frames;
mod health;
mod leaks;
mod metrics;
mod openapi;
mod problem;
mod token;

#[cfg(test)]
mod admin_tests;
#[cfg(test)]
mod dpop_tests;
#[cfg(test)]
mod leaks_tests;
#[cfg(test)]
mod openapi_tests;
#[cfg(test)]
mod refusal_tests;
#[cfg(test)]
mod tests;

pub use error::HttpError;
pub use event_frames::EventFrames;
pub use openapi::ApiDoc;

/// The largest request body accepted (413 beyond).
pub const MAX_BODY: usize = 16 * 1024;

/// Everything handlers need: one shared [`AppParts`], so that handing it to a request (axum
/// clones the state for every one) is one reference count, not a copy of every field.
pub struct AppState<S>(Arc<AppParts<S>>);

/// What [`AppState`] shares.
pub struct AppParts<S> {
    /// The token exchange.
    pub tokens: TokenService<S>,
    /// Current signing set (JWKS).
    pub signing: Arc<ArcSwap<SigningSet>>,
    /// Current signed revocation list, and the push channel.
    pub list: ListFeed,
    /// The store, for readiness.
    pub store: Arc<S>,
    /// The settings in force: the issuer URL (as in `iss`, and the base of the published URLs)
    /// and `Cache-Control: max-age` of the JWKS among them.
    pub settings: SharedSettings,
    /// Proxies whose `X-Forwarded-For` is believed (with `--behind-tls-proxy`).
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// The admin API.
    pub admin: Arc<AdminApi<S>>,
    /// Secret-scanning reports.
    pub leaks: Arc<LeakDesk<S>>,
    /// The push streams open, bounded per client and in total (the connection limits' numbers).
    pub streams: Arc<crate::domain::client_slots::Connections>,
    /// The push channel's event for the list in force, one buffer for every stream.
    pub event_frames: EventFrames,
}

impl<S> From<AppParts<S>> for AppState<S> {
    fn from(parts: AppParts<S>) -> Self {
        Self(Arc::new(parts))
    }
}

impl<S> std::ops::Deref for AppState<S> {
    type Target = AppParts<S>;

    fn deref(&self) -> &AppParts<S> {
        &self.0
    }
}

impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

/// The admin API's routes, each refusal after the token check audited (`admin::audit_refusals`).
fn admin_routes<S: Store>(state: &AppState<S>) -> Router<AppState<S>> {
    Router::new()
        .route(
            "/v1/admin/keys",
            get(admin::keys::list_keys::<S>).post(admin::keys::create_key::<S>),
        )
        .route("/v1/admin/keys/{id}", get(admin::keys::get_key::<S>))
        .route(
            "/v1/admin/keys/{id}/usage",
            get(admin::keys::key_usage::<S>),
        )
        .route(
            "/v1/admin/keys/{id}/revoke",
            post(admin::keys::revoke_key::<S>),
        )
        .route(
            "/v1/admin/keys/{id}/rotate",
            post(admin::keys::rotate_key::<S>),
        )
        .route("/v1/admin/scopes", get(admin::scopes::list_scopes::<S>))
        .route(
            "/v1/admin/scopes/{name}",
            put(admin::scopes::put_scope::<S>),
        )
        .route("/v1/admin/tenants", get(admin::tenants::list_tenants::<S>))
        .route(
            "/v1/admin/tenants/{tenant}/revoke",
            post(admin::tenants::revoke_tenant::<S>),
        )
        .route(
            "/v1/admin/revocations",
            get(admin::revocations::list_revocations::<S>)
                .post(admin::revocations::revoke_token::<S>),
        )
        .route(
            "/v1/admin/signing-keys",
            get(admin::signing_keys::list_signing_keys::<S>),
        )
        .route(
            "/v1/admin/signing-keys/rotate",
            post(admin::signing_keys::rotate_signing_key::<S>),
        )
        .route(
            "/v1/admin/signing-keys/{kid}/revoke",
            post(admin::signing_keys::revoke_signing_key::<S>),
        )
        .route(
            "/v1/admin/settings",
            get(admin::settings::get_settings::<S>),
        )
        .route(
            "/v1/admin/settings/{name}",
            put(admin::settings::put_setting::<S>),
        )
        .route(
            "/v1/admin/tenants/{tenant}/policy",
            get(admin::tenants::get_policy::<S>).put(admin::tenants::put_policy::<S>),
        )
        .route("/v1/admin/audit", get(admin::audit::audit::<S>))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::audit_refusals::<S>,
        ))
}

/// The issuer's routes.
pub fn router<S: Store>(state: AppState<S>) -> Router {
    metrics::install();
    Router::new()
        .route(
            "/v1/token",
            post(token::v1_token::<S>).options(token::preflight::<S>),
        )
        .route(
            "/oauth2/token",
            post(token::oauth2_token::<S>).options(token::preflight::<S>),
        )
        .route("/.well-known/jwks.json", get(discovery::jwks::<S>))
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::metadata::<S>),
        )
        .route("/v1/revocations", get(discovery::revocations::<S>))
        .route(
            "/v1/revocations/events",
            get(discovery::revocation_events::<S>),
        )
        .merge(admin_routes(&state))
        .route(
            "/v1/secret-scanning/github",
            post(leaks::github_report::<S>).layer(DefaultBodyLimit::max(leaks::MAX_REPORT)),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz::<S>))
        .route("/metrics", get(metrics::render))
        .route("/openapi.json", get(openapi::openapi_json))
        // One level for every route, not one per concern: see `EdgeLayer`.
        .route_layer(metrics::EdgeLayer)
        .with_state(state)
}
