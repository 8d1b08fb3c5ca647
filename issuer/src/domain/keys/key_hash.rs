//! API key secrets at rest: HMAC-SHA256 under a server-side pepper.
//!
//! A 256-bit random secret needs no slow password hash: nobody can guess it, so a fast keyed hash
//! is right, and the pepper (kept outside the database) makes a stolen database useless for
//! checking guesses offline. Verification is constant-time (`ring::hmac::verify`).

use std::fmt;

use ring::hmac;
use zeroize::Zeroizing;

/// The server-side pepper: 32 random bytes. `Debug` is redacted; the bytes are zeroized on drop.
pub struct Pepper(Zeroizing<[u8; 32]>);

impl Pepper {
    /// Wraps 32 secret bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A public fingerprint (128 bits of an HMAC-SHA256 of a fixed label under the pepper,
    /// base64url), stored in the database so that a server given another pepper refuses to start
    /// rather than refusing every key (`domain::settings::secrets`). It tells nothing about the
    /// 256-bit pepper itself.
    pub fn fingerprint(&self) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0[..]);
        let tag = hmac::sign(&key, b"keymint secret fingerprint v1\0pepper");
        keymint_jwks::jws::encode_segment(tag.as_ref().get(..16).unwrap_or_default())
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(***)")
    }
}

/// Hashes and checks key secrets. Cheap to clone.
#[derive(Clone)]
pub struct KeyHasher {
    key: hmac::Key,
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHasher(***)")
    }
}

impl KeyHasher {
    /// A hasher under `pepper`.
    pub fn new(pepper: &Pepper) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &pepper.0[..]),
        }
    }

    fn message(key_id: &str, secret: &str) -> Zeroizing<Vec<u8>> {
        // Domain-separated and bound to the key ID, so a hash cannot be moved to another key.
        let mut m = Zeroizing::new(Vec::with_capacity(32 + key_id.len() + secret.len()));
        m.extend_from_slice(b"keymint api key v1\0");
        m.extend_from_slice(key_id.as_bytes());
        m.push(0);
        m.extend_from_slice(secret.as_bytes());
        m
    }

    /// The hash to store for a new key.
    pub fn hash(&self, key_id: &str, secret: &str) -> Vec<u8> {
        hmac::sign(&self.key, &Self::message(key_id, secret))
            .as_ref()
            .to_vec()
    }

    /// Whether `secret` matches the stored hash, in constant time.
    pub fn verify(&self, key_id: &str, secret: &str, stored: &[u8]) -> bool {
        hmac::verify(&self.key, &Self::message(key_id, secret), stored).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_and_binds_key_id_and_pepper() {
        let h = KeyHasher::new(&Pepper::new([7; 32]));
        let stored = h.hash("id1", "secret");
        assert!(h.verify("id1", "secret", &stored));
        assert!(!h.verify("id1", "secreT", &stored));
        assert!(!h.verify("id2", "secret", &stored));
        let other = KeyHasher::new(&Pepper::new([8; 32]));
        assert!(!other.verify("id1", "secret", &stored));
        assert!(!format!("{:?}", Pepper::new([7; 32])).contains('7'));
    }
}
