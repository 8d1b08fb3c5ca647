//! The settings every replica on one database must share: the issuer URL, the longest token
//! lifetime, the JWKS cache period and the revocation list's validity.
//!
//! The contract (docs/operations.md, "Shared settings"):
//!
//! - the first `serve` on a database stores them (its flags, else the defaults);
//! - a later `serve` takes the stored value for every flag it omits, and refuses to start, before
//!   writing anything, when a flag it was given differs from the stored value ([`resolve`]);
//! - `keymint settings set` and `PUT /v1/admin/settings/{name}` change one ([`change`]): the
//!   value, an audit record and a `settings` change in one transaction, so that every running
//!   replica adopts it from the change feed ([`load`] into a [`SharedSettings`]).
//!
//! Why refuse rather than let the last start win: replicas serving different issuer URLs, or a
//! rotation scheduled with another server's JWKS cache period, break verifiers quietly; a refused
//! start is loud and changes nothing.

mod checks;
mod name;
pub mod secrets;

use self::checks::invalid;
pub use self::checks::{
    MAX_JWKS_MAX_AGE, MAX_TOKEN_TTL_CAP, MIN_LIST_VALIDITY, check_duration, check_issuer,
    check_new_duration, plain_http_warning,
};
pub use self::name::{SettingName, UnknownSetting};

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use keymint_jwks::{Audience, Issuer, UnixTime};
use serde::Serialize;

use crate::domain::refusal::ConflictReason;
use crate::domain::revocation::{self, DEFAULT_LIST_VALIDITY, TTL_HIGH_WATER};
use crate::domain::{DomainError, Fault, unix};
use crate::store::{AuditRecord, Store, StoreError};

/// The longest token lifetime on a first start without `--max-token-ttl`.
pub const DEFAULT_MAX_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// The JWKS cache period on a first start without `--jwks-max-age`.
pub const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(300);
/// A value for each setting, any of them possibly absent: what is stored, or what flags said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partial {
    /// The issuer URL.
    pub issuer: Option<Issuer>,
    /// The longest token lifetime.
    pub max_token_ttl: Option<Duration>,
    /// The JWKS cache period.
    pub jwks_max_age: Option<Duration>,
    /// The revocation list's validity.
    pub list_validity: Option<Duration>,
}

impl Partial {
    /// The value of `name` as people write it (`https://…`, `1h`), if there is one.
    pub fn shown(&self, name: SettingName) -> Option<String> {
        let d = |d: &Option<Duration>| d.map(|d| humantime::format_duration(d).to_string());
        match name {
            SettingName::IssuerUrl => self.issuer.as_ref().map(|i| i.as_str().to_owned()),
            SettingName::MaxTokenTtl => d(&self.max_token_ttl),
            SettingName::JwksMaxAge => d(&self.jwks_max_age),
            SettingName::RevocationListValidity => d(&self.list_validity),
        }
    }

    /// The value of `name` as stored (durations in seconds).
    fn stored_form(&self, name: SettingName) -> Option<String> {
        let secs = |d: &Option<Duration>| d.map(|d| d.as_secs().to_string());
        match name {
            SettingName::IssuerUrl => self.issuer.as_ref().map(|i| i.as_str().to_owned()),
            SettingName::MaxTokenTtl => secs(&self.max_token_ttl),
            SettingName::JwksMaxAge => secs(&self.jwks_max_age),
            SettingName::RevocationListValidity => secs(&self.list_validity),
        }
    }

    /// Reads rows of the `settings` table (others are left alone). A stored value that does not
    /// parse is corrupt data, not a reason to fall back on a default.
    pub fn from_rows(rows: &[(String, String)]) -> Result<Self, DomainError> {
        let mut p = Self::default();
        for (key, value) in rows {
            let Some(name) = SettingName::ALL.into_iter().find(|n| n.key() == key) else {
                continue;
            };
            let corrupt = |why: String| {
                DomainError::Corrupt(StoreError::Corrupt(
                    format!("stored setting {name} = {value:?}: {why}").into(),
                ))
            };
            if name == SettingName::IssuerUrl {
                p.issuer = Some(Issuer::new(value.as_str()).map_err(|e| corrupt(e.to_string()))?);
                continue;
            }
            let d = value
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|e| corrupt(e.to_string()))?;
            p.set_duration(name, d);
        }
        Ok(p)
    }

    fn set_duration(&mut self, name: SettingName, d: Duration) {
        match name {
            SettingName::IssuerUrl => {}
            SettingName::MaxTokenTtl => self.max_token_ttl = Some(d),
            SettingName::JwksMaxAge => self.jwks_max_age = Some(d),
            SettingName::RevocationListValidity => self.list_validity = Some(d),
        }
    }

    /// Parses and checks one value as given to `keymint settings set` or the admin API: an
    /// issuer URL, or a duration like `90s`, `15m`, `2h`, `1d` (a bare number is seconds).
    pub fn one(name: SettingName, text: &str) -> Result<Self, DomainError> {
        let mut p = Self::default();
        if name == SettingName::IssuerUrl {
            p.issuer = Some(check_issuer(text)?);
            return Ok(p);
        }
        let text = text.trim();
        let d = match text.parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs),
            Err(_) => humantime::parse_duration(text).map_err(|e| {
                invalid(
                    name,
                    format!("{text:?} is not a duration like 30s, 10m, 24h or 7d: {e}"),
                )
            })?,
        };
        check_new_duration(name, d)?;
        p.set_duration(name, d);
        Ok(p)
    }

    /// Every setting present, as `(row, value)` pairs for the store.
    fn rows(&self) -> Vec<(&'static str, String)> {
        SettingName::ALL
            .into_iter()
            .filter_map(|n| self.stored_form(n).map(|v| (n.key(), v)))
            .collect()
    }
}

/// What `serve` runs with: each flag given, else the stored value, else nothing yet (the default
/// applies on a first start). A flag that differs from the stored value is refused, naming both.
pub fn resolve(stored: &Partial, given: &Partial) -> Result<Partial, DomainError> {
    for name in SettingName::ALL {
        if let (Some(s), Some(g)) = (stored.stored_form(name), given.stored_form(name))
            && s != g
        {
            return Err(DomainError::Conflict(ConflictReason::Setting {
                name: name.as_str(),
                stored: stored.shown(name).unwrap_or(s),
                given: given.shown(name).unwrap_or(g),
            }));
        }
    }
    Ok(Partial {
        issuer: given.issuer.clone().or_else(|| stored.issuer.clone()),
        max_token_ttl: given.max_token_ttl.or(stored.max_token_ttl),
        jwks_max_age: given.jwks_max_age.or(stored.jwks_max_age),
        list_validity: given.list_validity.or(stored.list_validity),
    })
}

/// The settings in force. Built only through [`Settings::new`], which checks every value and
/// derives the admin audience once rather than on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    issuer: Issuer,
    admin_audience: Audience,
    max_token_ttl: Duration,
    jwks_max_age: Duration,
    list_validity: Duration,
}

/// The settings a server runs with, swapped whole when the change feed says they changed: each
/// reader sees one consistent set.
pub type SharedSettings = Arc<ArcSwap<Settings>>;

impl Settings {
    /// Checks the values (as [`Partial::one`] does, but for the cap on newly set values, so a
    /// database that stored a longer maximum token lifetime still starts) and puts them together.
    pub fn new(
        issuer: Issuer,
        max_token_ttl: Duration,
        jwks_max_age: Duration,
        list_validity: Duration,
    ) -> Result<Self, DomainError> {
        check_duration(SettingName::MaxTokenTtl, max_token_ttl)?;
        check_duration(SettingName::RevocationListValidity, list_validity)?;
        Ok(Self {
            admin_audience: crate::domain::reserved::admin_audience(&issuer)?,
            issuer,
            max_token_ttl,
            jwks_max_age,
            list_validity,
        })
    }

    /// `resolved`, with the defaults for what it lacks: `issuer` (the listen URL) and the
    /// `DEFAULT_*` constants. Only a first start has anything lacking.
    pub fn with_defaults(
        resolved: &Partial,
        issuer: impl FnOnce() -> Issuer,
    ) -> Result<Self, DomainError> {
        Self::new(
            resolved.issuer.clone().unwrap_or_else(issuer),
            resolved.max_token_ttl.unwrap_or(DEFAULT_MAX_TOKEN_TTL),
            resolved.jwks_max_age.unwrap_or(DEFAULT_JWKS_MAX_AGE),
            resolved.list_validity.unwrap_or(DEFAULT_LIST_VALIDITY),
        )
    }

    /// `iss`.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// `<issuer>/v1/admin`, the admin tokens' audience.
    pub fn admin_audience(&self) -> &Audience {
        &self.admin_audience
    }

    /// The longest token lifetime.
    pub fn max_token_ttl(&self) -> Duration {
        self.max_token_ttl
    }

    /// The JWKS cache period.
    pub fn jwks_max_age(&self) -> Duration {
        self.jwks_max_age
    }

    /// The revocation list's validity.
    pub fn list_validity(&self) -> Duration {
        self.list_validity
    }

    /// Every value, as possibly-absent ones.
    pub fn to_partial(&self) -> Partial {
        Partial {
            issuer: Some(self.issuer.clone()),
            max_token_ttl: Some(self.max_token_ttl),
            jwks_max_age: Some(self.jwks_max_age),
            list_validity: Some(self.list_validity),
        }
    }
}

/// The stored settings as the admin API shows them (durations in seconds; absent until a server
/// has started on the database or an admin has set them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SettingsView {
    /// `iss` of every token and list.
    pub issuer_url: Option<String>,
    /// The longest token lifetime, in seconds.
    pub max_token_ttl: Option<u64>,
    /// The JWKS cache period, in seconds.
    pub jwks_max_age: Option<u64>,
    /// The revocation list's validity, in seconds.
    pub revocation_list_validity: Option<u64>,
    /// What an operator should know about these settings: an issuer URL in plain http on a host
    /// other than loopback. Absent when there is nothing to say.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl From<&Partial> for SettingsView {
    fn from(p: &Partial) -> Self {
        Self {
            issuer_url: p.issuer.as_ref().map(|i| i.as_str().to_owned()),
            max_token_ttl: p.max_token_ttl.map(|d| d.as_secs()),
            jwks_max_age: p.jwks_max_age.map(|d| d.as_secs()),
            revocation_list_validity: p.list_validity.map(|d| d.as_secs()),
            warnings: p
                .issuer
                .iter()
                .filter_map(plain_http_warning)
                .chain(stale_warnings(p))
                .collect(),
        }
    }
}

/// Stored values that a start or `settings set` would now refuse as new values (stored before
/// those checks existed): they stay in force until changed, and the warning says how.
pub fn stale_warnings(p: &Partial) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(issuer) = &p.issuer
        && let Err(e) = check_issuer(issuer.as_str())
    {
        out.push(format!(
            "{e}. It is in every token: change it with `keymint settings set issuer-url URL`"
        ));
    }
    for name in [SettingName::MaxTokenTtl, SettingName::JwksMaxAge] {
        let d = match name {
            SettingName::MaxTokenTtl => p.max_token_ttl,
            _ => p.jwks_max_age,
        };
        if let Some(d) = d
            && let Err(e) = check_new_duration(name, d)
        {
            out.push(format!(
                "{e}. It stays in force until changed: `keymint settings set {name} VALUE`"
            ));
        }
    }
    out
}

/// The stored settings (through the migrated store; `serve`'s first check reads them without
/// it, see `SqliteStore::peek_settings`).
pub async fn stored<S: Store>(store: &S) -> Result<Partial, DomainError> {
    let mut rows = Vec::with_capacity(SettingName::ALL.len());
    for key in SettingName::stored_keys() {
        if let Some(v) = store.setting(key).await? {
            rows.push((key.to_owned(), v));
        }
    }
    Partial::from_rows(&rows)
}

/// A start's settings: stores each one not stored yet, then checks that what is stored now is
/// what this server runs with (another replica's first start may have come in between).
pub async fn establish<S: Store>(store: &S, wanted: &Settings) -> Result<(), DomainError> {
    let rows = wanted.to_partial().rows();
    let pairs: Vec<(&str, &str)> = rows.iter().map(|(k, v)| (*k, v.as_str())).collect();
    store.init_settings(&pairs).await?;
    resolve(&stored(store).await?, &wanted.to_partial()).map(|_| ())
}

/// The settings in force, for a running server adopting a change.
pub async fn load<S: Store>(store: &S) -> Result<Settings, DomainError> {
    let p = stored(store).await?;
    let missing = || DomainError::Internal(Fault::new("a shared setting is no longer stored"));
    Settings::new(
        p.issuer.ok_or_else(missing)?,
        p.max_token_ttl.ok_or_else(missing)?,
        p.jwks_max_age.ok_or_else(missing)?,
        p.list_validity.ok_or_else(missing)?,
    )
}

/// Changes one setting (already parsed by [`Partial::one`]), audited, for every running replica
/// to adopt from the change feed. A longer token lifetime also raises the high-water mark and
/// keeps every listed revocation entry until a token of the new lifetime, issued just before its
/// revocation reached a replica, has expired.
pub async fn change<S: Store>(
    store: &S,
    name: SettingName,
    value: &Partial,
    now: UnixTime,
    actor: impl Into<crate::domain::audit::Actor<'_>>,
) -> Result<SettingsView, DomainError> {
    let new = value
        .stored_form(name)
        .ok_or_else(|| DomainError::Internal(Fault::new("a setting change without its value")))?;
    let before = stored(store).await?;
    let mut rows = vec![(name.key(), new)];
    let mut entry_span = None;
    if let Some(ttl) = value
        .max_token_ttl
        .filter(|_| name == SettingName::MaxTokenTtl)
        && ttl > revocation::covered_ttl(store, before.max_token_ttl.unwrap_or_default()).await?
    {
        rows.push((TTL_HIGH_WATER, ttl.as_secs().to_string()));
        // What `revocation::drop_after` adds to an entry's revocation time.
        entry_span = Some(unix(revocation::drop_after(UnixTime(0), ttl)));
    }
    let audit = actor.into().stamp(AuditRecord {
        at: unix(now),
        action: "settings.set".into(),
        outcome: "ok".into(),
        detail: Some(format!(
            "{name}: {} -> {}",
            before.shown(name).unwrap_or_else(|| "(not set)".into()),
            value.shown(name).unwrap_or_default()
        )),
        ..AuditRecord::default()
    });
    let pairs: Vec<(&str, &str)> = rows.iter().map(|(k, v)| (*k, v.as_str())).collect();
    store.put_settings(&pairs, entry_span, &audit).await?;
    crate::domain::audit::log(&audit);
    Ok(SettingsView::from(&stored(store).await?))
}

#[cfg(test)]
mod tests;
