//! The verified-token cache: a token seen before skips parsing and the signature check.
//!
//! Keyed by the whole token string (never a short hash, so two tokens can never share an entry).
//! Bounded by bytes, not entries, so that large tokens cannot blow the budget. Expiry, revocation
//! and the key's continued presence are checked by the verifier on every hit; entries whose key
//! left the key set are purged when the set is replaced. Each API key may hold only its share of
//! the budget ([`shares`]), so no key's tokens can flush another's.

mod shares;
pub use self::shares::DEFAULT_CACHE_SHARE_PERCENT;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use keymint_jwks::{PublicKey, UnixTime};
use quick_cache::Weighter;
use quick_cache::sync::Cache;

use self::shares::{CacheShares, Share};
use crate::VerifiedToken;

/// Bookkeeping charged per entry on top of the token's own length: the claims, the `Arc`s and the
/// table slot. Measured sizes of a typical entry are within this.
pub(crate) const ENTRY_OVERHEAD: u64 = 512;

#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) token: VerifiedToken,
    /// The exact key that verified the signature; a hit is honoured only while the key set still
    /// maps the `kid` to this key.
    pub(crate) key: Arc<PublicKey>,
    /// The generation of the revocation list this token was last found unrevoked in (0: none).
    /// While that list is in force, a hit skips the revocation lookups: the answer cannot have
    /// changed, since it depends only on the token and the list. With a list of a million entries
    /// those four lookups (hashing and cache misses in a large index) were a third of a hit's
    /// cost (issue #14).
    pub(crate) unrevoked_in: AtomicU64,
    /// This token's weight held against its key while it is cached (set on insertion).
    pub(crate) share: Option<Share>,
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<Arc<str>, Arc<Entry>> for ByBytes {
    fn weight(&self, key: &Arc<str>, _: &Arc<Entry>) -> u64 {
        key.len() as u64 + ENTRY_OVERHEAD
    }
}

/// Token → entry, weighed in bytes. The token is shared with the share tracker, which hands it
/// back when the token's time has passed, for removal.
type Entries = Cache<Arc<str>, Arc<Entry>, ByBytes>;

pub(crate) struct TokenCache {
    inner: Option<(Entries, Arc<CacheShares>)>,
}

impl TokenCache {
    pub(crate) fn new(capacity_bytes: u64) -> Self {
        let inner = (capacity_bytes > 0).then(|| {
            let estimated = (capacity_bytes / (ENTRY_OVERHEAD + 512)).max(16) as usize;
            (
                Cache::with_weighter(estimated, capacity_bytes, ByBytes),
                Arc::new(CacheShares::new(capacity_bytes)),
            )
        });
        Self { inner }
    }

    pub(crate) fn get(&self, token: &str) -> Option<Arc<Entry>> {
        self.inner.as_ref()?.0.get(token)
    }

    /// Caches `entry` for `token` unless its key (`sub`) already holds its share of the budget in
    /// tokens live until after `now`; the entry counts against the key until `until` (the token's
    /// `exp` plus the leeway), and leaves the cache at the first insertion after that.
    pub(crate) fn insert(&self, token: &str, mut entry: Entry, until: UnixTime, now: UnixTime) {
        let Some((cache, shares)) = &self.inner else {
            return;
        };
        let key = entry.token.claims().sub.as_str();
        let weight = token.len() as u64 + ENTRY_OVERHEAD;
        // A token in its last second is not cached: another thread's insertion could hand it
        // back for removal before this one has put it in the cache, and it would stay there,
        // counted against no key.
        if until.0 <= now.0.saturating_add(1) {
            return;
        }
        let self::shares::Admission { admitted, due } =
            shares.admit(key, token, until, weight, now);
        // Tokens that can no longer pass leave the cache, an insertion at a time (no scans): no
        // longer counted against their keys, they would otherwise hold the budget until evicted.
        for expired in due {
            cache.remove(&*expired);
        }
        let Some((share, text)) = admitted else {
            crate::telemetry::cache_share_full();
            return;
        };
        entry.share = Some(share);
        cache.insert(text, Arc::new(entry));
    }

    /// Whether `token` is cached, without counting as a use.
    #[cfg(test)]
    pub(crate) fn contains(&self, token: &str) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|(cache, _)| cache.contains_key(token))
    }

    pub(crate) fn remove(&self, token: &str) {
        if let Some((cache, _)) = &self.inner {
            cache.remove(token);
        }
    }

    pub(crate) fn retain(&self, keep: impl Fn(&Entry) -> bool) {
        if let Some((cache, _)) = &self.inner {
            cache.retain(|_, e| keep(e));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |(cache, _)| cache.len())
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.len())
            .finish()
    }
}
