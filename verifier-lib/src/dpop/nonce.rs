//! Server nonces (RFC 9449 §8) that every replica given the same secret accepts.

use keymint_jwks::UnixTime;

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
