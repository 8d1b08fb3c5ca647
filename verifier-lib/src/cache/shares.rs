//! Each API key's share of the verified-token cache.
//!
//! The cache is shared by every key whose tokens a verifier sees. Without a bound, the holder of
//! one key presenting many valid tokens would evict everyone else's, and every other key's next
//! request would pay a fresh signature check. Each key (the token's `sub`) may therefore hold at
//! most a share of the budget in live tokens; past it, its further tokens are verified exactly as
//! before but not cached, so only that key pays.
//!
//! A cached token counts against its key until it leaves the cache (its entry holds a [`Share`]
//! whose drop releases it) or until it could no longer pass (`exp` plus the leeway; released from
//! a heap in due order, without scans), whichever comes first. A token released at its time is
//! handed back to the cache, which removes it (see [`CacheShares::admit`]): an expired token
//! neither holds its key's share nor lingers in the cache, where, no longer counted, a key that
//! mints short-lived tokens could otherwise fill the budget with them. A token pushed out stops
//! counting at once. The heap drops released tokens whenever it holds twice as many as are live,
//! so it stays in proportion to the cache.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use keymint_jwks::UnixTime;

/// The share of the verified-token cache's budget that one API key's live tokens may take, in
/// percent.
pub const DEFAULT_CACHE_SHARE_PERCENT: u64 = 10;

/// The least a key's share is, budget permitting: room for a token or two, so that a small cache
/// (where 10 % would not hold one entry) still caches.
const MIN_SHARE: u64 = 2_048;

/// Released tokens the due heap may carry beyond twice the live ones before it is compacted.
const HEAP_SLACK: usize = 1_024;

#[derive(Debug)]
pub(crate) struct CacheShares {
    state: Mutex<State>,
    share: u64,
}

#[derive(Debug, Default)]
struct State {
    /// Counted weight per key; a key with none has no entry.
    per_key: HashMap<Arc<str>, u64>,
    /// Tokens counted and not yet released: ticket → what it counts.
    live: HashMap<u64, Counted>,
    /// (until, ticket), soonest first; may still hold tickets released by eviction.
    due: BinaryHeap<Reverse<(u64, u64)>>,
    next_ticket: u64,
}

/// What [`CacheShares::admit`] answers.
pub(crate) struct Admission {
    /// The share, and the token as the cache's key (shared with the tracker); none when the key
    /// holds its whole share (the token is then not cached, and not copied).
    pub(crate) admitted: Option<(Share, Arc<str>)>,
    /// Tokens whose time passed while they were cached, for the cache to remove.
    pub(crate) due: Vec<Arc<str>>,
}

/// A token counted against its key.
#[derive(Debug)]
struct Counted {
    key: Arc<str>,
    weight: u64,
    /// The token itself (the cache's own key, shared), to remove it from the cache once due.
    token: Arc<str>,
}

/// A cached token's weight held against its key: dropped with the cache entry, it releases it.
pub(crate) struct Share {
    shares: Arc<CacheShares>,
    ticket: u64,
}

impl std::fmt::Debug for Share {
    // Only the ticket: the shared state names every key with tokens in the cache.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share")
            .field("ticket", &self.ticket)
            .finish()
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        // Never called with the state locked: the state holds no entries, so nothing drops one
        // while it is locked.
        let _token = self.shares.lock().release(self.ticket);
    }
}

impl CacheShares {
    /// Shares of a cache of `capacity` (bytes).
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            state: Mutex::new(State::default()),
            share: capacity
                .saturating_mul(DEFAULT_CACHE_SHARE_PERCENT)
                .div_ceil(100)
                .max(MIN_SHARE.min(capacity)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A share for `token` of `key` weighing `weight`, live until `until`, if the key's counted
    /// tokens leave room for it at `now`, with the token as the cache's key (shared with the
    /// tracker); none if not (the token is then not cached, and not copied). Besides, the tokens
    /// whose time passed by `now` while they were cached: the caller removes them from the cache
    /// (not here: the cache's locks come before this one).
    pub(crate) fn admit(
        self: &Arc<Self>,
        key: &str,
        token: &str,
        until: UnixTime,
        weight: u64,
        now: UnixTime,
    ) -> Admission {
        let mut state = self.lock();
        let due = state.release_due(now);
        let held = state.per_key.get(key).copied().unwrap_or(0);
        if held.saturating_add(weight) > self.share {
            return Admission {
                admitted: None,
                due,
            };
        }
        let name = match state.per_key.get_key_value(key) {
            Some((name, _)) => Arc::clone(name),
            None => Arc::from(key),
        };
        state.per_key.insert(Arc::clone(&name), held + weight);
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        let token: Arc<str> = Arc::from(token);
        state.live.insert(
            ticket,
            Counted {
                key: name,
                weight,
                token: Arc::clone(&token),
            },
        );
        state.due.push(Reverse((until.0, ticket)));
        if state.due.len() > state.live.len().saturating_mul(2) + HEAP_SLACK {
            let State { due, live, .. } = &mut *state;
            due.retain(|Reverse((_, t))| live.contains_key(t));
        }
        let share = Share {
            shares: Arc::clone(self),
            ticket,
        };
        Admission {
            admitted: Some((share, token)),
            due,
        }
    }

    /// The weight counted against `key`.
    #[cfg(test)]
    pub(crate) fn held(&self, key: &str) -> u64 {
        self.lock().per_key.get(key).copied().unwrap_or(0)
    }

    /// The most one key may hold.
    #[cfg(test)]
    pub(crate) fn share(&self) -> u64 {
        self.share
    }
}

impl State {
    /// Stops counting `ticket`, if it still counts; its token if it did.
    fn release(&mut self, ticket: u64) -> Option<Arc<str>> {
        let Counted { key, weight, token } = self.live.remove(&ticket)?;
        if let Some(held) = self.per_key.get_mut(&*key) {
            *held = held.saturating_sub(weight);
            if *held == 0 {
                self.per_key.remove(&*key);
            }
        }
        Some(token)
    }

    /// Releases every token whose time has passed; those that were still counted.
    fn release_due(&mut self, now: UnixTime) -> Vec<Arc<str>> {
        let mut due = Vec::new();
        while let Some(&Reverse((until, ticket))) = self.due.peek() {
            if until > now.0 {
                break;
            }
            self.due.pop();
            due.extend(self.release(ticket));
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = UnixTime(1_700_000_000);

    fn shares(capacity: u64) -> Arc<CacheShares> {
        Arc::new(CacheShares::new(capacity))
    }

    impl CacheShares {
        /// [`CacheShares::admit`] of a token named after its key, without the due tokens.
        fn admit_for(
            self: &Arc<Self>,
            key: &str,
            until: UnixTime,
            weight: u64,
            now: UnixTime,
        ) -> Option<Share> {
            self.admit(key, key, until, weight, now)
                .admitted
                .map(|(share, _)| share)
        }
    }

    /// Tokens released at their time are handed back, once, for the cache to remove; a token
    /// released earlier (it left the cache) is not.
    #[test]
    fn tokens_past_their_time_are_handed_back_to_be_removed() {
        let shares = shares(100_000);
        let soon = UnixTime(NOW.0 + 60);
        let a = shares.admit("k", "token-a", soon, 100, NOW);
        assert!(a.due.is_empty());
        drop(shares.admit("k", "token-b", soon, 100, NOW).admitted);
        let later = UnixTime(NOW.0 + 600);
        let c = shares.admit("k", "token-c", later, 100, UnixTime(soon.0 - 1));
        assert!(c.due.is_empty(), "not yet due");
        let d = shares.admit("other", "token-d", later, 100, soon);
        assert_eq!(d.due, [Arc::<str>::from("token-a")]);
        let e = shares.admit("other", "token-e", later, 100, soon);
        assert!(e.due.is_empty(), "handed back once");
    }

    #[test]
    fn a_small_cache_still_gives_each_key_room_for_a_token() {
        assert_eq!(shares(100).share(), 100);
        assert_eq!(shares(8_192).share(), MIN_SHARE);
        assert_eq!(shares(16 * 1024 * 1024).share(), 1_677_722);
    }

    /// A token refused its place still collects the tokens that fell due, for the cache to remove:
    /// a key over its share does not keep dead tokens cached.
    #[test]
    fn a_refused_token_still_hands_back_the_tokens_that_fell_due() {
        let shares = shares(100_000);
        let soon = UnixTime(NOW.0 + 60);
        let later = UnixTime(NOW.0 + 600);
        let _dies = shares.admit("k", "short", soon, 100, NOW);
        let _fills = shares.admit("k", "long", later, 9_900, NOW);
        let refused = shares.admit("k", "another", later, 9_900, soon);
        assert!(
            refused.admitted.is_none(),
            "the long one still fills the share"
        );
        assert_eq!(refused.due, [Arc::<str>::from("short")]);
    }

    #[test]
    fn one_key_is_refused_past_its_share_while_another_is_admitted() {
        let shares = shares(100_000);
        assert_eq!(shares.share(), 10_000);
        let until = UnixTime(NOW.0 + 600);
        let held: Vec<Share> = (0..10)
            .map(|_| shares.admit_for("a", until, 1_000, NOW).unwrap())
            .collect();
        assert_eq!(shares.held("a"), 10_000);
        assert!(shares.admit_for("a", until, 1, NOW).is_none());
        let _b = shares.admit_for("b", until, 1_000, NOW).unwrap();
        assert_eq!(shares.held("b"), 1_000);
        drop(held);
    }

    #[test]
    fn a_key_gets_its_share_back_at_the_instant_its_tokens_are_due() {
        let shares = shares(100_000);
        let until = UnixTime(NOW.0 + 600);
        let _cached = shares.admit_for("a", until, 10_000, NOW).unwrap();
        let later = UnixTime(until.0 + 600);
        assert!(
            shares
                .admit_for("a", later, 1, UnixTime(until.0 - 1))
                .is_none()
        );
        let _next = shares.admit_for("a", later, 10_000, until).unwrap();
        assert_eq!(shares.held("a"), 10_000);
    }

    /// An entry evicted from the cache drops its share: the key may cache another token at once,
    /// and the release at the token's time later changes nothing.
    #[test]
    fn a_token_leaving_the_cache_releases_its_share_at_once_and_only_once() {
        let shares = shares(100_000);
        let until = UnixTime(NOW.0 + 600);
        let first = shares.admit_for("a", until, 10_000, NOW).unwrap();
        assert!(shares.admit_for("a", until, 10_000, NOW).is_none());
        drop(first);
        assert_eq!(shares.held("a"), 0);
        let _second = shares
            .admit_for("a", UnixTime(until.0 + 1), 10_000, NOW)
            .unwrap();
        // The first token's time passes: the second still counts.
        assert!(shares.admit_for("b", until, 1, until).is_some());
        assert_eq!(shares.held("a"), 10_000);
    }

    /// Tokens admitted and evicted by the thousand, far from due: the heap is compacted, so the
    /// tracker holds only what the cache holds, whatever the churn.
    #[test]
    fn the_due_heap_stays_in_proportion_to_the_live_tokens() {
        let shares = shares(10_000_000);
        let until = UnixTime(NOW.0 + 600);
        for n in 0..20_000 {
            drop(
                shares
                    .admit_for(&format!("k{}", n % 50), until, 100, NOW)
                    .unwrap(),
            );
        }
        let kept: Vec<Share> = (0..10)
            .map(|n| shares.admit_for(&format!("k{n}"), until, 100, NOW).unwrap())
            .collect();
        let state = shares.lock();
        assert_eq!((state.live.len(), state.per_key.len()), (10, 10));
        assert!(
            state.due.len() <= 2 * 10 + HEAP_SLACK + 1,
            "{}",
            state.due.len()
        );
        drop(state);
        drop(kept);
        let state = shares.lock();
        assert_eq!((state.live.len(), state.per_key.len()), (0, 0));
    }
}
