//! Checking DPoP proofs against the request (RFC 9449 §4.3, §7): method, URL, time window, token
//! hash, key binding, server nonces, and a bounded replay cache that refuses new proofs when full
//! rather than forgetting live ones.
//!
//! # The replay cache under attack
//!
//! A proof ID must be remembered for as long as the proof could be accepted, so a holder who sends
//! proofs as fast as it can fills memory with live entries. The cache is therefore bounded three
//! ways: in total, per *holder* (the API key: the token's `sub` at a verifier, the presented key at
//! the issuer) and per DPoP key (`jkt`). Each holder and each `jkt` may hold at most a share of the
//! capacity (1 % by default), so one flooder is refused ([`ProofError::OverQuota`]) while everyone
//! else goes on; rotating `jkt` on every proof does not help, the per-holder share still binds.
//! Entries expire from a time-ordered heap, a few at a time as they fall due: no scans, and the
//! lock is only ever held for a handful of `O(log n)` steps.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};

use keymint_jwks::UnixTime;
use keymint_jwks::dpop::{DpopProof, access_token_hash, normalize_htu, parse_proof};

/// How far in the past a proof's `iat` may be.
pub const DEFAULT_PROOF_WINDOW_SECS: u64 = 60;
/// How far ahead of the verifier's clock a proof's `iat` may be: a few seconds of client clock
/// skew, no more (a proof dated far ahead would have to be remembered that much longer).
pub const MAX_PROOF_FUTURE_SECS: u64 = 5;
/// Default replay-cache capacity (proof IDs remembered until their window closes).
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;
/// The share of the capacity one holder (API key) or one DPoP key may occupy, in percent.
pub const DEFAULT_REPLAY_SHARE_PERCENT: usize = 1;

/// Why a proof does not fit the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The proof itself is invalid, or does not match this request or token.
    #[error("{0}")]
    Invalid(String),
    /// The server requires a nonce and the proof lacks a current one: retry with this one.
    #[error("a DPoP nonce is required")]
    UseNonce(String),
    /// This holder or DPoP key already has its whole share of the replay cache in live proofs:
    /// it is sending proofs faster than anyone needs to, and is refused alone.
    #[error("too many live DPoP proofs for this {who}; retry in {retry_after_secs} s")]
    OverQuota {
        /// `key` (the holder) or `jkt` (the DPoP key).
        who: &'static str,
        /// When the oldest live proof in the cache falls due (a hint, at least 1).
        retry_after_secs: u64,
    },
    /// The replay cache is full of live proof IDs: refusing rather than forgetting.
    #[error("DPoP replay cache is full")]
    CacheFull,
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
    /// per DPoP key.
    pub fn with_capacity(capacity: usize) -> Self {
        let share = capacity
            .saturating_mul(DEFAULT_REPLAY_SHARE_PERCENT)
            .div_ceil(100)
            .max(1);
        Self {
            capacity,
            per_holder: share,
            per_jkt: share,
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
    /// A cache holding at most `capacity` live proof IDs, 1 % of them per holder and per DPoP key.
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

/// Stateless server nonces: an HMAC of the current time window, so every replica that shares the
/// secret accepts every other's nonce, and a nonce stays valid for one to two windows.
#[derive(Debug)]
pub struct NonceSource {
    key: ring::hmac::Key,
    window_secs: u64,
}

impl NonceSource {
    /// Nonces under a fresh random secret (one process), valid for `window_secs` to twice that.
    pub fn random(window_secs: u64) -> Option<Self> {
        let rng = ring::rand::SystemRandom::new();
        let key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng).ok()?;
        Some(Self {
            key,
            window_secs: window_secs.max(1),
        })
    }

    /// Nonces under a secret every replica is given (at least 32 bytes), so that a nonce one
    /// replica hands out is accepted by every other. `None` when the secret is too short.
    pub fn from_secret(secret: &[u8], window_secs: u64) -> Option<Self> {
        (secret.len() >= 32).then(|| Self {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
            window_secs: window_secs.max(1),
        })
    }

    /// The nonce to hand out at `now`.
    pub fn current(&self, now: UnixTime) -> String {
        self.for_window(now.0 / self.window_secs)
    }

    fn for_window(&self, w: u64) -> String {
        let tag = ring::hmac::sign(&self.key, &w.to_be_bytes());
        let mut bytes = w.to_be_bytes().to_vec();
        bytes.extend_from_slice(tag.as_ref().get(..16).unwrap_or_default());
        keymint_jwks::jws::encode_segment(&bytes)
    }

    /// Whether `nonce` was handed out in this window or the previous one.
    pub fn accepts(&self, nonce: &str, now: UnixTime) -> bool {
        let w = now.0 / self.window_secs;
        [w, w.saturating_sub(1)]
            .iter()
            .any(|&w| self.for_window(w) == nonce)
    }
}

/// What a proof must match.
#[derive(Debug)]
pub struct ProofRequirements<'a> {
    /// The request method.
    pub method: &'a str,
    /// The request URL as the client saw it.
    pub url: &'a str,
    /// For a resource request, the access token (its hash must be in `ath`).
    pub access_token: Option<&'a str>,
    /// When set, `cnf.jkt` of the token: the proof must be made with that key.
    pub bound_jkt: Option<&'a keymint_jwks::Jkt>,
}

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

/// Checks a proof against a request: method, URL, time (at most `window_secs` old, at most
/// [`MAX_PROOF_FUTURE_SECS`] ahead), token hash, key binding and nonce. It records nothing: once
/// every other check of the request has passed, claim the proof's ID with
/// [`ReplayCache::record`].
pub fn check_proof(
    proof: &str,
    req: &ProofRequirements<'_>,
    nonces: Option<&NonceSource>,
    window_secs: u64,
    now: UnixTime,
) -> Result<DpopProof, ProofError> {
    let p = parse_proof(proof).map_err(|e| ProofError::Invalid(e.to_string()))?;
    if p.htm != req.method {
        return Err(ProofError::Invalid(
            "DPoP proof htm does not match the request method".into(),
        ));
    }
    if normalize_htu(&p.htu) != normalize_htu(req.url) {
        return Err(ProofError::Invalid(
            "DPoP proof htu does not match the request URL".into(),
        ));
    }
    if p.iat.0 > now.0.saturating_add(MAX_PROOF_FUTURE_SECS) {
        return Err(ProofError::Invalid(
            "DPoP proof iat is too far in the future".into(),
        ));
    }
    if now.0.saturating_sub(p.iat.0) > window_secs {
        return Err(ProofError::Invalid(
            "DPoP proof iat is outside the accepted window".into(),
        ));
    }
    if let Some(token) = req.access_token
        && p.ath.as_deref() != Some(access_token_hash(token).as_str())
    {
        return Err(ProofError::Invalid(
            "DPoP proof ath does not match the access token".into(),
        ));
    }
    if let Some(jkt) = req.bound_jkt
        && p.jkt != *jkt
    {
        return Err(ProofError::Invalid(
            "DPoP proof key is not the key the token is bound to".into(),
        ));
    }
    if let Some(n) = nonces
        && !p.nonce.as_deref().is_some_and(|v| n.accepts(v, now))
    {
        return Err(ProofError::UseNonce(n.current(now)));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keymint_jwks::dpop::make_proof;
    use keymint_jwks::{Algorithm, SigningKey};

    const NOW: UnixTime = UnixTime(1_800_000_000);

    fn req<'a>(
        token: Option<&'a str>,
        jkt: Option<&'a keymint_jwks::Jkt>,
    ) -> ProofRequirements<'a> {
        ProofRequirements {
            method: "GET",
            url: "https://api.example/orders?page=2",
            access_token: token,
            bound_jkt: jkt,
        }
    }

    /// Checks and records, as a verifier does for a token whose `sub` is `k1`.
    fn check_and_claim(
        proof: &str,
        r: &ProofRequirements<'_>,
        cache: &ReplayCache,
        now: UnixTime,
    ) -> Result<DpopProof, ProofError> {
        let p = check_proof(proof, r, None, DEFAULT_PROOF_WINDOW_SECS, now)?;
        cache.record("k1", &p, DEFAULT_PROOF_WINDOW_SECS, now)?;
        Ok(p)
    }

    fn proof_at(key: &SigningKey, iat: UnixTime, jti: &str) -> String {
        let ath = access_token_hash("tok");
        make_proof(
            key,
            "GET",
            "https://api.example/orders",
            iat,
            jti,
            Some(&ath),
            None,
        )
        .unwrap()
    }

    #[test]
    fn a_matching_proof_passes_once_and_its_replay_is_refused() {
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let p = proof_at(&key, NOW, "j1");
        let cache = ReplayCache::new(1000);
        let ok = check_and_claim(
            &p,
            &req(
                Some("tok"),
                Some(&keymint_jwks::Jkt::new(key.kid().as_str()).unwrap()),
            ),
            &cache,
            NOW,
        )
        .unwrap();
        assert_eq!(ok.jkt.as_str(), key.kid().as_str());
        assert!(
            matches!(check_and_claim(&p, &req(Some("tok"), None), &cache, NOW), Err(ProofError::Invalid(m)) if m.contains("replayed"))
        );
    }

    #[test]
    fn a_proof_dated_more_than_five_seconds_ahead_is_refused() {
        let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let cache = ReplayCache::new(1000);
        let five = proof_at(&key, UnixTime(NOW.0 + MAX_PROOF_FUTURE_SECS), "five");
        check_and_claim(&five, &req(Some("tok"), None), &cache, NOW).unwrap();
        for ahead in [MAX_PROOF_FUTURE_SECS + 1, 30, 55] {
            let p = proof_at(&key, UnixTime(NOW.0 + ahead), &format!("ahead{ahead}"));
            assert!(
                matches!(check_and_claim(&p, &req(Some("tok"), None), &cache, NOW), Err(ProofError::Invalid(m)) if m.contains("future")),
                "{ahead} s ahead"
            );
        }
        assert_eq!(cache.len(), 1, "refused proofs take no room");
    }

    #[test]
    fn a_future_dated_proof_is_remembered_for_its_whole_window() {
        let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let ahead = UnixTime(NOW.0 + MAX_PROOF_FUTURE_SECS);
        let p = proof_at(&key, ahead, "ahead");
        let cache = ReplayCache::new(1000);
        check_and_claim(&p, &req(Some("tok"), None), &cache, NOW).unwrap();
        // Still acceptable at iat + window: its ID must still be there.
        let last = UnixTime(ahead.0 + DEFAULT_PROOF_WINDOW_SECS);
        assert!(
            matches!(
                check_and_claim(&p, &req(Some("tok"), None), &cache, last),
                Err(ProofError::Invalid(m)) if m.contains("replayed")
            ),
            "the proof is still inside its window, so its ID must still be remembered"
        );
    }

    #[test]
    fn replay_until_covers_the_whole_window_of_the_proof() {
        assert_eq!(replay_until(NOW, NOW, 60), UnixTime(NOW.0 + 61));
        assert_eq!(
            replay_until(UnixTime(NOW.0 + 5), NOW, 60),
            UnixTime(NOW.0 + 66)
        );
        assert_eq!(
            replay_until(UnixTime(NOW.0 - 60), NOW, 60),
            UnixTime(NOW.0 + 61)
        );
    }

    #[test]
    fn mismatches_are_refused_and_take_no_room() {
        let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let other = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let ath = access_token_hash("tok");
        let cache = ReplayCache::new(100);
        let make = |k: &SigningKey, m: &str, u: &str, iat: u64, jti: &str, ath: Option<&str>| {
            make_proof(k, m, u, UnixTime(iat), jti, ath, None).unwrap()
        };
        let orders = "https://api.example/orders";
        let cases = [
            make(&key, "POST", orders, NOW.0, "a", Some(&ath)),
            make(
                &key,
                "GET",
                "https://api.example/other",
                NOW.0,
                "b",
                Some(&ath),
            ),
            make(&key, "GET", orders, NOW.0 - 61, "c", Some(&ath)),
            make(&key, "GET", orders, NOW.0 + 6, "d", Some(&ath)),
            make(&key, "GET", orders, NOW.0, "e", Some("wrong")),
            make(&key, "GET", orders, NOW.0, "f", None),
            make(&other, "GET", orders, NOW.0, "g", Some(&ath)),
        ];
        for (i, p) in cases.iter().enumerate() {
            let r = check_and_claim(
                p,
                &req(
                    Some("tok"),
                    Some(&keymint_jwks::Jkt::new(key.kid().as_str()).unwrap()),
                ),
                &cache,
                NOW,
            );
            assert!(matches!(r, Err(ProofError::Invalid(_))), "case {i}: {r:?}");
        }
        assert!(
            cache.is_empty(),
            "refused proofs must not fill the replay cache"
        );
    }

    #[test]
    fn a_full_cache_refuses_new_proofs_and_frees_expired_ones() {
        let cache = ReplayCache::with_limits(ReplayLimits {
            capacity: 2,
            per_holder: 2,
            per_jkt: 2,
        });
        let until = UnixTime(NOW.0 + 10);
        cache.check_and_record("a", "k", "1", until, NOW).unwrap();
        cache.check_and_record("b", "k", "2", until, NOW).unwrap();
        assert_eq!(
            cache.check_and_record("c", "j", "3", until, NOW),
            Err(ProofError::CacheFull)
        );
        // Once the first two have expired, there is room again.
        cache
            .check_and_record("c", "j", "3", UnixTime(NOW.0 + 30), UnixTime(NOW.0 + 10))
            .unwrap();
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn one_flooding_key_is_refused_alone_even_when_it_rotates_its_dpop_key() {
        // 1 % of 10,000 each: 100 live proofs per key and per jkt.
        let cache = ReplayCache::new(10_000);
        let until = UnixTime(NOW.0 + 66);
        let mut refused = 0;
        for n in 0..5_000 {
            // A fresh jkt every time: only the per-key share can stop this.
            match cache.check_and_record("flooder", &format!("jkt{n}"), "x", until, NOW) {
                Ok(()) => {}
                Err(ProofError::OverQuota {
                    who: "key",
                    retry_after_secs,
                }) => {
                    assert_eq!(retry_after_secs, 66);
                    refused += 1;
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(refused, 4_900);
        assert_eq!(cache.len(), 100);
        // One DPoP key shared by many holders is bound by its own share.
        for n in 0..100 {
            cache
                .check_and_record(&format!("h{n}"), "shared", &format!("{n}"), until, NOW)
                .unwrap();
        }
        assert!(matches!(
            cache.check_and_record("h-new", "shared", "more", until, NOW),
            Err(ProofError::OverQuota { who: "jkt", .. })
        ));
        // Everyone else goes on.
        cache
            .check_and_record("victim", "victim-jkt", "1", until, NOW)
            .unwrap();
        // The flooder's share comes back as its proofs fall due.
        cache
            .check_and_record("flooder", "again", "y", UnixTime(NOW.0 + 200), until)
            .unwrap();
    }

    #[test]
    fn a_released_proof_takes_no_room_and_may_be_recorded_again() {
        let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let p = check_proof(
            &proof_at(&key, NOW, "r1"),
            &req(Some("tok"), None),
            None,
            DEFAULT_PROOF_WINDOW_SECS,
            NOW,
        )
        .unwrap();
        let cache = ReplayCache::new(1000);
        cache
            .record("k1", &p, DEFAULT_PROOF_WINDOW_SECS, NOW)
            .unwrap();
        cache.release(&p);
        assert!(cache.is_empty());
        // Recorded again a little later: the first entry's turn in the heap (NOW + 61) does not
        // drop the second (NOW + 71).
        let again = UnixTime(NOW.0 + 10);
        cache
            .record("k1", &p, DEFAULT_PROOF_WINDOW_SECS, again)
            .unwrap();
        let first_due = UnixTime(NOW.0 + DEFAULT_PROOF_WINDOW_SECS + 1);
        assert!(matches!(
            cache.record("k1", &p, DEFAULT_PROOF_WINDOW_SECS, first_due),
            Err(ProofError::Invalid(m)) if m.contains("replayed")
        ));
    }

    #[test]
    fn entries_fall_due_in_time_order_whatever_the_insert_order() {
        let cache = ReplayCache::new(100_000);
        for (n, until) in [70u64, 61, 66, 62].into_iter().enumerate() {
            cache
                .check_and_record("k", &format!("j{n}"), "x", UnixTime(NOW.0 + until), NOW)
                .unwrap();
        }
        let at = |d: u64| UnixTime(NOW.0 + d);
        assert!(
            cache
                .check_and_record("k", "j1", "x", at(0), at(60))
                .is_err()
        );
        cache
            .check_and_record("probe", "p1", "x", at(61), at(61))
            .unwrap();
        assert_eq!(cache.len(), 4, "j1 (61) fell due, the probe took its place");
        cache
            .check_and_record("probe", "p2", "x", at(100), at(66))
            .unwrap();
        assert_eq!(cache.len(), 2, "p1 (61), j3 (62) and j2 (66) fell due");
        cache
            .check_and_record("k", "j0", "x", at(100), at(70))
            .unwrap();
    }

    #[test]
    fn nonces_are_required_when_configured_and_shared_secrets_agree() {
        let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let nonces = NonceSource::random(300).unwrap();
        let ath = access_token_hash("tok");
        let without = proof_at(&key, NOW, "n1");
        let Err(ProofError::UseNonce(nonce)) =
            check_proof(&without, &req(Some("tok"), None), Some(&nonces), 60, NOW)
        else {
            panic!("a nonce was not demanded");
        };
        let with = make_proof(
            &key,
            "GET",
            "https://api.example/orders",
            NOW,
            "n2",
            Some(&ath),
            Some(&nonce),
        )
        .unwrap();
        check_proof(&with, &req(Some("tok"), None), Some(&nonces), 60, NOW).unwrap();
        assert!(
            !nonces.accepts(&nonce, UnixTime(NOW.0 + 900)),
            "old nonces expire"
        );
        // Two replicas given one secret accept each other's nonces; another secret does not.
        let a = NonceSource::from_secret(&[7; 32], 300).unwrap();
        let b = NonceSource::from_secret(&[7; 32], 300).unwrap();
        let c = NonceSource::from_secret(&[8; 32], 300).unwrap();
        assert!(b.accepts(&a.current(NOW), NOW));
        assert!(!c.accepts(&a.current(NOW), NOW));
        assert!(NonceSource::from_secret(&[7; 31], 300).is_none());
    }
}
