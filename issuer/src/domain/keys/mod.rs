//! API key administration: create, list, show, rotate. What a new key may be is in
//! `key_policy`; revocation is in `revocations`.

pub mod api_key;
pub mod key_hash;
pub mod limits;
pub mod origin;
mod page;
mod policy;
mod view;
pub(crate) use self::policy::public_scope_names;

use std::time::Duration;

use keymint_jwks::{ApiKeyId, ScopeSet, UnixTime};
use ring::rand::SystemRandom;

use self::api_key::{KeyEnv, KeyKind, PrintableKey};
use self::key_hash::KeyHasher;
pub use self::page::{KEYS_PAGE, KeyCursor, KeysPage, page};
pub use self::policy::{
    DEFAULT_KEY_LIFETIME, DEFAULT_KEY_MAX_TTL, DEFAULT_ROTATION_GRACE, DEFAULT_TOKEN_TTL,
    MAX_KEY_LIFETIME, NewKey, PUBLISHABLE_DEFAULT_RATE, PUBLISHABLE_DEFAULT_TTL,
    PUBLISHABLE_MAX_TTL,
};
pub use self::view::KeyView;
use crate::domain::refusal::{ConflictReason, InvalidInput};
use crate::domain::unix;
use crate::domain::{DomainError, Fault};
use crate::store::{Applied, AuditRecord, KeyRecord, Store, Visibility};

/// A fresh key of `kind`: its ID, the printable key (shown once) and the hash to store.
pub(super) fn mint(
    hasher: &KeyHasher,
    kind: KeyKind,
    env: KeyEnv,
) -> Result<(ApiKeyId, PrintableKey, Vec<u8>), DomainError> {
    let (key_id, printable) = api_key::generate(kind, env, &SystemRandom::new())
        .map_err(|_| DomainError::Internal(Fault::new("random generator failed")))?;
    let parsed = api_key::parse(printable.expose())
        .map_err(|_| DomainError::Internal(Fault::new("generated key does not parse")))?;
    let hash = hasher.hash(key_id.as_str(), parsed.secret.expose());
    Ok((key_id, printable, hash))
}

/// Declares a scope, public (usable by publishable keys) or not.
pub async fn put_scope<S: Store>(
    store: &S,
    scope: &keymint_jwks::Scope,
    visibility: Visibility,
    now: UnixTime,
    actor: impl Into<crate::domain::audit::Actor<'_>>,
) -> Result<(), DomainError> {
    if scope.is_admin() && visibility.is_public() {
        return Err(DomainError::Invalid(InvalidInput::PublicAdminScope));
    }
    let audit = actor.into().stamp(AuditRecord {
        at: unix(now),
        action: "scope.put".into(),
        outcome: "ok".into(),
        scopes: Some(scope.to_string()),
        detail: Some(format!("public={}", visibility.is_public())),
        ..AuditRecord::default()
    });
    store.put_scope(scope, visibility, &audit).await?;
    crate::domain::audit::log(&audit);
    Ok(())
}

/// Creates a key; the printable key is returned once and never stored.
pub async fn create<S: Store>(
    store: &S,
    hasher: &KeyHasher,
    new: &NewKey,
    now: UnixTime,
    actor: impl Into<crate::domain::audit::Actor<'_>>,
) -> Result<(KeyView, PrintableKey), DomainError> {
    let resolved = policy::check(store, new).await?;
    let (key_id, printable, hash) = mint(hasher, new.kind, new.env)?;
    let rec = policy::record_for(new, &resolved, &key_id, hash, now);
    let audit = actor.into().stamp(AuditRecord {
        at: unix(now),
        action: "key.create".into(),
        outcome: "ok".into(),
        key_id: Some(key_id.to_string()),
        tenant: Some(new.tenant.to_string()),
        scopes: Some(rec.scopes.clone()),
        ..AuditRecord::default()
    });
    store.insert_key(&rec, &audit).await?;
    crate::domain::audit::log(&audit);
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
    actor: impl Into<crate::domain::audit::Actor<'_>>,
    mut each: impl FnMut(u64, &ApiKeyId, &PrintableKey),
) -> Result<(), DomainError> {
    let actor: crate::domain::audit::Actor<'_> = actor.into();
    let resolved = policy::check(store, template).await?;
    let mut made = 0u64;
    while made < count {
        let batch = (count - made).min(10_000);
        let mut records = Vec::with_capacity(usize::try_from(batch).unwrap_or(0));
        for _ in 0..batch {
            let (key_id, printable, hash) = mint(hasher, template.kind, template.env)?;
            each(made, &key_id, &printable);
            records.push(policy::record_for(template, &resolved, &key_id, hash, now));
            made += 1;
        }
        let audit = actor.stamp(AuditRecord {
            at: unix(now),
            action: "key.create_many".into(),
            outcome: "ok".into(),
            tenant: Some(template.tenant.to_string()),
            scopes: Some(template.scopes.to_string()),
            detail: Some(format!("count={batch}")),
            ..AuditRecord::default()
        });
        store.insert_keys(&records, &audit).await?;
        crate::domain::audit::log(&audit);
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
    actor: impl Into<crate::domain::audit::Actor<'_>>,
) -> Result<(KeyView, PrintableKey), DomainError> {
    let old = store.key(old_id).await?.ok_or_else(|| {
        DomainError::NotFound(crate::domain::refusal::Missing::Key(old_id.clone()))
    })?;
    if old.revoked_at.is_some() {
        return Err(DomainError::Conflict(ConflictReason::RotatingRevoked(
            old_id.clone(),
        )));
    }
    if old.is_admin {
        // Admin keys are made only by `keymint admin-keys create`, on the database itself.
        return Err(DomainError::Invalid(InvalidInput::RotatingAdminKey(
            old_id.clone(),
        )));
    }
    if let Some(to) = &old.rotated_to {
        return Err(DomainError::Conflict(ConflictReason::AlreadyRotated {
            key: old_id.clone(),
            to: to.clone(),
        }));
    }
    let env = KeyEnv::parse(&old.env).unwrap_or(KeyEnv::Live);
    let kind = KeyKind::parse(&old.kind).unwrap_or(KeyKind::Secret);
    if kind == KeyKind::Publishable {
        // Checked again, not inherited: a scope made non-public since the key was created must
        // not live on in its successor.
        let public: Vec<String> = policy::public_scope_names(store).await?;
        let old_scopes = ScopeSet::parse(&old.scopes).map_err(|e| {
            DomainError::Internal(Fault::because(format!("key {old_id}: stored scopes"), e))
        })?;
        if let Some(s) = old_scopes
            .iter()
            .find(|s| !public.iter().any(|p| p == s.as_str()))
        {
            return Err(DomainError::Invalid(InvalidInput::RotatingNoLongerPublic {
                key: old_id.clone(),
                scope: s.clone(),
            }));
        }
    }
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
    let audit = actor.into().stamp(AuditRecord {
        at: unix(now),
        action: "key.rotate".into(),
        outcome: "ok".into(),
        key_id: Some(old_id.to_string()),
        tenant: Some(old.tenant.clone()),
        detail: Some(format!(
            "successor={key_id} old_key_expires_at={grace_until}"
        )),
        ..AuditRecord::default()
    });
    if store.rotate_key(old_id, grace_until, &rec, &audit).await? == Applied::Unchanged {
        return Err(DomainError::Conflict(ConflictReason::KeyChanged(
            old_id.clone(),
        )));
    }
    crate::domain::audit::log(&audit);
    Ok((KeyView::from_record(&rec, now), printable))
}
