//! A key as the token endpoint holds it: the stored record parsed once into newtypes, with its
//! rate limiters, cached until the change feed says the key changed (the limiters outlive it).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ipnet::IpNet;
use keymint_jwks::{ApiKeyId, Audience, ScopeSet, TenantId};
use quick_cache::sync::Cache;

use super::grant_text::GrantText;
use crate::domain::keys::api_key::{KEY_ID_LEN, KeyEnv, KeyKind};
use crate::domain::keys::limits::{KeyLimits, RateSetting, RateSpec};
use crate::domain::refusal::ClientRefusal;
use crate::domain::{DomainError, Fault};
use crate::store::KeyRecord;

/// A key as the token endpoint needs it, parsed once and cached: only what a request reads, not
/// the stored record (its label, owner and the rest stay in the database).
///
/// With load spread over 10,000 keys each cache line of a key a request touches is a cache miss
/// (`perf` showed those misses as a few per cent of the token endpoint's CPU): what every request
/// reads is held inline (the secret's hash, kind, environment, state, lifetimes, and the tenant,
/// audiences and scopes a token copies) and first, in declaration order (`repr(C)`), so that it
/// spans a few adjacent lines of one block rather than being spread through blocks of strings; a
/// key without a rate limit has no limiter to read.
#[derive(Debug)]
#[repr(C)]
pub(super) struct ActiveKey {
    /// The stored HMAC-SHA256 of the secret.
    pub(super) secret_hash: [u8; 32],
    pub(super) expires_at: i64,
    pub(super) default_ttl: i64,
    pub(super) max_ttl: i64,
    /// The last-used time last queued for the database: a key in constant use is written once
    /// per [`LAST_USED_PRECISION`], not on every request.
    pub(super) last_used_queued: std::sync::atomic::AtomicI64,
    /// Shared with the token service's limiter cache, which outlives this entry; none for a key
    /// without a rate limit (nothing to count, nothing to read per request).
    pub(super) limits: Option<Arc<KeyLimits>>,
    /// Read by every request (if only to find it empty).
    pub(super) allow_ips: Vec<IpNet>,
    pub(super) kind: KeyKind,
    pub(super) env: KeyEnv,
    pub(super) revoked: bool,
    pub(super) is_admin: bool,
    /// The tenant, audiences and scopes, inline.
    pub(super) grant: GrantText,
    // Not read by a request that is granted from a server (see `exchange_inner`).
    pub(super) key_id: ApiKeyId,
    pub(super) allow_origins: Vec<String>,
}

/// Last-used times are kept to this precision in the database: a key's first use is written at
/// once, then at most once an hour. Each write is a random row of the key table; with 10,000 keys
/// in use a minute's precision meant 10,000 updates a minute (about 0.1 s of SQLite's CPU each
/// time, measured under load with 1,000,000 keys stored), and a million keys in use would need
/// 17,000 a second. When exactly a key was used, from where, is in its usage rollups
/// (`keys usage`, to the second), so the key's own field only needs to say "in use lately".
pub(super) const LAST_USED_PRECISION: i64 = 3600;

impl ActiveKey {
    /// Parses `record`, with the limiters `limits` gives for it.
    pub(super) fn from_record(
        record: KeyRecord,
        limits: impl FnOnce(&KeyRecord, RateSpec) -> Arc<KeyLimits>,
    ) -> Result<Self, DomainError> {
        let corrupt = |what: &str| {
            DomainError::Internal(Fault::new(format!(
                "stored key {}: bad {what}",
                record.key_id
            )))
        };
        // A limit that does not parse must not mean "no limit": the key is refused instead.
        let rate = match RateSetting::of(record.rate_limit.as_deref()) {
            RateSetting::Unreadable => return Err(corrupt("rate_limit")),
            RateSetting::Unlimited => None,
            RateSetting::Limit(spec) => Some(spec),
        };
        Ok(Self {
            secret_hash: record
                .secret_hash
                .as_slice()
                .try_into()
                .map_err(|_| corrupt("secret_hash"))?,
            kind: KeyKind::parse(&record.kind).ok_or_else(|| corrupt("kind"))?,
            env: KeyEnv::parse(&record.env).ok_or_else(|| corrupt("env"))?,
            key_id: ApiKeyId::new(record.key_id.as_str()).map_err(|_| corrupt("key_id"))?,
            grant: GrantText::new(
                &TenantId::new(record.tenant.as_str()).map_err(|_| corrupt("tenant"))?,
                &record
                    .audiences
                    .split_whitespace()
                    .map(Audience::new)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| corrupt("audiences"))?,
                &ScopeSet::parse(&record.scopes).map_err(|_| corrupt("scopes"))?,
            ),
            // Canonical, as client addresses are (a mapped rule stored before they were).
            allow_ips: record
                .allow_ips
                .split_whitespace()
                .map(|n| n.parse().map(crate::domain::client::canonical_net))
                .collect::<Result<_, ipnet::AddrParseError>>()
                .map_err(|_| corrupt("allow_ips"))?,
            last_used_queued: std::sync::atomic::AtomicI64::new(record.last_used_at.unwrap_or(0)),
            allow_origins: record
                .allow_origins
                .split_whitespace()
                .map(crate::domain::keys::origin::Origin::canonical)
                .collect(),
            limits: rate.map(|spec| limits(&record, spec)),
            expires_at: record.expires_at,
            default_ttl: record.default_ttl,
            max_ttl: record.max_ttl,
            revoked: record.revoked_at.is_some(),
            is_admin: record.is_admin,
        })
    }

    /// Reads the key's lines a granted token copies (its tenant, audiences and scopes, inline)
    /// before the secret's HMAC: with load spread over many keys each is a cache miss, and read
    /// here the CPU waits for them while the HMAC runs rather than in the grant. (The key ID is
    /// not read: the token takes the one the client presented.)
    pub(super) fn warm(&self) {
        std::hint::black_box(self.grant.warm());
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
        match self.limits.as_ref().and_then(|l| l.check(ip)) {
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
    keys: Cache<CachedId, Arc<ActiveKey>>,
    generation: AtomicU64,
}

/// A key ID as the cache's key: the ID's bytes inline, so that comparing it in a probe reads no
/// heap block of its own (a `String` key cost a cache miss per request under load spread over
/// many keys). Every key ID the issuer makes is [`KEY_ID_LEN`] characters; an ID of another
/// length (none exist) is simply not cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct CachedId([u8; KEY_ID_LEN]);

impl CachedId {
    fn of(key_id: &str) -> Option<Self> {
        key_id.as_bytes().try_into().ok().map(Self)
    }
}

impl KeyCache {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            keys: Cache::new(capacity),
            generation: AtomicU64::new(0),
        }
    }

    pub(super) fn get(&self, key_id: &str) -> Option<Arc<ActiveKey>> {
        self.keys.get(&CachedId::of(key_id)?)
    }

    /// Call before reading a key from the store; hand the result to [`Self::insert`].
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Caches `key`, read under `generation`, unless an invalidation came since.
    pub(super) fn insert(&self, key: &Arc<ActiveKey>, generation: u64) {
        let Some(id) = CachedId::of(key.key_id.as_str()) else {
            return;
        };
        self.keys.insert(id, Arc::clone(key));
        if self.generation() != generation {
            self.keys.remove(&id);
        }
    }

    pub(super) fn invalidate(&self, key_id: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(id) = CachedId::of(key_id) {
            self.keys.remove(&id);
        }
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
        Arc::new(parse(record(id)).unwrap())
    }

    fn parse(record: KeyRecord) -> Result<ActiveKey, DomainError> {
        ActiveKey::from_record(record, |_, spec| {
            Arc::new(KeyLimits::new(
                RateSetting::Limit(spec),
                false,
                &crate::domain::clock::Ticker::manual().0,
            ))
        })
    }

    fn record(id: &str) -> KeyRecord {
        KeyRecord {
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
        }
    }

    #[test]
    fn a_stored_key_whose_hash_kind_or_environment_does_not_parse_is_refused_as_corrupt() {
        let mut short_hash = record(K1);
        short_hash.secret_hash = vec![0; 31];
        let mut kind = record(K1);
        kind.kind = "xk".into();
        let mut env = record(K1);
        env.env = "prod".into();
        for (what, r) in [("secret_hash", short_hash), ("kind", kind), ("env", env)] {
            match parse(r) {
                Err(DomainError::Internal(f)) => {
                    assert!(f.to_string().contains(what), "{what}: {f}");
                }
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_use_is_queued_for_the_database_at_first_and_then_once_an_hour() {
        let k = key(K1);
        let t = 1_800_000_000;
        assert!(k.note_use(t), "the first use after the key was read");
        assert!(!k.note_use(t + 1));
        assert!(!k.note_use(t + LAST_USED_PRECISION - 1));
        assert!(k.note_use(t + LAST_USED_PRECISION));
        assert!(!k.note_use(t + LAST_USED_PRECISION + 1));
    }

    #[test]
    fn only_a_key_with_a_rate_limit_holds_limiters() {
        assert!(
            key(K1).limits.is_none(),
            "an unlimited key has nothing to count"
        );
        let mut limited = record(K1);
        limited.rate_limit = Some("5/s".into());
        let k = parse(limited).unwrap();
        assert!(k.limits.is_some());
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        for _ in 0..5 {
            k.check_rate(&ip).unwrap();
        }
        assert!(matches!(
            k.check_rate(&ip),
            Err(DomainError::RateLimited { .. })
        ));
    }

    #[test]
    fn an_origin_stored_with_its_default_port_matches_what_browsers_send() {
        // As keys made before origins were stored without default ports hold it.
        let mut r = record(K1);
        r.kind = "pk".into();
        r.allow_origins = "https://app.example:443 http://localhost:8080".into();
        let k = parse(r).unwrap();
        for origin in ["https://app.example", "http://localhost:8080"] {
            assert_eq!(
                k.browser_origin(KeyKind::Publishable, Some(origin))
                    .unwrap(),
                Some(origin.to_owned())
            );
        }
        assert!(
            k.browser_origin(KeyKind::Publishable, Some("http://localhost"))
                .is_err()
        );
    }

    const K1: &str = "k1AAAAAAAAAAAAAA";
    const K2: &str = "k2AAAAAAAAAAAAAA";

    #[test]
    fn a_key_read_while_it_was_invalidated_is_not_cached() {
        let cache = KeyCache::new(16);
        let seen = cache.generation();
        // The revocation lands and the watcher invalidates while the row is being read.
        cache.invalidate(K1);
        cache.insert(&key(K1), seen);
        assert!(cache.get(K1).is_none(), "a possibly stale row was cached");
        // Read again, with no invalidation in between: cached.
        let seen = cache.generation();
        cache.insert(&key(K1), seen);
        assert!(cache.get(K1).is_some());
        cache.invalidate(K1);
        assert!(cache.get(K1).is_none());
        let seen = cache.generation();
        cache.clear();
        cache.insert(&key(K2), seen);
        assert!(cache.get(K2).is_none(), "clear counts as an invalidation");
    }
}
