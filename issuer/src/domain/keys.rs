//! API key administration: create, list, show, rotate. (Revocation is in `revocations`.)

use std::time::Duration;

use ipnet::IpNet;
use keymint_jwks::{ApiKeyId, Audience, Scope, ScopeSet, TenantId, UnixTime};
use ring::rand::SystemRandom;
use serde::Serialize;

use super::api_key::{self, KeyEnv, KeyKind, PrintableKey};
use super::key_hash::KeyHasher;
use super::limits::RateSpec;
use super::origin::Origin;
use super::{DomainError, unix};
use crate::store::{AuditRecord, KeyRecord, Store};

/// Default key lifetime (keys must rotate).
pub const DEFAULT_KEY_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);
/// The longest key lifetime accepted.
pub const MAX_KEY_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);
/// Default token lifetime.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(600);
/// Default maximum token lifetime a key may request.
pub const DEFAULT_KEY_MAX_TTL: Duration = Duration::from_secs(3600);
/// Default token lifetime of a publishable (browser) key.
pub const PUBLISHABLE_DEFAULT_TTL: Duration = Duration::from_secs(300);
/// The longest token a publishable key may ever get.
pub const PUBLISHABLE_MAX_TTL: Duration = Duration::from_secs(600);
/// Default rate limit of a publishable key as a whole; each client IP gets a tenth of it.
pub const PUBLISHABLE_DEFAULT_RATE: &str = "600/m";
/// Default grace period of the old key after a rotation.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// What a new key should be.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Secret (server-side) or publishable (browser).
    pub kind: KeyKind,
    /// Browser origins allowed to use the key (required for publishable keys).
    pub allow_origins: Vec<Origin>,
    /// Tenant.
    pub tenant: TenantId,
    /// Scopes (at least one).
    pub scopes: ScopeSet,
    /// Audiences (at least one).
    pub audiences: Vec<Audience>,
    /// Default token lifetime (default: 10 min, 5 min for publishable keys).
    pub ttl: Option<Duration>,
    /// Maximum token lifetime (default: 1 h, 10 min for publishable keys).
    pub max_ttl: Option<Duration>,
    /// Key lifetime.
    pub expires_in: Duration,
    /// Label.
    pub label: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Allowed client networks (empty: any).
    pub allow_ips: Vec<IpNet>,
    /// Rate limit (publishable keys: default 600/m for the key, a tenth of it per client IP).
    pub rate_limit: Option<RateSpec>,
    /// Environment.
    pub env: KeyEnv,
}

/// A key as shown to admins: never a secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    /// Key ID.
    pub key_id: String,
    /// `sk` / `pk`.
    pub kind: String,
    /// `live` / `test`.
    pub env: String,
    /// Tenant.
    pub tenant: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Audiences.
    pub audiences: Vec<String>,
    /// Default token lifetime, seconds.
    pub ttl: i64,
    /// Maximum token lifetime, seconds.
    pub max_ttl: i64,
    /// Expiry.
    pub expires_at: i64,
    /// Allowed networks.
    pub allow_ips: Vec<String>,
    /// Allowed browser origins.
    pub allow_origins: Vec<String>,
    /// Rate limit.
    pub rate_limit: Option<String>,
    /// Label.
    pub label: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Created.
    pub created_at: i64,
    /// Last used (updated in batches).
    pub last_used_at: Option<i64>,
    /// `active`, `revoked` or `expired`.
    pub state: &'static str,
    /// Revoked at.
    pub revoked_at: Option<i64>,
    /// Successor after rotation.
    pub rotated_to: Option<String>,
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

impl KeyView {
    /// The admin view of a record at `now`.
    pub fn from_record(r: &KeyRecord, now: UnixTime) -> Self {
        let state = if r.revoked_at.is_some() {
            "revoked"
        } else if r.expires_at <= unix(now) {
            "expired"
        } else {
            "active"
        };
        Self {
            key_id: r.key_id.clone(),
            kind: r.kind.clone(),
            env: r.env.clone(),
            tenant: r.tenant.clone(),
            scopes: words(&r.scopes),
            audiences: words(&r.audiences),
            ttl: r.default_ttl,
            max_ttl: r.max_ttl,
            expires_at: r.expires_at,
            allow_ips: words(&r.allow_ips),
            allow_origins: words(&r.allow_origins),
            rate_limit: r.rate_limit.clone(),
            label: r.label.clone(),
            owner: r.owner.clone(),
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            state,
            revoked_at: r.revoked_at,
            rotated_to: r.rotated_to.clone(),
        }
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// A new key with its defaults resolved by kind.
struct Resolved {
    ttl: Duration,
    max_ttl: Duration,
    rate_limit: Option<RateSpec>,
}

fn validate(new: &NewKey, public_scopes: &[String]) -> Result<Resolved, DomainError> {
    if new.scopes.is_empty() {
        return Err(DomainError::Invalid(
            "a key needs at least one --scope".into(),
        ));
    }
    if let Some(s) = new.scopes.iter().find(|s| s.is_admin()) {
        return Err(DomainError::Invalid(format!(
            "scope {s} is reserved: admin:* scopes are only given to admin keys"
        )));
    }
    if new.audiences.is_empty() {
        return Err(DomainError::Invalid(
            "a key needs at least one --audience".into(),
        ));
    }
    if new.tenant.as_str() == super::admin::ADMIN_TENANT {
        return Err(DomainError::Invalid(format!(
            "tenant {} is reserved for admin keys (keymint admin-keys create)",
            super::admin::ADMIN_TENANT
        )));
    }
    let publishable = new.kind == KeyKind::Publishable;
    let (ttl, max_ttl) = if publishable {
        if new.allow_origins.is_empty() {
            return Err(DomainError::Invalid(
                "a publishable key needs at least one --origin (the browser origins allowed to use it)".into(),
            ));
        }
        if let Some(s) = new
            .scopes
            .iter()
            .find(|s| !public_scopes.iter().any(|p| p == s.as_str()))
        {
            return Err(DomainError::Invalid(format!(
                "scope {s} is not public: publishable keys may only carry scopes declared with `keymint scopes add {s} --public`"
            )));
        }
        let max_ttl = new.max_ttl.unwrap_or(PUBLISHABLE_MAX_TTL);
        if max_ttl > PUBLISHABLE_MAX_TTL {
            return Err(DomainError::Invalid(format!(
                "publishable keys get tokens of at most {}",
                humantime::format_duration(PUBLISHABLE_MAX_TTL)
            )));
        }
        (
            new.ttl.unwrap_or(PUBLISHABLE_DEFAULT_TTL.min(max_ttl)),
            max_ttl,
        )
    } else {
        (
            new.ttl.unwrap_or(DEFAULT_TOKEN_TTL),
            new.max_ttl.unwrap_or(DEFAULT_KEY_MAX_TTL),
        )
    };
    if ttl.is_zero() || ttl > max_ttl {
        return Err(DomainError::Invalid(
            "--ttl must be positive and at most --max-ttl".into(),
        ));
    }
    if new.expires_in.is_zero() || new.expires_in > MAX_KEY_LIFETIME {
        return Err(DomainError::Invalid(format!(
            "--expires-in must be between 1s and {}",
            humantime::format_duration(MAX_KEY_LIFETIME)
        )));
    }
    let rate_limit = match (new.rate_limit, publishable) {
        (Some(r), _) => Some(r),
        (None, true) => RateSpec::parse(PUBLISHABLE_DEFAULT_RATE),
        (None, false) => None,
    };
    Ok(Resolved {
        ttl,
        max_ttl,
        rate_limit,
    })
}

fn record_for(
    new: &NewKey,
    resolved: &Resolved,
    key_id: &ApiKeyId,
    secret_hash: Vec<u8>,
    now: UnixTime,
) -> KeyRecord {
    KeyRecord {
        key_id: key_id.to_string(),
        kind: new.kind.as_str().into(),
        env: new.env.as_str().into(),
        tenant: new.tenant.to_string(),
        secret_hash,
        scopes: new.scopes.to_string(),
        audiences: new
            .audiences
            .iter()
            .map(Audience::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        default_ttl: secs(resolved.ttl),
        max_ttl: secs(resolved.max_ttl),
        expires_at: unix(now.saturating_add(new.expires_in)),
        allow_ips: new
            .allow_ips
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        allow_origins: new
            .allow_origins
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        rate_limit: resolved.rate_limit.map(|r| r.to_string()),
        label: new.label.clone(),
        owner: new.owner.clone(),
        is_admin: false,
        created_at: unix(now),
        last_used_at: None,
        revoked_at: None,
        rotated_to: None,
    }
}

/// A fresh key of `kind`: its ID, the printable key (shown once) and the hash to store.
pub(super) fn mint(
    hasher: &KeyHasher,
    kind: KeyKind,
    env: KeyEnv,
) -> Result<(ApiKeyId, PrintableKey, Vec<u8>), DomainError> {
    let (key_id, printable) = api_key::generate(kind, env, &SystemRandom::new())
        .map_err(|_| DomainError::Internal("random generator failed".into()))?;
    let parsed = api_key::parse(printable.expose())
        .map_err(|_| DomainError::Internal("generated key does not parse".into()))?;
    let hash = hasher.hash(key_id.as_str(), parsed.secret.expose());
    Ok((key_id, printable, hash))
}

async fn public_scopes<S: Store>(store: &S, new: &NewKey) -> Result<Vec<String>, DomainError> {
    if new.kind != KeyKind::Publishable {
        return Ok(Vec::new());
    }
    Ok(store
        .scopes()
        .await?
        .into_iter()
        .filter_map(|(name, public)| public.then_some(name))
        .collect())
}

/// Refuses `<issuer>/v1/admin` as a customer key's audience once the issuer URL is known (a
/// server has run on this database). The token endpoint refuses it in any case.
async fn refuse_admin_audience<S: Store>(store: &S, new: &NewKey) -> Result<(), DomainError> {
    let Some(issuer) = store.setting("issuer").await? else {
        return Ok(());
    };
    let Ok(admin) = keymint_jwks::Issuer::new(issuer.as_str())
        .map_err(|_| ())
        .and_then(|i| super::admin::admin_audience(&i).map_err(|_| ()))
    else {
        return Ok(());
    };
    if new.audiences.contains(&admin) {
        return Err(DomainError::Invalid(format!(
            "audience {admin} is reserved for admin keys (keymint admin-keys create)"
        )));
    }
    Ok(())
}

/// Declares a scope, public (usable by publishable keys) or not.
pub async fn put_scope<S: Store>(
    store: &S,
    scope: &keymint_jwks::Scope,
    public: bool,
    now: UnixTime,
    actor: &str,
) -> Result<(), DomainError> {
    if scope.is_admin() && public {
        return Err(DomainError::Invalid(
            "admin:* scopes can never be public".into(),
        ));
    }
    let audit = AuditRecord {
        at: unix(now),
        action: "scope.put".into(),
        outcome: "ok".into(),
        actor: Some(actor.into()),
        scopes: Some(scope.to_string()),
        detail: Some(format!("public={public}")),
        ..AuditRecord::default()
    };
    store.put_scope(scope.as_str(), public, &audit).await?;
    super::audit::log(&audit);
    Ok(())
}

/// Creates a key; the printable key is returned once and never stored.
pub async fn create<S: Store>(
    store: &S,
    hasher: &KeyHasher,
    new: &NewKey,
    now: UnixTime,
    actor: &str,
) -> Result<(KeyView, PrintableKey), DomainError> {
    let resolved = validate(new, &public_scopes(store, new).await?)?;
    refuse_admin_audience(store, new).await?;
    let (key_id, printable, hash) = mint(hasher, new.kind, new.env)?;
    let rec = record_for(new, &resolved, &key_id, hash, now);
    let audit = AuditRecord {
        at: unix(now),
        action: "key.create".into(),
        outcome: "ok".into(),
        actor: Some(actor.into()),
        key_id: Some(key_id.to_string()),
        tenant: Some(new.tenant.to_string()),
        scopes: Some(rec.scopes.clone()),
        ..AuditRecord::default()
    };
    store.insert_key(&rec, &audit).await?;
    super::audit::log(&audit);
    Ok((KeyView::from_record(&rec, now), printable))
}

/// Creates `count` keys from one template in batches of 10,000 (for load tests and migrations),
/// handing each printable key to `each` once.
pub async fn create_many<S: Store>(
    store: &S,
    hasher: &KeyHasher,
    template: &NewKey,
    count: u64,
    now: UnixTime,
    actor: &str,
    mut each: impl FnMut(u64, &ApiKeyId, &PrintableKey),
) -> Result<(), DomainError> {
    let resolved = validate(template, &public_scopes(store, template).await?)?;
    refuse_admin_audience(store, template).await?;
    let mut made = 0u64;
    while made < count {
        let batch = (count - made).min(10_000);
        let mut records = Vec::with_capacity(usize::try_from(batch).unwrap_or(0));
        for _ in 0..batch {
            let (key_id, printable, hash) = mint(hasher, template.kind, template.env)?;
            each(made, &key_id, &printable);
            records.push(record_for(template, &resolved, &key_id, hash, now));
            made += 1;
        }
        let audit = AuditRecord {
            at: unix(now),
            action: "key.create_many".into(),
            outcome: "ok".into(),
            actor: Some(actor.into()),
            tenant: Some(template.tenant.to_string()),
            scopes: Some(template.scopes.to_string()),
            detail: Some(format!("count={batch}")),
            ..AuditRecord::default()
        };
        store.insert_keys(&records, &audit).await?;
        super::audit::log(&audit);
    }
    Ok(())
}

/// Rotates a key: a successor with the same tenant, scopes and restrictions, and the old key's
/// expiry cut to `now + grace`.
pub async fn rotate<S: Store>(
    store: &S,
    hasher: &KeyHasher,
    old_id: &ApiKeyId,
    grace: Duration,
    now: UnixTime,
    actor: &str,
) -> Result<(KeyView, PrintableKey), DomainError> {
    let old = store
        .key(old_id.as_str())
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("key {old_id}")))?;
    if old.revoked_at.is_some() {
        return Err(DomainError::Conflict(format!(
            "key {old_id} is revoked; create a new key"
        )));
    }
    if old.is_admin {
        // Admin keys are made only by `keymint admin-keys create`, on the database itself.
        return Err(DomainError::Invalid(format!(
            "key {old_id} is an admin key: make its successor with `keymint admin-keys create`, \
             then revoke it"
        )));
    }
    if let Some(to) = &old.rotated_to {
        return Err(DomainError::Conflict(format!(
            "key {old_id} was already rotated to {to}"
        )));
    }
    let env = KeyEnv::parse(&old.env).unwrap_or(KeyEnv::Live);
    let kind = KeyKind::parse(&old.kind).unwrap_or(KeyKind::Secret);
    let (key_id, printable, hash) = mint(hasher, kind, env)?;
    let lifetime = (old.expires_at - old.created_at).max(1);
    let rec = KeyRecord {
        key_id: key_id.to_string(),
        secret_hash: hash,
        created_at: unix(now),
        expires_at: unix(now).saturating_add(lifetime),
        last_used_at: None,
        revoked_at: None,
        rotated_to: None,
        ..old.clone()
    };
    let grace_until = unix(now.saturating_add(grace));
    let audit = AuditRecord {
        at: unix(now),
        action: "key.rotate".into(),
        outcome: "ok".into(),
        actor: Some(actor.into()),
        key_id: Some(old_id.to_string()),
        tenant: Some(old.tenant.clone()),
        detail: Some(format!(
            "successor={key_id} old_key_expires_at={grace_until}"
        )),
        ..AuditRecord::default()
    };
    if !store
        .rotate_key(old_id.as_str(), grace_until, &rec, &audit)
        .await?
    {
        return Err(DomainError::Conflict(format!(
            "key {old_id} changed meanwhile; try again"
        )));
    }
    super::audit::log(&audit);
    Ok((KeyView::from_record(&rec, now), printable))
}

/// Parses repeated `--scope` values into a set.
pub fn scopes_from(values: &[String]) -> Result<ScopeSet, DomainError> {
    values
        .iter()
        .flat_map(|v| v.split_whitespace())
        .map(|s| Scope::new(s).map_err(|e| DomainError::Invalid(format!("scope {s:?}: {e}"))))
        .collect()
}
