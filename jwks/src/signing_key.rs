//! Private signing keys (ring) and the [`Signer`] that mints compact JWS.

use std::fmt;
use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use zeroize::Zeroizing;

use crate::jws::{TYP_ACCESS_TOKEN, TYP_REVOCATION_LIST, encode_segment};
use crate::revocation::{RevocationList, SignedRevocationList};
use crate::{Algorithm, Claims, Jwk, Kid, PublicKey};

/// Why a signing key could not be made or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Rng,
    /// The PKCS#8 document is not a valid key for the algorithm.
    #[error("PKCS#8 document is not a valid {0} private key")]
    BadPkcs8(Algorithm),
    /// Signing failed (ECDSA needs randomness).
    #[error("signing failed")]
    Sign,
}

enum Pair {
    Ed25519(Ed25519KeyPair),
    P256(EcdsaKeyPair),
}

/// A private signing key. `Debug` shows only the algorithm and `kid`; the PKCS#8 copy is zeroized
/// on drop.
pub struct SigningKey {
    pair: Pair,
    pkcs8: Zeroizing<Vec<u8>>,
    public: PublicKey,
    kid: Kid,
    rng: SystemRandom,
}

impl SigningKey {
    /// Generates a fresh key from the system CSPRNG.
    pub fn generate(alg: Algorithm) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let doc = match alg {
            Algorithm::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng),
            Algorithm::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            }
        }
        .map_err(|_| KeyError::Rng)?;
        Self::from_pkcs8(alg, doc.as_ref())
    }

    /// Loads a key from a PKCS#8 (RFC 5208 / RFC 5958) DER document.
    pub fn from_pkcs8(alg: Algorithm, der: &[u8]) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let (pair, public) = match alg {
            Algorithm::EdDsa => {
                let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                    .map_err(|_| KeyError::BadPkcs8(alg))?;
                let public = PublicKey::ed25519(pair.public_key().as_ref())
                    .map_err(|_| KeyError::BadPkcs8(alg))?;
                (Pair::Ed25519(pair), public)
            }
            Algorithm::Es256 => {
                let pair =
                    EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                        .map_err(|_| KeyError::BadPkcs8(alg))?;
                let point = pair.public_key().as_ref();
                let public = PublicKey::p256(
                    point.get(1..33).unwrap_or_default(),
                    point.get(33..65).unwrap_or_default(),
                )
                .map_err(|_| KeyError::BadPkcs8(alg))?;
                (Pair::P256(pair), public)
            }
        };
        Ok(Self {
            pair,
            pkcs8: Zeroizing::new(der.to_vec()),
            kid: public.thumbprint(),
            public,
            rng,
        })
    }

    /// An Ed25519 key from its 32-byte seed (RFC 8032 private key), e.g. a published test vector.
    pub fn ed25519_from_seed(seed: &[u8; 32]) -> Result<Self, KeyError> {
        // RFC 8410 PKCS#8 v1 for Ed25519: the fixed prefix, then the seed as an OCTET STRING.
        const PREFIX: [u8; 16] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let mut der = Zeroizing::new(Vec::with_capacity(48));
        der.extend_from_slice(&PREFIX);
        der.extend_from_slice(seed);
        Self::from_pkcs8(Algorithm::EdDsa, &der)
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.public.algorithm()
    }

    /// The RFC 7638 thumbprint, used as `kid`.
    pub fn kid(&self) -> &Kid {
        &self.kid
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The public JWK to publish.
    pub fn public_jwk(&self) -> Jwk {
        Jwk::with_kid(self.kid.clone(), self.public.clone())
    }

    /// The PKCS#8 DER document. Secret: encrypt it before it touches a disk.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// Signs `message` with the key's algorithm (64 bytes for both algorithms).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.pair {
            Pair::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Pair::P256(pair) => pair
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Sign),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.algorithm())
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Mints compact JWS with one signing key: access tokens (`typ: at+jwt`) and revocation lists
/// (`typ: keymint-revocations+jwt`). Cheap to clone.
///
/// It signs with ring directly and does not touch `jsonwebtoken`'s process-wide provider, so it
/// works in any process.
#[derive(Clone, Debug)]
pub struct Signer {
    key: Arc<SigningKey>,
    token_header: Arc<str>,
    list_header: Arc<str>,
}

impl Signer {
    /// A signer for `key`. The protected headers are encoded once here.
    pub fn new(key: SigningKey) -> Self {
        let header = |typ: &str| -> Arc<str> {
            let json = serde_json::json!({
                "alg": key.algorithm().as_str(),
                "kid": key.kid().as_str(),
                "typ": typ,
            });
            encode_segment(json.to_string().as_bytes()).into()
        };
        Self {
            token_header: header(TYP_ACCESS_TOKEN),
            list_header: header(TYP_REVOCATION_LIST),
            key: Arc::new(key),
        }
    }

    /// The key this signer uses.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Signs an access token.
    pub fn sign_access_token(&self, claims: &Claims) -> Result<String, KeyError> {
        let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
        self.sign_compact(&self.token_header, &payload)
    }

    /// Signs a revocation list. The returned value keeps the exact bytes to serve.
    pub fn sign_revocation_list(
        &self,
        list: &RevocationList,
    ) -> Result<SignedRevocationList, KeyError> {
        let payload = serde_json::to_vec(list).map_err(|_| KeyError::Sign)?;
        let jws = self.sign_compact(&self.list_header, &payload)?;
        Ok(SignedRevocationList::from_parts(
            jws,
            list.clone(),
            self.key.kid().clone(),
        ))
    }

    /// Signs `payload` under an already encoded protected header.
    pub fn sign_compact(&self, header_b64: &str, payload: &[u8]) -> Result<String, KeyError> {
        let payload_b64 = encode_segment(payload);
        let mut out = String::with_capacity(header_b64.len() + payload_b64.len() + 90);
        out.push_str(header_b64);
        out.push('.');
        out.push_str(&payload_b64);
        let signature = self.key.sign(out.as_bytes())?;
        out.push('.');
        out.push_str(&encode_segment(&signature));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const RFC8037_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";

    fn rfc8037_key() -> SigningKey {
        let seed: [u8; 32] = URL_SAFE_NO_PAD
            .decode(RFC8037_D)
            .unwrap()
            .try_into()
            .unwrap();
        SigningKey::ed25519_from_seed(&seed).unwrap()
    }

    /// RFC 8037 Appendix A.2 (public key) and A.3 (thumbprint) from the A.1 private key.
    #[test]
    fn rfc8037_key_has_the_published_public_key_and_thumbprint() {
        let key = rfc8037_key();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(key.public_key().as_bytes()),
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        );
        assert_eq!(
            key.kid().as_str(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    /// RFC 8037 Appendix A.4: the signature of "Example of Ed25519 signing" under `{"alg":"EdDSA"}`.
    #[test]
    fn rfc8037_appendix_a4_signature() {
        let key = rfc8037_key();
        let input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        let sig = key.sign(input.as_bytes()).unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(sig),
            "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
        assert!(key.public_key().verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode("hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg").unwrap()).is_ok());
    }

    #[test]
    fn pkcs8_round_trip_for_both_algorithms() {
        for alg in [Algorithm::EdDsa, Algorithm::Es256] {
            let key = SigningKey::generate(alg).unwrap();
            let again = SigningKey::from_pkcs8(alg, key.pkcs8_der()).unwrap();
            assert_eq!(key.kid(), again.kid());
            let sig = again.sign(b"m").unwrap();
            assert_eq!(sig.len(), 64);
            key.public_key().verify(b"m", &sig).unwrap();
        }
    }

    #[test]
    fn debug_never_shows_key_material() {
        let key = rfc8037_key();
        let dbg = format!("{key:?} {:?}", Signer::new(rfc8037_key()));
        assert!(!dbg.contains(RFC8037_D));
        assert!(dbg.contains("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"));
        drop(key);
    }

    #[test]
    fn wrong_pkcs8_is_a_typed_error() {
        assert_eq!(
            SigningKey::from_pkcs8(Algorithm::Es256, b"garbage").unwrap_err(),
            KeyError::BadPkcs8(Algorithm::Es256)
        );
        let ed = SigningKey::generate(Algorithm::EdDsa).unwrap();
        assert!(SigningKey::from_pkcs8(Algorithm::Es256, ed.pkcs8_der()).is_err());
    }
}
