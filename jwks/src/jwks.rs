//! JWK sets (`/.well-known/jwks.json`).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::jwk::{JwkError, RawJwk};
use crate::strict_json::{self, JsonError};
use crate::{Jwk, Kid};

/// Why a JWK set was refused. The whole set is refused when any key in it is: a set keymint half
/// understands is a set an attacker can play games with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The document is not valid JSON, has a duplicate member, or has no `keys` array.
    #[error("JWKS is not valid: {0}")]
    Json(#[from] JsonError),
    /// One of the keys was refused.
    #[error("JWKS key #{index}: {error}")]
    Key {
        /// Position of the key in `keys`.
        index: usize,
        /// Why it was refused.
        error: JwkError,
    },
    /// Two keys share a `kid`, so a token's `kid` would not name one key.
    #[error("JWKS has two keys with kid {0}")]
    DuplicateKid(Kid),
    /// More keys than any sane rotation needs.
    #[error("JWKS has {count} keys, the maximum is {max}")]
    TooManyKeys {
        /// Keys seen.
        count: usize,
        /// The limit, [`Jwks::MAX_KEYS`].
        max: usize,
    },
}

/// A set of public keys, each with a distinct `kid`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Serialize, Deserialize)]
struct RawJwks {
    keys: Vec<RawJwk>,
}

impl Jwks {
    /// The most keys a set may hold. A rotation needs at most three (next, active, retired).
    pub const MAX_KEYS: usize = 64;

    /// Builds a set, refusing duplicate `kid`s.
    pub fn new(keys: Vec<Jwk>) -> Result<Self, JwksError> {
        if keys.len() > Self::MAX_KEYS {
            return Err(JwksError::TooManyKeys {
                count: keys.len(),
                max: Self::MAX_KEYS,
            });
        }
        let mut seen = HashSet::with_capacity(keys.len());
        for jwk in &keys {
            if !seen.insert(jwk.kid()) {
                return Err(JwksError::DuplicateKid(jwk.kid().clone()));
            }
        }
        Ok(Self { keys })
    }

    /// Parses `{"keys": [...]}`, refusing the whole set if any key is unusable.
    pub fn from_json(bytes: &[u8]) -> Result<Self, JwksError> {
        let raw: RawJwks = strict_json::from_slice(bytes)?;
        if raw.keys.len() > Self::MAX_KEYS {
            return Err(JwksError::TooManyKeys {
                count: raw.keys.len(),
                max: Self::MAX_KEYS,
            });
        }
        let keys = raw
            .keys
            .into_iter()
            .enumerate()
            .map(|(index, k)| {
                k.into_jwk()
                    .map_err(|error| JwksError::Key { index, error })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys)
    }

    /// The set as JSON text.
    pub fn to_json(&self) -> String {
        let raw = RawJwks {
            keys: self.keys.iter().map(Jwk::to_raw).collect(),
        };
        serde_json::to_string(&raw).unwrap_or_default()
    }

    /// The keys, in publication order.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// The key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid().as_str() == kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    #[test]
    fn duplicate_kid_is_refused() {
        let json = format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{X}","kid":"a"}},{{"kty":"OKP","crv":"Ed25519","x":"{X}","kid":"a"}}]}}"#
        );
        assert!(matches!(
            Jwks::from_json(json.as_bytes()),
            Err(JwksError::DuplicateKid(_))
        ));
    }

    #[test]
    fn one_bad_key_refuses_the_set() {
        let json = format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{X}"}},{{"kty":"oct","k":"c2VjcmV0"}}]}}"#
        );
        assert!(matches!(
            Jwks::from_json(json.as_bytes()),
            Err(JwksError::Key { index: 1, .. })
        ));
    }

    #[test]
    fn round_trip_through_json() {
        let json = format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{X}"}}]}}"#);
        let set = Jwks::from_json(json.as_bytes()).unwrap();
        let again = Jwks::from_json(set.to_json().as_bytes()).unwrap();
        assert_eq!(set, again);
        assert!(
            again
                .get("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
                .is_some()
        );
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert!(matches!(
            Jwks::from_json(b"\xff\x00"),
            Err(JwksError::Json(_))
        ));
        assert!(matches!(Jwks::from_json(b"{}"), Err(JwksError::Json(_))));
        assert!(matches!(
            Jwks::from_json(br#"{"keys":[],"keys":[]}"#),
            Err(JwksError::Json(JsonError::DuplicateMember { .. }))
        ));
    }
}
