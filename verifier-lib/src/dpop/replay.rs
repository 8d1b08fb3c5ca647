//! The bounded replay cache of DPoP proof IDs.
//!
//! A proof ID must be remembered for as long as the proof could be accepted, so a holder who sends
//! proofs as fast as it can fills memory with live entries. The cache is therefore bounded three
//! ways: in total, per *holder* (the API key: the token's `sub` at a verifier, the presented key at
//! the issuer) and per DPoP key (`jkt`). Each holder may hold at most a share of the capacity (1 %
//! by default) and each `jkt` half of that, so one flooder is refused
//! ([`ProofError::OverQuota`]) while everyone else goes on: rotating `jkt` on every proof does not
//! help, the per-holder share still binds, and one DPoP key (one browser) flooding proofs under a
//! key that many browsers use takes half of that key's share, not all of it.
//! Entries expire from a time-ordered heap, a few at a time as they fall due: no scans, and the
//! lock is only ever held for a handful of `O(log n)` steps.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};

use keymint_jwks::UnixTime;
use keymint_jwks::dpop::DpopProof;

use super::error::ProofError;

/// Default replay-cache capacity (proof IDs remembered until their window closes).
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;
/// The share of the capacity one holder (API key) may occupy, in percent.
pub const DEFAULT_REPLAY_SHARE_PERCENT: usize = 1;
/// One DPoP key may occupy this fraction (1/n) of a holder's share. Below the holder's share, so
/// that one browser flooding proofs under a publishable key (which anyone may hold) leaves the
/// key's other browsers half of its share; at 100,000 proof IDs that is 500 live proofs per DPoP
/// key, about 7.5 requests a second to one API server over the whole 66 s window (a backend
/// client sending more with one DPoP key needs a larger capacity).
pub const DEFAULT_JKT_SHARE_DIVISOR: usize = 2;

/// Until when a proof's ID must be remembered: as long as the proof could still be accepted.
/// A proof passes while `|iat - now| <= window_secs`, so one dated ahead of the clock (a client
/// whose clock runs fast) stays acceptable until `iat + window_secs`, not `now + window_secs`.
/// Every replay store (this crate's [`ReplayCache`], the issuer's shared table) keeps the ID until
/// this instant.
pub fn replay_until(iat: UnixTime, now: UnixTime, window_secs: u64) -> UnixTime {
    UnixTime(
        now.0
            .max(iat.0)
            .saturating_add(window_secs)
            .saturating_add(1),
    )
}

/// How the replay cache is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayLimits {
    /// Live proof IDs in total.
    pub capacity: usize,
    /// Live proof IDs of one holder (API key).
    pub per_holder: usize,
    /// Live proof IDs made with one DPoP key.
    pub per_jkt: usize,
}

impl ReplayLimits {
    /// `capacity` in total, [`DEFAULT_REPLAY_SHARE_PERCENT`] of it (at least one) per holder and
    /// a [`DEFAULT_JKT_SHARE_DIVISOR`]th of that (at least one) per DPoP key.
    pub fn with_capacity(capacity: usize) -> Self {
        let share = capacity
            .saturating_mul(DEFAULT_REPLAY_SHARE_PERCENT)
            .div_ceil(100)
            .max(1);
        Self {
            capacity,
            per_holder: share,
            per_jkt: share.div_ceil(DEFAULT_JKT_SHARE_DIVISOR),
        }
    }
}

/// Proof IDs seen and still inside their window. Bounded in total, per holder and per DPoP key:
/// when a bound is reached, new proofs are refused (a forgotten live ID would allow a replay).
#[derive(Debug)]
pub struct ReplayCache {
    state: Mutex<ReplayState>,
    limits: ReplayLimits,
}

#[derive(Debug, Default)]
struct ReplayState {
    /// SHA-256 of `jkt:jti` → the entry.
    seen: HashMap<[u8; 32], Entry>,
    /// (until, id), soonest first: what falls due next, without a scan.
    due: BinaryHeap<Reverse<(u64, [u8; 32])>>,
    per_holder: HashMap<Arc<str>, usize>,
    per_jkt: HashMap<Arc<str>, usize>,
}

#[derive(Debug)]
struct Entry {
    until: u64,
    holder: Arc<str>,
    jkt: Arc<str>,
}

impl ReplayState {
    /// Drops every entry whose time has come: each entry is popped once, so the cost is paid by
    /// the insert that made it, never as a scan.
    fn expire(&mut self, now: u64) {
        while let Some(Reverse((until, id))) = self.due.peek().copied() {
            if until > now {
                break;
            }
            self.due.pop();
            if self.seen.get(&id).is_some_and(|e| e.until == until)
                && let Some(e) = self.seen.remove(&id)
            {
                release(&mut self.per_holder, &e.holder);
                release(&mut self.per_jkt, &e.jkt);
            }
        }
    }

    fn retry_after(&self, now: u64) -> u64 {
        self.due
            .peek()
            .map_or(1, |Reverse((until, _))| until.saturating_sub(now).max(1))
    }
}

fn release(counts: &mut HashMap<Arc<str>, usize>, name: &Arc<str>) {
    if let Some(n) = counts.get_mut(name) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(name);
        }
    }
}

/// The counter's shared name for `name`, and how many live entries it has.
fn count_of(counts: &HashMap<Arc<str>, usize>, name: &str) -> (Option<Arc<str>>, usize) {
    counts
        .get_key_value(name)
        .map_or((None, 0), |(k, n)| (Some(Arc::clone(k)), *n))
}

impl ReplayCache {
    /// A cache holding at most `capacity` live proof IDs, 1 % of them per holder and half of
    /// that per DPoP key ([`ReplayLimits::with_capacity`]).
    pub fn new(capacity: usize) -> Self {
        Self::with_limits(ReplayLimits::with_capacity(capacity))
    }

    /// A cache with these bounds.
    pub fn with_limits(limits: ReplayLimits) -> Self {
        Self {
            state: Mutex::new(ReplayState::default()),
            limits,
        }
    }

    /// The bounds.
    pub fn limits(&self) -> ReplayLimits {
        self.limits
    }

    /// Records `proof`'s ID for `holder` until [`replay_until`]; refuses a replay, or a new ID
    /// once the holder, the DPoP key or the whole cache is at its bound. Call it last, once every
    /// other check has passed, so that refused requests never take room.
    pub fn record(
        &self,
        holder: &str,
        proof: &DpopProof,
        window_secs: u64,
        now: UnixTime,
    ) -> Result<(), ProofError> {
        self.check_and_record(
            holder,
            proof.jkt.as_str(),
            &proof.jti,
            replay_until(proof.iat, now, window_secs),
            now,
        )
    }

    /// Records `jkt`/`jti` for `holder` until `until`; see [`record`](Self::record).
    pub fn check_and_record(
        &self,
        holder: &str,
        jkt: &str,
        jti: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<(), ProofError> {
        let id = proof_id(jkt, jti);
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.expire(now.0);
        if state.seen.contains_key(&id) {
            return Err(ProofError::Invalid(
                "DPoP proof replayed (jti seen before)".into(),
            ));
        }
        let (holder_name, holder_count) = count_of(&state.per_holder, holder);
        if holder_count >= self.limits.per_holder {
            return Err(ProofError::OverQuota {
                who: "key",
                retry_after_secs: state.retry_after(now.0),
            });
        }
        let (jkt_name, jkt_count) = count_of(&state.per_jkt, jkt);
        if jkt_count >= self.limits.per_jkt {
            return Err(ProofError::OverQuota {
                who: "jkt",
                retry_after_secs: state.retry_after(now.0),
            });
        }
        if state.seen.len() >= self.limits.capacity {
            return Err(ProofError::CacheFull);
        }
        let holder = holder_name.unwrap_or_else(|| Arc::from(holder));
        let jkt = jkt_name.unwrap_or_else(|| Arc::from(jkt));
        *state.per_holder.entry(Arc::clone(&holder)).or_insert(0) += 1;
        *state.per_jkt.entry(Arc::clone(&jkt)).or_insert(0) += 1;
        state.due.push(Reverse((until.0, id)));
        state.seen.insert(
            id,
            Entry {
                until: until.0,
                holder,
                jkt,
            },
        );
        Ok(())
    }

    /// Forgets `proof`'s ID again, for a caller whose request failed after recording it for a
    /// reason that is not the client's (a shared replay store that could not be reached): the
    /// client's retry with the same proof is then not a "replay", and the failure took no room.
    pub fn release(&self, proof: &DpopProof) {
        let id = proof_id(proof.jkt.as_str(), &proof.jti);
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(e) = state.seen.remove(&id) {
            release(&mut state.per_holder, &e.holder);
            release(&mut state.per_jkt, &e.jkt);
        }
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.state.lock().map_or(0, |s| s.seen.len())
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A fixed-size ID for a proof: no attacker-sized strings in the cache, and the same digest the
/// issuer's shared replay table stores.
pub fn proof_id(jkt: &str, jti: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(jkt.as_bytes());
    ctx.update(b":");
    ctx.update(jti.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}
