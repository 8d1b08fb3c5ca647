//! A ring-backed [`jsonwebtoken`] crypto provider.
//!
//! jsonwebtoken (10 and later) routes every signature through a process-wide `CryptoProvider` and
//! panics when none is installed. Its built-in providers use aws-lc-rs or RustCrypto; keymint's
//! one crypto stack is ring, so this module supplies [`RING_PROVIDER`]: EdDSA (Ed25519) and ES256,
//! nothing else (keymint never uses shared-secret HMAC or RSA tokens).
//!
//! Library code never installs it: only the `keymint` binary calls
//! `RING_PROVIDER.install_default()` at startup. keymint's own signer and verifier do not go
//! through jsonwebtoken at all, so they work whichever provider an application installed, or none.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind, new_error};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};

/// The ring-backed provider: Ed25519 and P-256 only; every other algorithm is an error, never a
/// panic.
pub static RING_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |_| Err(unsupported()),
        rsa_pub_components_from_public_key: |_| Err(unsupported()),
        ec_pub_components_from_private_key: ec_components,
        ed_pub_components_from_private_key: ed_components,
        compute_digest,
    },
};

fn unsupported() -> Error {
    new_error(ErrorKind::InvalidAlgorithm)
}

enum RingSigner {
    Ed25519(Ed25519KeyPair),
    P256(EcdsaKeyPair, SystemRandom),
}

impl signature::Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        match self {
            Self::Ed25519(k) => Ok(k.sign(msg).as_ref().to_vec()),
            Self::P256(k, rng) => k
                .sign(rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| signature::Error::new()),
        }
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        match self {
            Self::Ed25519(_) => Algorithm::EdDSA,
            Self::P256(..) => Algorithm::ES256,
        }
    }
}

fn new_signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    match alg {
        Algorithm::EdDSA => Ed25519KeyPair::from_pkcs8_maybe_unchecked(key.as_bytes())
            .map(|k| Box::new(RingSigner::Ed25519(k)) as Box<dyn JwtSigner>)
            .map_err(|_| new_error(ErrorKind::InvalidEddsaKey)),
        Algorithm::ES256 => {
            let rng = SystemRandom::new();
            EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, key.as_bytes(), &rng)
                .map(|k| Box::new(RingSigner::P256(k, rng)) as Box<dyn JwtSigner>)
                .map_err(|_| new_error(ErrorKind::InvalidEcdsaKey))
        }
        _ => Err(unsupported()),
    }
}

struct RingVerifier {
    alg: Algorithm,
    ring_alg: &'static dyn sig::VerificationAlgorithm,
    public: Vec<u8>,
}

impl signature::Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        sig::UnparsedPublicKey::new(self.ring_alg, &self.public)
            .verify(msg, signature)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    let DecodingKeyKind::SecretOrDer(public) = key.kind() else {
        return Err(new_error(ErrorKind::InvalidKeyFormat));
    };
    let ring_alg: &'static dyn sig::VerificationAlgorithm = match (alg, public.len()) {
        (Algorithm::EdDSA, 32) => &sig::ED25519,
        (Algorithm::ES256, 65) => &sig::ECDSA_P256_SHA256_FIXED,
        (Algorithm::EdDSA | Algorithm::ES256, _) => {
            return Err(new_error(ErrorKind::InvalidKeyFormat));
        }
        _ => return Err(unsupported()),
    };
    Ok(Box::new(RingVerifier {
        alg: *alg,
        ring_alg,
        public: public.clone(),
    }))
}

fn ec_components(der: &[u8], alg: Algorithm) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>), Error> {
    if alg != Algorithm::ES256 {
        return Err(unsupported());
    }
    let rng = SystemRandom::new();
    let pair = EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
        .map_err(|_| new_error(ErrorKind::InvalidEcdsaKey))?;
    let point = pair.public_key().as_ref();
    match (point.get(1..33), point.get(33..65)) {
        (Some(x), Some(y)) => Ok((EllipticCurve::P256, x.to_vec(), y.to_vec())),
        _ => Err(new_error(ErrorKind::InvalidEcdsaKey)),
    }
}

fn ed_components(der: &[u8], curve: &EllipticCurve) -> Result<Vec<u8>, Error> {
    if *curve != EllipticCurve::Ed25519 {
        return Err(unsupported());
    }
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
        .map(|k| k.public_key().as_ref().to_vec())
        .map_err(|_| new_error(ErrorKind::InvalidEddsaKey))
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>, Error> {
    use ring::digest;
    let alg = match hash {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
        _ => return Err(unsupported()),
    };
    Ok(digest::digest(alg, data).as_ref().to_vec())
}
