//! Checking DPoP proofs against the request (RFC 9449 §4.3, §7): method, URL, time window, token
//! hash, key binding, server nonces, and a bounded replay cache that refuses new proofs when full
//! rather than forgetting live ones.

use std::collections::HashMap;
use std::sync::Mutex;

use keymint_jwks::UnixTime;
use keymint_jwks::dpop::{DpopProof, access_token_hash, normalize_htu, parse_proof};

/// How far a proof's `iat` may be from the verifier's clock.
pub const DEFAULT_PROOF_WINDOW_SECS: u64 = 60;
/// Default replay-cache capacity (proof IDs remembered until their window closes).
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

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
    /// The replay cache is full of live proof IDs: refusing rather than forgetting.
    #[error("DPoP replay cache is full")]
    CacheFull,
}

/// Proof IDs seen and still inside their window. Bounded: when full of live entries, new proofs
/// are refused (a forgotten live ID would allow a replay).
#[derive(Debug)]
pub struct ReplayCache {
    seen: Mutex<HashMap<String, u64>>,
    capacity: usize,
}

impl ReplayCache {
    /// A cache holding at most `capacity` live proof IDs.
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// Records `jkt`/`jti` until `until`; refuses a replay, or any new ID when full of live ones.
    pub fn check_and_record(
        &self,
        jkt: &str,
        jti: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<(), ProofError> {
        let key = format!("{jkt}:{jti}");
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.get(&key).is_some_and(|&exp| exp > now.0) {
            return Err(ProofError::Invalid(
                "DPoP proof replayed (jti seen before)".into(),
            ));
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, exp| *exp > now.0);
            if seen.len() >= self.capacity {
                return Err(ProofError::CacheFull);
            }
        }
        seen.insert(key, until.0);
        Ok(())
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.seen.lock().map_or(0, |s| s.len())
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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
    pub bound_jkt: Option<&'a str>,
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

/// Checks a proof against a request; on success records its `jti` until [`replay_until`].
pub fn check_proof(
    proof: &str,
    req: &ProofRequirements<'_>,
    replay: &ReplayCache,
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
    if p.iat.0.abs_diff(now.0) > window_secs {
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
        && p.jkt != jkt
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
    replay.check_and_record(&p.jkt, &p.jti, replay_until(p.iat, now, window_secs), now)?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keymint_jwks::dpop::make_proof;
    use keymint_jwks::{Algorithm, SigningKey};

    const NOW: UnixTime = UnixTime(1_800_000_000);

    fn req<'a>(token: Option<&'a str>, jkt: Option<&'a str>) -> ProofRequirements<'a> {
        ProofRequirements {
            method: "GET",
            url: "https://api.example/orders?page=2",
            access_token: token,
            bound_jkt: jkt,
        }
    }

    #[test]
    fn a_matching_proof_passes_once_and_its_replay_is_refused() {
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let ath = access_token_hash("tok");
        let p = make_proof(
            &key,
            "GET",
            "https://API.example/orders",
            NOW,
            "j1",
            Some(&ath),
            None,
        )
        .unwrap();
        let cache = ReplayCache::new(10);
        let ok = check_proof(
            &p,
            &req(Some("tok"), Some(key.kid().as_str())),
            &cache,
            None,
            60,
            NOW,
        )
        .unwrap();
        assert_eq!(ok.jkt, key.kid().as_str());
        assert!(
            matches!(check_proof(&p, &req(Some("tok"), None), &cache, None, 60, NOW), Err(ProofError::Invalid(m)) if m.contains("replayed"))
        );
    }

    #[test]
    fn a_future_dated_proof_replayed_after_now_plus_window_is_refused() {
        let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let ath = access_token_hash("tok");
        // Made by a client whose clock runs a full window ahead: still acceptable at NOW, and
        // acceptable until iat + 60 = NOW + 120.
        let p = make_proof(
            &key,
            "GET",
            "https://api.example/orders",
            UnixTime(NOW.0 + 60),
            "ahead",
            Some(&ath),
            None,
        )
        .unwrap();
        let cache = ReplayCache::new(10);
        check_proof(&p, &req(Some("tok"), None), &cache, None, 60, NOW).unwrap();
        let later = UnixTime(NOW.0 + 60 + 2);
        assert!(
            matches!(
                check_proof(&p, &req(Some("tok"), None), &cache, None, 60, later),
                Err(ProofError::Invalid(m)) if m.contains("replayed")
            ),
            "the proof is still inside its window at now + window + 2, so its ID must still be remembered"
        );
    }

    #[test]
    fn replay_until_covers_the_whole_window_of_the_proof() {
        assert_eq!(replay_until(NOW, NOW, 60), UnixTime(NOW.0 + 61));
        assert_eq!(
            replay_until(UnixTime(NOW.0 + 60), NOW, 60),
            UnixTime(NOW.0 + 121)
        );
        assert_eq!(
            replay_until(UnixTime(NOW.0 - 60), NOW, 60),
            UnixTime(NOW.0 + 61)
        );
    }

    #[test]
    fn mismatches_are_refused() {
        let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let other = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let ath = access_token_hash("tok");
        let cache = ReplayCache::new(100);
        let cases = [
            make_proof(
                &key,
                "POST",
                "https://api.example/orders",
                NOW,
                "a",
                Some(&ath),
                None,
            )
            .unwrap(),
            make_proof(
                &key,
                "GET",
                "https://api.example/other",
                NOW,
                "b",
                Some(&ath),
                None,
            )
            .unwrap(),
            make_proof(
                &key,
                "GET",
                "https://api.example/orders",
                UnixTime(NOW.0 - 61),
                "c",
                Some(&ath),
                None,
            )
            .unwrap(),
            make_proof(
                &key,
                "GET",
                "https://api.example/orders",
                UnixTime(NOW.0 + 61),
                "d",
                Some(&ath),
                None,
            )
            .unwrap(),
            make_proof(
                &key,
                "GET",
                "https://api.example/orders",
                NOW,
                "e",
                Some("wrong"),
                None,
            )
            .unwrap(),
            make_proof(
                &key,
                "GET",
                "https://api.example/orders",
                NOW,
                "f",
                None,
                None,
            )
            .unwrap(),
            make_proof(
                &other,
                "GET",
                "https://api.example/orders",
                NOW,
                "g",
                Some(&ath),
                None,
            )
            .unwrap(),
        ];
        for (i, p) in cases.iter().enumerate() {
            let r = check_proof(
                p,
                &req(Some("tok"), Some(key.kid().as_str())),
                &cache,
                None,
                60,
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
        let cache = ReplayCache::new(2);
        cache
            .check_and_record("k", "1", UnixTime(NOW.0 + 10), NOW)
            .unwrap();
        cache
            .check_and_record("k", "2", UnixTime(NOW.0 + 10), NOW)
            .unwrap();
        assert_eq!(
            cache.check_and_record("k", "3", UnixTime(NOW.0 + 10), NOW),
            Err(ProofError::CacheFull)
        );
        // Once the first two have expired, there is room again.
        cache
            .check_and_record("k", "3", UnixTime(NOW.0 + 30), UnixTime(NOW.0 + 11))
            .unwrap();
    }

    #[test]
    fn nonces_are_required_when_configured() {
        let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let nonces = NonceSource::random(300).unwrap();
        let cache = ReplayCache::new(10);
        let ath = access_token_hash("tok");
        let without = make_proof(
            &key,
            "GET",
            "https://api.example/orders",
            NOW,
            "n1",
            Some(&ath),
            None,
        )
        .unwrap();
        let Err(ProofError::UseNonce(nonce)) = check_proof(
            &without,
            &req(Some("tok"), None),
            &cache,
            Some(&nonces),
            60,
            NOW,
        ) else {
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
        check_proof(
            &with,
            &req(Some("tok"), None),
            &cache,
            Some(&nonces),
            60,
            NOW,
        )
        .unwrap();
        assert!(
            !nonces.accepts(&nonce, UnixTime(NOW.0 + 900)),
            "old nonces expire"
        );
    }
}
