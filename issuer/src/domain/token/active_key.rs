//! A key as the token endpoint holds it: the stored record parsed once into newtypes, with its
//! rate limiters, cached until the change feed says the key changed (the limiters outlive it).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ipnet::IpNet;
use keymint_jwks::{ApiKeyId, Audience, ScopeSet, TenantId};
use quick_cache::sync::Cache;

use crate::domain::keys::api_key::KeyKind;
use crate::domain::keys::limits::{KeyLimits, RateSetting};
use crate::domain::refusal::ClientRefusal;
use crate::domain::{DomainError, Fault};
use crate::store::KeyRecord;

/// A key as the token endpoint needs it, parsed once and cached.
#[derive(Debug)]
pub(super) struct ActiveKey {
    pub(super) record: KeyRecord,
    pub(super) key_id: ApiKeyId,
    pub(super) tenant: TenantId,
    pub(super) scopes: ScopeSet,
    pub(super) audiences: Vec<Audience>,
    pub(super) allow_ips: Vec<IpNet>,
    pub(super) allow_origins: Vec<String>,
    /// Shared with the token service's limiter cache, which outlives this entry.
    pub(super) limits: Arc<KeyLimits>,
    /// The last-used time last queued for the database: a key in constant use is written once a
    /// minute, not on every request.
    pub(super) last_used_queued: std::sync::atomic::AtomicI64,
}

/// Last-used times are kept to this precision in the database.
pub(super) const LAST_USED_PRECISION: i64 = 60;

impl ActiveKey {
    /// Parses `record`, with the limiters `limits` gives for it.
    pub(super) fn from_record(
        record: KeyRecord,
        limits: impl FnOnce(&KeyRecord) -> Arc<KeyLimits>,
    ) -> Result<Self, DomainError> {
        let corrupt = |what: &str| {
            DomainError::Internal(Fault::new(format!(
                "stored key {}: bad {what}",
                record.key_id
            )))
        };
        // A limit that does not parse must not mean "no limit": the key is refused instead.
        if RateSetting::of(record.rate_limit.as_deref()) == RateSetting::Unreadable {
            return Err(corrupt("rate_limit"));
        }
        Ok(Self {
            key_id: ApiKeyId::new(record.key_id.as_str()).map_err(|_| corrupt("key_id"))?,
            tenant: TenantId::new(record.tenant.as_str()).map_err(|_| corrupt("tenant"))?,
            scopes: ScopeSet::parse(&record.scopes).map_err(|_| corrupt("scopes"))?,
            audiences: record
                .audiences
                .split_whitespace()
                .map(Audience::new)
                .collect::<Result<_, _>>()
                .map_err(|_| corrupt("audiences"))?,
            allow_ips: record
                .allow_ips
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| corrupt("allow_ips"))?,
            last_used_queued: std::sync::atomic::AtomicI64::new(record.last_used_at.unwrap_or(0)),
            allow_origins: record
                .allow_origins
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            limits: limits(&record),
            record,
        })
    }

    /// Whether `ip` may use this key (no CIDRs: any).
    pub(super) fn admits(&self, ip: IpAddr) -> bool {
        self.allow_ips.is_empty() || self.allow_ips.iter().any(|n| n.contains(&ip))
    }

    /// The browser rules: a publishable key only from one of its origins, a secret key never from
    /// a browser origin it does not list. Returns the origin to answer CORS for.
    pub(super) fn browser_origin(
        &self,
        kind: KeyKind,
        origin: Option<&str>,
    ) -> Result<Option<String>, DomainError> {
        let origin = origin.map(|o| {
            crate::domain::keys::origin::Origin::parse(o)
                .map(|o| o.to_string())
                .unwrap_or_default()
        });
        let allowed = origin
            .as_deref()
            .is_some_and(|o| self.allow_origins.iter().any(|a| a == o));
        match (kind, origin) {
            (KeyKind::Publishable, None) => {
                Err(DomainError::UnauthorizedClient(ClientRefusal::NoOrigin))
            }
            (KeyKind::Publishable, Some(_)) if !allowed => {
                Err(DomainError::UnauthorizedClient(ClientRefusal::Origin))
            }
            (KeyKind::Secret, Some(_)) if !allowed => Err(DomainError::UnauthorizedClient(
                ClientRefusal::SecretKeyInBrowser,
            )),
            (_, origin) => Ok(origin.filter(|_| allowed)),
        }
    }

    /// Applies the key's own rate limit and, for publishable keys, its per-client one.
    pub(super) fn check_rate(&self, ip: &IpAddr) -> Result<(), DomainError> {
        match self.limits.check(ip) {
            Some(retry_after) => Err(DomainError::RateLimited { retry_after }),
            None => Ok(()),
        }
    }

    /// Whether `record` (a key as stored) is publishable, so limited per client IP too.
    pub(super) fn limited_per_client(record: &KeyRecord) -> bool {
        record.kind == KeyKind::Publishable.as_str()
    }

    /// Queues `t` as the key's last-used time if the one queued is older than the precision
    /// kept; true when the caller should record it.
    pub(super) fn note_use(&self, t: i64) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let queued = self.last_used_queued.load(Relaxed);
        t - queued >= LAST_USED_PRECISION
            && self
                .last_used_queued
                .compare_exchange(queued, t, Relaxed, Relaxed)
                .is_ok()
    }
}

/// The parsed keys the token endpoint holds, by key ID, dropped when the change feed names them.
///
/// A key read from the store while an invalidation for it goes by must not be cached: it may be
/// the row as it was before a revocation, and nothing would ever drop it. Every invalidation bumps
/// a generation; a key read is kept only if the generation it was read under still holds once it
/// is in the cache (checked after the insert, so an invalidation between check and insert cannot
/// slip through either).
#[derive(Debug)]
pub(super) struct KeyCache {
    keys: Cache<String, Arc<ActiveKey>>,
    generation: AtomicU64,
}

impl KeyCache {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            keys: Cache::new(capacity),
            generation: AtomicU64::new(0),
        }
    }

    pub(super) fn get(&self, key_id: &str) -> Option<Arc<ActiveKey>> {
        self.keys.get(key_id)
    }

    /// Call before reading a key from the store; hand the result to [`Self::insert`].
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Caches `key`, read under `generation`, unless an invalidation came since.
    pub(super) fn insert(&self, key: &Arc<ActiveKey>, generation: u64) {
        let id = key.record.key_id.clone();
        self.keys.insert(id, Arc::clone(key));
        if self.generation() != generation {
            self.keys.remove(key.record.key_id.as_str());
        }
    }

    pub(super) fn invalidate(&self, key_id: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.keys.remove(key_id);
    }

    pub(super) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.keys.clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(id: &str) -> Arc<ActiveKey> {
        let record = KeyRecord {
            key_id: id.into(),
            kind: "sk".into(),
            env: "live".into(),
            tenant: "acme".into(),
            secret_hash: vec![0; 32],
            scopes: "a".into(),
            audiences: "https://api.test".into(),
            default_ttl: 600,
            max_ttl: 600,
            expires_at: i64::MAX,
            allow_ips: String::new(),
            allow_origins: String::new(),
            rate_limit: None,
            label: None,
            owner: None,
            is_admin: false,
            created_at: 0,
            last_used_at: None,
            revoked_at: None,
            rotated_to: None,
        };
        Arc::new(
            ActiveKey::from_record(record, |_| {
                Arc::new(KeyLimits::new(
                    RateSetting::Unlimited,
                    false,
                    &crate::domain::clock::Ticker::manual().0,
                ))
            })
            .unwrap(),
        )
    }

    #[test]
    fn a_key_read_while_it_was_invalidated_is_not_cached() {
        let cache = KeyCache::new(16);
        let seen = cache.generation();
        // The revocation lands and the watcher invalidates while the row is being read.
        cache.invalidate("k1");
        cache.insert(&key("k1"), seen);
        assert!(cache.get("k1").is_none(), "a possibly stale row was cached");
        // Read again, with no invalidation in between: cached.
        let seen = cache.generation();
        cache.insert(&key("k1"), seen);
        assert!(cache.get("k1").is_some());
        cache.invalidate("k1");
        assert!(cache.get("k1").is_none());
        let seen = cache.generation();
        cache.clear();
        cache.insert(&key("k2"), seen);
        assert!(cache.get("k2").is_none(), "clear counts as an invalidation");
    }
}
