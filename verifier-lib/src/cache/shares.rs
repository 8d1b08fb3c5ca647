//! Each API key's share of the verified-token cache.
//!
//! The cache is shared by every key whose tokens a verifier sees. Without a bound, the holder of
//! one key presenting many valid tokens would evict everyone else's, and every other key's next
//! request would pay a fresh signature check. Each key (the token's `sub`) may therefore hold at
//! most a share of the budget in live tokens; past it, its further tokens are verified exactly as
//! before but not cached, so only that key pays.
//!
//! A token counts against its key until it could no longer pass (`exp` plus the leeway), whether
//! or not the cache still holds it: the weight is released from a heap in due order, without
//! scans. That is conservative (an evicted token still counts until then) and needs no hook into
//! the cache's eviction. The tracker itself is bounded: it counts at most twice the cache's budget,
//! past which nothing new is cached until tokens expire.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use keymint_jwks::UnixTime;

/// The share of the verified-token cache's budget that one API key's live tokens may take, in
/// percent.
pub const DEFAULT_CACHE_SHARE_PERCENT: u64 = 10;

/// Why a verified token was not cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotCached {
    /// The key's live tokens already fill its share.
    KeyShare,
    /// The tracker counts as much as it may (twice the budget) in live tokens.
    Tracker,
}

#[derive(Debug)]
pub(crate) struct CacheShares {
    state: Mutex<State>,
    share: u64,
    tracked_max: u64,
}

#[derive(Debug, Default)]
struct State {
    /// Live weight per key; a key with none has no entry.
    per_key: HashMap<Arc<str>, u64>,
    /// (until, weight, key), soonest first.
    due: BinaryHeap<Reverse<(u64, u64, Arc<str>)>>,
    total: u64,
}

impl CacheShares {
    /// Shares of a cache of `capacity` (bytes).
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            state: Mutex::new(State::default()),
            share: capacity
                .saturating_mul(DEFAULT_CACHE_SHARE_PERCENT)
                .div_ceil(100)
                .max(1),
            tracked_max: capacity.saturating_mul(2),
        }
    }

    /// Whether a token of `key` weighing `weight`, live until `until`, may be cached at `now`;
    /// if so, it is counted against the key until then.
    pub(crate) fn admit(
        &self,
        key: &str,
        until: UnixTime,
        weight: u64,
        now: UnixTime,
    ) -> Result<(), NotCached> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.release_due(now);
        if state.total.saturating_add(weight) > self.tracked_max {
            return Err(NotCached::Tracker);
        }
        let held = state.per_key.get(key).copied().unwrap_or(0);
        if held.saturating_add(weight) > self.share {
            return Err(NotCached::KeyShare);
        }
        let name = match state.per_key.get_key_value(key) {
            Some((name, _)) => Arc::clone(name),
            None => Arc::from(key),
        };
        state.per_key.insert(Arc::clone(&name), held + weight);
        state.due.push(Reverse((until.0, weight, name)));
        state.total += weight;
        Ok(())
    }

    /// The live weight counted against `key`.
    #[cfg(test)]
    pub(crate) fn held(&self, key: &str) -> u64 {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.per_key.get(key).copied().unwrap_or(0)
    }

    /// The most one key may hold.
    #[cfg(test)]
    pub(crate) fn share(&self) -> u64 {
        self.share
    }
}

impl State {
    /// Releases every token whose time has passed.
    fn release_due(&mut self, now: UnixTime) {
        while let Some(Reverse((until, weight, _))) = self.due.peek() {
            if *until > now.0 {
                break;
            }
            let weight = *weight;
            let Some(Reverse((_, _, key))) = self.due.pop() else {
                break;
            };
            self.total = self.total.saturating_sub(weight);
            if let Some(held) = self.per_key.get_mut(&*key) {
                *held = held.saturating_sub(weight);
                if *held == 0 {
                    self.per_key.remove(&*key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = UnixTime(1_700_000_000);

    #[test]
    fn one_key_is_refused_past_its_share_while_another_is_admitted() {
        let shares = CacheShares::new(10_000);
        assert_eq!(shares.share(), 1_000);
        let until = UnixTime(NOW.0 + 600);
        for _ in 0..10 {
            shares.admit("a", until, 100, NOW).unwrap();
        }
        assert_eq!(shares.held("a"), 1_000);
        assert_eq!(shares.admit("a", until, 1, NOW), Err(NotCached::KeyShare));
        shares.admit("b", until, 100, NOW).unwrap();
        assert_eq!(shares.held("b"), 100);
    }

    #[test]
    fn a_key_gets_its_share_back_at_the_instant_its_tokens_expire() {
        let shares = CacheShares::new(10_000);
        let until = UnixTime(NOW.0 + 600);
        shares.admit("a", until, 1_000, NOW).unwrap();
        let just_before = UnixTime(until.0 - 1);
        assert_eq!(
            shares.admit("a", UnixTime(until.0 + 600), 1, just_before),
            Err(NotCached::KeyShare)
        );
        shares
            .admit("a", UnixTime(until.0 + 600), 1_000, until)
            .unwrap();
        assert_eq!(shares.held("a"), 1_000);
    }

    #[test]
    fn the_tracker_counts_at_most_twice_the_budget() {
        let shares = CacheShares::new(10_000);
        let until = UnixTime(NOW.0 + 600);
        // Twenty keys at their share fill the tracker's 20,000.
        for k in 0..20 {
            shares.admit(&format!("k{k}"), until, 1_000, NOW).unwrap();
        }
        assert_eq!(
            shares.admit("fresh", until, 1, NOW),
            Err(NotCached::Tracker)
        );
        // Once they expire, the state they held is gone too.
        shares
            .admit("fresh", UnixTime(until.0 + 1), 1, until)
            .unwrap();
        let state = shares.state.lock().unwrap();
        assert_eq!(
            (state.per_key.len(), state.due.len(), state.total),
            (1, 1, 1)
        );
    }
}
