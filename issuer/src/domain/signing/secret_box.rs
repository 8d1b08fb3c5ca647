//! Private signing keys at rest: AES-256-GCM (ring), a fresh random nonce per seal, the `kid` as
//! associated data so that a ciphertext cannot be swapped onto another key's row.

use std::fmt;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// The 32-byte key-encryption key. `Debug` is redacted.
pub struct EncryptionKey {
    key: LessSafeKey,
    /// See [`EncryptionKey::fingerprint`]; computed from the bytes, which the key does not keep.
    fingerprint: String,
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey(***)")
    }
}

/// Sealing or opening failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The random generator failed.
    #[error("random generator failed")]
    Rng,
    /// The ciphertext is damaged, belongs to another kid, or was sealed under another key.
    #[error("cannot decrypt: wrong encryption key or damaged data")]
    Open,
}

impl EncryptionKey {
    /// From 32 secret bytes.
    pub fn new(bytes: &Zeroizing<[u8; 32]>) -> Result<Self, SealError> {
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes[..]).map_err(|_| SealError::Open)?;
        let mac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes[..]);
        let tag = ring::hmac::sign(&mac, b"keymint secret fingerprint v1\0encryption key");
        Ok(Self {
            key: LessSafeKey::new(unbound),
            fingerprint: keymint_jwks::jws::encode_segment(
                tag.as_ref().get(..16).unwrap_or_default(),
            ),
        })
    }

    /// A public fingerprint (128 bits of an HMAC-SHA256 of a fixed label under the key, base64url),
    /// stored in the database so that a server given another key refuses to start rather than
    /// failing to decrypt its signing keys (`domain::settings::secrets`). It tells nothing about
    /// the key.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Encrypts `plaintext`, binding it to `kid`. Output: nonce || ciphertext || tag.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Rng)?;
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut buf,
            )
            .map_err(|_| SealError::Rng)?;
        let mut out = nonce.to_vec();
        out.append(&mut buf);
        Ok(out)
    }

    /// Decrypts what [`seal`](Self::seal) made for the same `kid`.
    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf)
            .map_err(|_| SealError::Open)?;
        Ok(Zeroizing::new(plain.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_kid_binding() {
        let k = EncryptionKey::new(&Zeroizing::new([1; 32])).unwrap();
        let sealed = k.seal("kid-a", b"pkcs8").unwrap();
        assert_eq!(&k.open("kid-a", &sealed).unwrap()[..], b"pkcs8");
        assert_eq!(k.open("kid-b", &sealed), Err(SealError::Open));
        let other = EncryptionKey::new(&Zeroizing::new([2; 32])).unwrap();
        assert_eq!(other.open("kid-a", &sealed), Err(SealError::Open));
        assert_eq!(k.open("kid-a", &sealed[..5]), Err(SealError::Open));
    }
}
