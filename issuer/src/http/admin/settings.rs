//! `/v1/admin/settings`: the settings every replica shares (issuer URL, maximum token lifetime,
//! JWKS cache period, revocation list validity). A change reaches every replica through the
//! change feed within a second.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use keymint_jwks::UnixTime;
use serde::Deserialize;

use super::{AdminErrors, Answer, CanRead, CanWrite, invalid};
use crate::domain::settings::{SettingName, SettingsView};
use crate::http::AppState;
use crate::store::Store;

/// `PUT /v1/admin/settings/{name}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutSetting {
    /// An http(s) URL for `issuer-url`; a duration (`90s`, `15m`, `2h`, `7d`, or seconds) for the
    /// others.
    value: String,
}

#[utoipa::path(get, path = "/v1/admin/settings", tag = "settings", description = "admin:read — the shared settings as stored (durations in seconds).",
    security(("admin_token" = [])),
    responses(
        (status = 200, body = SettingsView),
        AdminErrors,
    ))]
pub(crate) async fn get_settings<S: Store>(
    State(st): State<AppState<S>>,
    CanRead(admin): CanRead,
) -> Answer<SettingsView> {
    Ok(Json(st.admin.settings(&admin).await?))
}

#[utoipa::path(put, path = "/v1/admin/settings/{name}", tag = "settings", description = "admin:write — change one shared setting; every replica adopts it within a second. A new issuer URL goes into new tokens, discovery and a re-signed revocation list (tokens already issued keep the old iss until they expire); a longer max-token-ttl keeps listed revocations long enough for it.",
    params(("name" = String, Path, description = "issuer-url, max-token-ttl, jwks-max-age or revocation-list-validity")), request_body = PutSetting,
    security(("admin_token" = [])),
    responses(
        (status = 200, body = SettingsView),
        AdminErrors,
    ))]
pub(crate) async fn put_setting<S: Store>(
    State(st): State<AppState<S>>,
    CanWrite(admin): CanWrite,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<PutSetting>, JsonRejection>,
) -> Answer<SettingsView> {
    let name: SettingName = name?.0.parse().map_err(|e| invalid("setting", e))?;
    let value = body?.0.value;
    Ok(Json(
        st.admin
            .set_setting(&admin, name, &value, UnixTime::now())
            .await?,
    ))
}
