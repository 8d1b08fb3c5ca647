//! Identifier newtypes, each parsed once at the edge.
//!
//! Every identifier that travels inside a token or a revocation list has its own type so that a
//! tenant can never be passed where an API key ID is expected, and so that the character set is
//! checked in exactly one place.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string was refused as an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The identifier was empty.
    #[error("{kind} is empty")]
    Empty {
        /// Which identifier type was being parsed.
        kind: &'static str,
    },
    /// The identifier was longer than its type allows.
    #[error("{kind} is {len} bytes long, the maximum is {max}")]
    TooLong {
        /// Which identifier type was being parsed.
        kind: &'static str,
        /// The length that was seen.
        len: usize,
        /// The maximum length for this type.
        max: usize,
    },
    /// The identifier does not have the one length its type has.
    #[error("{kind} is {len} bytes long, it must be {expected}")]
    WrongLength {
        /// Which identifier type was being parsed.
        kind: &'static str,
        /// The length that was seen.
        len: usize,
        /// The length this type has.
        expected: usize,
    },
    /// The identifier contained a character outside its alphabet.
    #[error("{kind} contains a character outside its alphabet ({alphabet})")]
    BadCharacter {
        /// Which identifier type was being parsed.
        kind: &'static str,
        /// A human description of the allowed alphabet.
        alphabet: &'static str,
    },
}

pub(crate) fn check_id(
    kind: &'static str,
    s: &str,
    max: usize,
    alphabet: &'static str,
    allowed: fn(u8) -> bool,
) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if s.len() > max {
        return Err(IdError::TooLong {
            kind,
            len: s.len(),
            max,
        });
    }
    if !s.bytes().all(allowed) {
        return Err(IdError::BadCharacter { kind, alphabet });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $max:expr, $alphabet:literal, $allowed:expr
        $(, exactly $exact:expr)?) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Box<str>);

        impl $name {
            /// Maximum length in bytes.
            pub const MAX_LEN: usize = $max;

            /// Parses and validates an identifier.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s: String = s.into();
                $(
                    if s.len() != $exact {
                        return Err(IdError::WrongLength {
                            kind: $kind,
                            len: s.len(),
                            expected: $exact,
                        });
                    }
                )?
                check_id($kind, &s, $max, $alphabet, $allowed)?;
                Ok(Self(s.into_boxed_str()))
            }

            /// Wraps a string that the caller has already proven valid.
            #[allow(dead_code)]
            pub(crate) fn from_validated(s: String) -> Self {
                debug_assert!(check_id($kind, &s, $max, $alphabet, $allowed).is_ok());
                Self(s.into_boxed_str())
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), &*self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                Self::new(s.into_owned()).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn base62(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn tenant_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'@')
}

fn jti_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')
}

fn base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')
}

fn visible_ascii(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

id_type!(
    /// The non-secret ID of an API key (base62). Safe to log; it is the `sub` of every token
    /// minted with that key.
    ApiKeyId, "API key ID", 64, "A-Z a-z 0-9", base62
);
id_type!(
    /// A tenant (customer account) name.
    TenantId, "tenant", 128, "A-Z a-z 0-9 - _ . : @", tenant_char
);
id_type!(
    /// A token ID (`jti`): unique per minted token.
    Jti, "jti", 128, "A-Z a-z 0-9 - _ . :", jti_char
);
id_type!(
    /// An OAuth2 client ID (`client_id` claim); keymint uses the API key ID.
    ClientId, "client_id", 128, "visible ASCII", visible_ascii
);
id_type!(
    /// A key ID (`kid`). keymint's own kids are RFC 7638 thumbprints; foreign key sets may use any
    /// visible ASCII.
    Kid, "kid", 256, "visible ASCII", visible_ascii
);
id_type!(
    /// A token issuer (`iss`), normally the issuer's base URL.
    Issuer, "issuer", 2048, "visible ASCII", visible_ascii
);
id_type!(
    /// One audience (`aud`): the API a token is meant for.
    Audience, "audience", 2048, "visible ASCII", visible_ascii
);
id_type!(
    /// An RFC 7638 JWK SHA-256 thumbprint, base64url without padding: what a sender-constrained
    /// token's `cnf.jkt` names (RFC 9449 §6.1), and what a DPoP proof's key hashes to.
    Jkt, "jkt", 43, "A-Z a-z 0-9 - _", base64url, exactly 43
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_id_accepts_base62_and_refuses_underscore() {
        assert!(ApiKeyId::new("AbC09").is_ok());
        assert!(matches!(
            ApiKeyId::new("a_b"),
            Err(IdError::BadCharacter { .. })
        ));
    }

    #[test]
    fn ids_refuse_empty_and_overlong() {
        assert!(matches!(TenantId::new(""), Err(IdError::Empty { .. })));
        assert!(matches!(
            Jti::new("a".repeat(129)),
            Err(IdError::TooLong { len: 129, .. })
        ));
    }

    #[test]
    fn a_jkt_is_43_base64url_characters_exactly() {
        assert!(Jkt::new("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I").is_ok());
        assert!(matches!(
            Jkt::new("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4"),
            Err(IdError::WrongLength { len: 42, .. })
        ));
        assert!(matches!(
            Jkt::new("0ZcOCORZNYy+DWpqq30jZyJGHTN0d2HglBV3uiguA4I"),
            Err(IdError::BadCharacter { .. })
        ));
    }

    #[test]
    fn deserialize_validates() {
        assert!(serde_json::from_str::<TenantId>("\"acme\"").is_ok());
        assert!(serde_json::from_str::<TenantId>("\"a b\"").is_err());
    }
}
