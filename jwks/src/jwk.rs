//! Public keys as JWKs: Ed25519 (RFC 8037 `OKP`) and P-256 (RFC 7518 `EC`).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self as sig, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::strict_json::{self, JsonError};
use crate::weak_points::{ed25519_small_order, p256_point_on_curve};
use crate::{Algorithm, IdError, Kid, thumbprint};

/// Why a JWK was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwkError {
    /// The JSON could not be read.
    #[error("JWK is not valid JSON: {0}")]
    Json(#[from] JsonError),
    /// A member the key type requires is absent.
    #[error("JWK member `{0}` is missing")]
    MissingMember(&'static str),
    /// The `kty` is not one keymint can use (keymint accepts `OKP` and `EC`).
    #[error("unsupported JWK key type {0:?}")]
    UnsupportedKeyType(String),
    /// The `crv` is not one keymint can use (keymint accepts `Ed25519` and `P-256`).
    #[error("unsupported JWK curve {0:?}")]
    UnsupportedCurve(String),
    /// The `alg` member contradicts the key type.
    #[error("JWK `alg` {alg:?} does not fit a {kty} {crv} key")]
    AlgorithmMismatch {
        /// The `alg` member.
        alg: String,
        /// The key type.
        kty: &'static str,
        /// The curve.
        crv: &'static str,
    },
    /// The `use` member says the key is not for signatures.
    #[error("JWK `use` is {0:?}, keymint needs \"sig\"")]
    WrongUse(String),
    /// A coordinate is not valid unpadded base64url.
    #[error("JWK member `{0}` is not valid base64url")]
    BadBase64(&'static str),
    /// A coordinate has the wrong length for its curve.
    #[error("JWK member `{member}` is {actual} bytes, {expected} expected")]
    WrongLength {
        /// The member.
        member: &'static str,
        /// The length the curve requires.
        expected: usize,
        /// The length seen.
        actual: usize,
    },
    /// The P-256 point `(x, y)` is not on the curve.
    #[error("JWK point is not on the curve")]
    PointNotOnCurve,
    /// The Ed25519 point `x` is one of the eight points of small order (or a non-canonical
    /// encoding of one). Signatures "verify" under such a key without its private half: with the
    /// identity as the key, `R = identity, S = 0` passes for every message.
    #[error("JWK Ed25519 point has small order: it would verify forged signatures")]
    SmallOrderPoint,
    /// A private-key member is present in what must be a public key.
    #[error(
        "JWK contains the private member `{0}`; a public key set must never carry private keys"
    )]
    PrivateMember(&'static str),
    /// The `kid` is not a valid key ID.
    #[error("JWK kid: {0}")]
    BadKid(IdError),
}

/// A public key keymint can verify with. The algorithm is part of the key: a token never chooses it.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    alg: Algorithm,
    /// Ed25519: the 32-byte point. P-256: the 65-byte uncompressed SEC1 point `04 || x || y`.
    bytes: Box<[u8]>,
}

impl PublicKey {
    /// An Ed25519 public key from its 32 bytes. Points of small order are refused.
    pub fn ed25519(bytes: &[u8]) -> Result<Self, JwkError> {
        check_len("x", bytes, 32)?;
        if ed25519_small_order(bytes) {
            return Err(JwkError::SmallOrderPoint);
        }
        Ok(Self {
            alg: Algorithm::EdDsa,
            bytes: bytes.into(),
        })
    }

    /// A P-256 public key from its affine coordinates; the point is checked to be on the curve.
    pub fn p256(x: &[u8], y: &[u8]) -> Result<Self, JwkError> {
        check_len("x", x, 32)?;
        check_len("y", y, 32)?;
        let mut bytes = Vec::with_capacity(65);
        bytes.push(0x04);
        bytes.extend_from_slice(x);
        bytes.extend_from_slice(y);
        p256_point_on_curve(&bytes)?;
        Ok(Self {
            alg: Algorithm::Es256,
            bytes: bytes.into(),
        })
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The raw public key bytes (Ed25519 point, or uncompressed SEC1 P-256 point).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Checks `signature` over `message` with this key's own algorithm.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), BadSignature> {
        let alg: &'static dyn sig::VerificationAlgorithm = match self.alg {
            Algorithm::EdDsa => &sig::ED25519,
            Algorithm::Es256 => &sig::ECDSA_P256_SHA256_FIXED,
        };
        UnparsedPublicKey::new(alg, &self.bytes)
            .verify(message, signature)
            .map_err(|_| BadSignature)
    }

    /// The RFC 7638 thumbprint of this key.
    pub fn thumbprint(&self) -> Kid {
        match self.alg {
            Algorithm::EdDsa => {
                let x = URL_SAFE_NO_PAD.encode(&self.bytes);
                thumbprint(&[("crv", "Ed25519"), ("kty", "OKP"), ("x", &x)])
            }
            Algorithm::Es256 => {
                let (x, y) = self.p256_coordinates();
                thumbprint(&[("crv", "P-256"), ("kty", "EC"), ("x", &x), ("y", &y)])
            }
        }
    }

    fn p256_coordinates(&self) -> (String, String) {
        let x = self.bytes.get(1..33).unwrap_or_default();
        let y = self.bytes.get(33..65).unwrap_or_default();
        (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("alg", &self.alg)
            .field("kid", &self.thumbprint())
            .finish()
    }
}

/// A signature did not verify. Deliberately carries no detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature does not verify")]
pub struct BadSignature;

/// A public JWK: a key ID and a public key whose algorithm is fixed by its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    kid: Kid,
    key: PublicKey,
}

impl Jwk {
    /// A JWK whose `kid` is the key's RFC 7638 thumbprint (what keymint publishes).
    pub fn new(key: PublicKey) -> Self {
        Self {
            kid: key.thumbprint(),
            key,
        }
    }

    /// A JWK with an explicit `kid` (for key sets that do not use thumbprints).
    pub fn with_kid(kid: Kid, key: PublicKey) -> Self {
        Self { kid, key }
    }

    /// The key ID.
    pub fn kid(&self) -> &Kid {
        &self.kid
    }

    /// The public key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// Parses one JWK from JSON, refusing anything keymint cannot safely use.
    pub fn from_json(bytes: &[u8]) -> Result<Self, JwkError> {
        let raw: RawJwk = strict_json::from_slice(bytes)?;
        raw.into_jwk()
    }

    /// The JWK as a JSON value with `kty`, `crv`, coordinates, `kid`, `alg` and `use: "sig"`.
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(self.to_raw()).unwrap_or_default()
    }

    pub(crate) fn to_raw(&self) -> RawJwk {
        let (kty, crv, x, y) = match self.key.alg {
            Algorithm::EdDsa => (
                "OKP",
                "Ed25519",
                URL_SAFE_NO_PAD.encode(&self.key.bytes),
                None,
            ),
            Algorithm::Es256 => {
                let (x, y) = self.key.p256_coordinates();
                ("EC", "P-256", x, Some(y))
            }
        };
        RawJwk {
            kty: Some(kty.to_owned()),
            crv: Some(crv.to_owned()),
            x: Some(x),
            y,
            kid: Some(self.kid.as_str().to_owned()),
            alg: Some(self.key.alg.as_str().to_owned()),
            use_: Some("sig".to_owned()),
            ..RawJwk::default()
        }
    }
}

/// The wire form. Unknown members are ignored (RFC 7517 §4); private members are detected so they
/// can be refused.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct RawJwk {
    #[serde(skip_serializing_if = "Option::is_none")]
    kty: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alg: Option<String>,
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    use_: Option<String>,
    #[serde(skip_serializing, default)]
    d: Option<serde::de::IgnoredAny>,
    #[serde(skip_serializing, default)]
    p: Option<serde::de::IgnoredAny>,
    #[serde(skip_serializing, default)]
    q: Option<serde::de::IgnoredAny>,
    #[serde(skip_serializing, default)]
    dp: Option<serde::de::IgnoredAny>,
    #[serde(skip_serializing, default)]
    dq: Option<serde::de::IgnoredAny>,
    #[serde(skip_serializing, default)]
    qi: Option<serde::de::IgnoredAny>,
    #[serde(skip_serializing, default)]
    k: Option<serde::de::IgnoredAny>,
    #[serde(skip_serializing, default)]
    oth: Option<serde::de::IgnoredAny>,
}

impl RawJwk {
    pub(crate) fn into_jwk(self) -> Result<Jwk, JwkError> {
        for (present, name) in [
            (self.d.is_some(), "d"),
            (self.p.is_some(), "p"),
            (self.q.is_some(), "q"),
            (self.dp.is_some(), "dp"),
            (self.dq.is_some(), "dq"),
            (self.qi.is_some(), "qi"),
            (self.k.is_some(), "k"),
            (self.oth.is_some(), "oth"),
        ] {
            if present {
                return Err(JwkError::PrivateMember(name));
            }
        }
        if let Some(u) = self.use_.as_deref()
            && u != "sig"
        {
            return Err(JwkError::WrongUse(cut(u)));
        }
        let kty = self.kty.ok_or(JwkError::MissingMember("kty"))?;
        let crv = self.crv.ok_or(JwkError::MissingMember("crv"));
        let key = match kty.as_str() {
            "OKP" => {
                let crv = crv?;
                if crv != "Ed25519" {
                    return Err(JwkError::UnsupportedCurve(cut(&crv)));
                }
                let x = decode("x", self.x.as_deref())?;
                PublicKey::ed25519(&x)?
            }
            "EC" => {
                let crv = crv?;
                if crv != "P-256" {
                    return Err(JwkError::UnsupportedCurve(cut(&crv)));
                }
                let x = decode("x", self.x.as_deref())?;
                let y = decode("y", self.y.as_deref())?;
                PublicKey::p256(&x, &y)?
            }
            other => return Err(JwkError::UnsupportedKeyType(cut(other))),
        };
        if let Some(alg) = self.alg.as_deref()
            && Algorithm::from_name(alg) != Some(key.alg)
        {
            let (kty, crv) = match key.alg {
                Algorithm::EdDsa => ("OKP", "Ed25519"),
                Algorithm::Es256 => ("EC", "P-256"),
            };
            return Err(JwkError::AlgorithmMismatch {
                alg: cut(alg),
                kty,
                crv,
            });
        }
        let kid = match self.kid {
            Some(kid) => Kid::new(kid).map_err(JwkError::BadKid)?,
            None => key.thumbprint(),
        };
        Ok(Jwk { kid, key })
    }
}

fn cut(s: &str) -> String {
    s.chars().take(32).collect()
}

fn decode(member: &'static str, value: Option<&str>) -> Result<Vec<u8>, JwkError> {
    let value = value.ok_or(JwkError::MissingMember(member))?;
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| JwkError::BadBase64(member))
}

fn check_len(member: &'static str, bytes: &[u8], expected: usize) -> Result<(), JwkError> {
    if bytes.len() == expected {
        Ok(())
    } else {
        Err(JwkError::WrongLength {
            member,
            expected,
            actual: bytes.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    #[test]
    fn rfc8037_public_jwk_parses_and_its_kid_is_the_thumbprint() {
        let jwk = Jwk::from_json(
            format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}"}}"#).as_bytes(),
        )
        .unwrap();
        assert_eq!(
            jwk.kid().as_str(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
        assert_eq!(jwk.key().algorithm(), Algorithm::EdDsa);
    }

    #[test]
    fn private_member_is_refused() {
        let json = format!(
            r#"{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}}"#
        );
        assert_eq!(
            Jwk::from_json(json.as_bytes()),
            Err(JwkError::PrivateMember("d"))
        );
    }

    #[test]
    fn unknown_kty_and_crv_are_refused() {
        assert!(matches!(
            Jwk::from_json(br#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#),
            Err(JwkError::UnsupportedKeyType(_))
        ));
        assert!(matches!(
            Jwk::from_json(
                format!(r#"{{"kty":"OKP","crv":"X25519","x":"{RFC8037_X}"}}"#).as_bytes()
            ),
            Err(JwkError::UnsupportedCurve(_))
        ));
        assert!(matches!(
            Jwk::from_json(br#"{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}"#),
            Err(JwkError::UnsupportedCurve(_))
        ));
    }

    #[test]
    fn wrong_key_length_is_refused() {
        assert_eq!(
            Jwk::from_json(br#"{"kty":"OKP","crv":"Ed25519","x":"AAAA"}"#),
            Err(JwkError::WrongLength {
                member: "x",
                expected: 32,
                actual: 3
            })
        );
    }

    /// Every small-order point is refused, canonical or not, and the table really holds points of
    /// small order: under each canonical one, ring accepts forged signatures `R, S = 0` with `R`
    /// one of the eight small-order points (`-[h]A` is one of them), which a point of large order
    /// would never allow.
    #[test]
    fn small_order_ed25519_points_are_refused() {
        let encodings: Vec<[u8; 32]> = crate::weak_points::ED25519_SMALL_ORDER_Y
            .iter()
            .flat_map(|y| {
                let mut negative = *y;
                negative[31] |= 0x80;
                [*y, negative]
            })
            .collect();
        assert_eq!(encodings.len(), 14);
        for point in &encodings {
            let x = URL_SAFE_NO_PAD.encode(point);
            assert_eq!(
                Jwk::from_json(format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}"}}"#).as_bytes()),
                Err(JwkError::SmallOrderPoint),
                "{x}"
            );
            assert_eq!(PublicKey::ed25519(point), Err(JwkError::SmallOrderPoint));
        }
        // The canonical encodings of the eight points: y = 0 (both signs), y = 1, the four of
        // order 8, y = p - 1.
        let canonical = [0, 1, 2, 4, 5, 6, 7, 8];
        for &i in &canonical {
            let point = encodings[i];
            // `h` hashes `R` too, so a given `R` fits about one message in eight: try a few.
            let forges = (0u8..64).any(|message| {
                canonical.iter().any(|&j| {
                    let mut signature = [0u8; 64];
                    signature[..32].copy_from_slice(&encodings[j]);
                    UnparsedPublicKey::new(&sig::ED25519, point)
                        .verify(&[message], &signature)
                        .is_ok()
                })
            });
            assert!(
                forges,
                "{} is not of small order",
                URL_SAFE_NO_PAD.encode(point)
            );
        }
        // Ordinary keys still parse, including one whose bytes differ from a listed point only
        // in the last byte.
        assert!(PublicKey::ed25519(&URL_SAFE_NO_PAD.decode(RFC8037_X).unwrap()).is_ok());
        let mut near = encodings[2];
        near[31] = 0x01;
        assert!(PublicKey::ed25519(&near).is_ok());
    }

    #[test]
    fn p256_point_off_the_curve_is_refused() {
        // x = y = 1 is not on P-256.
        let mut one = [0u8; 32];
        one[31] = 1;
        let b = URL_SAFE_NO_PAD.encode(one);
        let json = format!(r#"{{"kty":"EC","crv":"P-256","x":"{b}","y":"{b}"}}"#);
        assert_eq!(
            Jwk::from_json(json.as_bytes()),
            Err(JwkError::PointNotOnCurve)
        );
    }

    #[test]
    fn alg_that_contradicts_the_key_is_refused() {
        let json = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}","alg":"ES256"}}"#);
        assert!(matches!(
            Jwk::from_json(json.as_bytes()),
            Err(JwkError::AlgorithmMismatch { .. })
        ));
    }

    #[test]
    fn encryption_use_is_refused_and_unknown_members_ignored() {
        let json = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}","use":"enc"}}"#);
        assert!(matches!(
            Jwk::from_json(json.as_bytes()),
            Err(JwkError::WrongUse(_))
        ));
        let json = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}","x-extra":[1,2]}}"#);
        assert!(Jwk::from_json(json.as_bytes()).is_ok());
    }
}
