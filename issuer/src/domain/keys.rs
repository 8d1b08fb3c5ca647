//! API key administration: create, list, show, rotate. (Revocation is in `revocations`.)

use std::time::Duration;

use ipnet::IpNet;
use keymint_jwks::{ApiKeyId, Audience, Scope, ScopeSet, TenantId, UnixTime};
use ring::rand::SystemRandom;
use serde::Serialize;

use super::api_key::{self, KeyEnv, KeyKind, PrintableKey};
use super::key_hash::KeyHasher;
use super::limits::RateSpec;
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
/// Default grace period of the old key after a rotation.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// What a new key should be.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Tenant.
    pub tenant: TenantId,
    /// Scopes (at least one).
    pub scopes: ScopeSet,
    /// Audiences (at least one).
    pub audiences: Vec<Audience>,
    /// Default token lifetime.
    pub ttl: Duration,
    /// Maximum token lifetime.
    pub max_ttl: Duration,
    /// Key lifetime.
    pub expires_in: Duration,
    /// Label.
    pub label: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Allowed client networks (empty: any).
    pub allow_ips: Vec<IpNet>,
    /// Rate limit.
    pub rate_limit: Option<RateSpec>,
    /// Environment.
    pub env: KeyEnv,
}

/// A key as shown to admins: never a secret.
#[derive(Debug, Clone, Serialize)]
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

fn validate(new: &NewKey) -> Result<(), DomainError> {
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
    if new.ttl.is_zero() || new.ttl > new.max_ttl {
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
    Ok(())
}

fn record_for(new: &NewKey, key_id: &ApiKeyId, secret_hash: Vec<u8>, now: UnixTime) -> KeyRecord {
    KeyRecord {
        key_id: key_id.to_string(),
        kind: KeyKind::Secret.as_str().into(),
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
        default_ttl: secs(new.ttl),
        max_ttl: secs(new.max_ttl),
        expires_at: unix(now.saturating_add(new.expires_in)),
        allow_ips: new
            .allow_ips
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        allow_origins: String::new(),
        rate_limit: new.rate_limit.map(|r| r.to_string()),
        label: new.label.clone(),
        owner: new.owner.clone(),
        is_admin: false,
        created_at: unix(now),
        last_used_at: None,
        revoked_at: None,
        rotated_to: None,
    }
}

fn mint(hasher: &KeyHasher, env: KeyEnv) -> Result<(ApiKeyId, PrintableKey, Vec<u8>), DomainError> {
    let (key_id, printable) = api_key::generate(KeyKind::Secret, env, &SystemRandom::new())
        .map_err(|_| DomainError::Internal("random generator failed".into()))?;
    let parsed = api_key::parse(printable.expose())
        .map_err(|_| DomainError::Internal("generated key does not parse".into()))?;
    let hash = hasher.hash(key_id.as_str(), parsed.secret.expose());
    Ok((key_id, printable, hash))
}

/// Creates a secret key; the printable key is returned once and never stored.
pub async fn create<S: Store>(
    store: &S,
    hasher: &KeyHasher,
    new: &NewKey,
    now: UnixTime,
    actor: &str,
) -> Result<(KeyView, PrintableKey), DomainError> {
    validate(new)?;
    let (key_id, printable, hash) = mint(hasher, new.env)?;
    let rec = record_for(new, &key_id, hash, now);
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
    validate(template)?;
    let mut made = 0u64;
    while made < count {
        let batch = (count - made).min(10_000);
        let mut records = Vec::with_capacity(usize::try_from(batch).unwrap_or(0));
        for _ in 0..batch {
            let (key_id, printable, hash) = mint(hasher, template.env)?;
            each(made, &key_id, &printable);
            records.push(record_for(template, &key_id, hash, now));
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
    if let Some(to) = &old.rotated_to {
        return Err(DomainError::Conflict(format!(
            "key {old_id} was already rotated to {to}"
        )));
    }
    let env = KeyEnv::parse(&old.env).unwrap_or(KeyEnv::Live);
    let (key_id, printable, hash) = mint(hasher, env)?;
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
