//! JWS compact serialization (RFC 7515 §7.1): splitting, strict base64url, the protected header.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

use crate::strict_json::{self, JsonError, MemberSet, NoDuplicates, Text};

/// `typ` of an access token (RFC 9068 §2.1).
pub const TYP_ACCESS_TOKEN: &str = "at+jwt";
/// `typ` of a signed revocation list. Its own media type keeps a list from ever passing as a token.
pub const TYP_REVOCATION_LIST: &str = "keymint-revocations+jwt";

/// Why a compact JWS could not be taken apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwsError {
    /// The input is longer than the caller's limit; nothing was parsed.
    #[error("JWS is {len} bytes, the limit is {max}")]
    Oversize {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A compact JWS has exactly three dot-separated segments.
    #[error("JWS has {found} segments, 3 expected")]
    SegmentCount {
        /// Segments found.
        found: usize,
    },
    /// A segment is not unpadded base64url (padding, whitespace, `+` or `/` included).
    #[error("JWS {segment} is not unpadded base64url")]
    BadBase64 {
        /// `header`, `payload` or `signature`.
        segment: &'static str,
    },
    /// The signature has the wrong length for its algorithm.
    #[error("JWS signature is {actual} bytes, {expected} expected")]
    SignatureLength {
        /// The algorithm's length.
        expected: usize,
        /// The length seen.
        actual: usize,
    },
    /// The header is not a JSON object of the expected shape, or repeats a member.
    #[error("JWS header: {0}")]
    Header(JsonError),
    /// The header lacks a required member.
    #[error("JWS header has no `{0}`")]
    MissingHeader(&'static str),
    /// The header carries a member keymint never honours (`jku`, `x5u`, `jwk`, `x5c`, ...): a token
    /// must not tell the verifier where to find its key.
    #[error("JWS header member `{0}` is not accepted")]
    ForbiddenHeader(&'static str),
    /// The header lists critical extensions; keymint understands none.
    #[error("JWS header has a `crit` extension keymint does not understand")]
    UnknownCritical,
}

/// The three segments of a compact JWS, still encoded.
#[derive(Debug, Clone, Copy)]
pub struct Compact<'a> {
    /// base64url(protected header).
    pub header: &'a str,
    /// base64url(payload).
    pub payload: &'a str,
    /// base64url(signature).
    pub signature: &'a str,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a str,
}

impl<'a> Compact<'a> {
    /// Splits a compact JWS after checking its size, its segment count and that every segment
    /// uses only the base64url alphabet. This runs before anything is decoded, so a garbage input
    /// costs one linear scan.
    pub fn split(token: &'a str, max_len: usize) -> Result<Self, JwsError> {
        if token.len() > max_len {
            return Err(JwsError::Oversize {
                len: token.len(),
                max: max_len,
            });
        }
        // A branch-free check per byte (it vectorizes): cheap enough that garbage costs almost
        // nothing, and it makes
        // every later base64url decode of these segments unable to meet a foreign character.
        let all_valid = token
            .as_bytes()
            .iter()
            .fold(true, |ok, &b| ok & is_b64url_or_dot(b));
        if let Some(pos) = (!all_valid)
            .then(|| token.bytes().position(|b| !is_b64url_or_dot(b)))
            .flatten()
        {
            let dots_before = token
                .get(..pos)
                .map_or(0, |s| s.bytes().filter(|&b| b == b'.').count());
            return Err(JwsError::BadBase64 {
                segment: ["header", "payload", "signature"]
                    .get(dots_before)
                    .copied()
                    .unwrap_or("signature"),
            });
        }
        let mut parts = token.match_indices('.').map(|(i, _)| i);
        let (Some(d1), Some(d2), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(JwsError::SegmentCount {
                found: token.bytes().filter(|&b| b == b'.').count() + 1,
            });
        };
        let header = token.get(..d1).unwrap_or_default();
        let payload = token.get(d1 + 1..d2).unwrap_or_default();
        let signature = token.get(d2 + 1..).unwrap_or_default();
        let signing_input = token.get(..d2).unwrap_or_default();
        Ok(Self {
            header,
            payload,
            signature,
            signing_input,
        })
    }

    /// Decodes and checks the protected header.
    pub fn decode_header(&self) -> Result<Header, JwsError> {
        let bytes = decode_segment(self.header, "header")?;
        Header::from_json(&bytes)
    }

    /// Decodes the payload bytes.
    pub fn decode_payload(&self) -> Result<Vec<u8>, JwsError> {
        decode_segment(self.payload, "payload")
    }

    /// Decodes a 64-byte signature (Ed25519, or ES256 `r || s`) without allocating.
    pub fn decode_signature64(&self) -> Result<[u8; 64], JwsError> {
        let mut out = [0u8; 64];
        // 64 bytes are exactly 86 unpadded base64url characters.
        if self.signature.len() != 86 {
            let actual = self.signature.len() * 3 / 4;
            return Err(JwsError::SignatureLength {
                expected: 64,
                actual,
            });
        }
        match URL_SAFE_NO_PAD.decode_slice(self.signature, &mut out) {
            Ok(64) => Ok(out),
            Ok(actual) => Err(JwsError::SignatureLength {
                expected: 64,
                actual,
            }),
            Err(_) => Err(JwsError::BadBase64 {
                segment: "signature",
            }),
        }
    }
}

/// Whether `b` is in the base64url alphabet or is `.`. Branch-free so that the scan vectorizes.
#[inline(always)]
fn is_b64url_or_dot(b: u8) -> bool {
    let alpha = (b | 0x20).wrapping_sub(b'a') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    let punct = (b == b'-') | (b == b'_') | (b == b'.');
    alpha | digit | punct
}

/// Decodes one unpadded base64url segment, refusing non-canonical trailing bits.
pub fn decode_segment(seg: &str, segment: &'static str) -> Result<Vec<u8>, JwsError> {
    URL_SAFE_NO_PAD
        .decode(seg)
        .map_err(|_| JwsError::BadBase64 { segment })
}

/// Encodes bytes as unpadded base64url.
pub fn encode_segment(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The protected header members keymint reads. Everything else is ignored, except the members
/// that would make a verifier fetch or trust a key named by the token itself, which are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `alg`, as written. Never used to choose an algorithm, only compared with the key's.
    pub alg: String,
    /// `kid`, if present.
    pub kid: Option<String>,
    /// `typ`, if present.
    pub typ: Option<String>,
}

/// The header as read in one pass: member names are checked for duplicates as they stream by.
#[derive(Default)]
struct RawHeader<'a> {
    alg: Option<Cow<'a, str>>,
    kid: Option<Cow<'a, str>>,
    typ: Option<Cow<'a, str>>,
    crit: bool,
    forbidden: Option<&'static str>,
}

impl<'de> Deserialize<'de> for RawHeader<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawHeader<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JWS header object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeader<'de>, A::Error> {
                let mut h = RawHeader::default();
                let mut seen = MemberSet::default();
                while let Some(Text(name)) = map.next_key::<Text<'de>>()? {
                    let slot = match &*name {
                        "alg" => Some(&mut h.alg),
                        "kid" => Some(&mut h.kid),
                        "typ" => Some(&mut h.typ),
                        _ => None,
                    };
                    match slot {
                        Some(slot) => *slot = Some(map.next_value::<Text<'de>>()?.0),
                        None => {
                            match &*name {
                                "crit" => h.crit = true,
                                "jku" => h.forbidden = h.forbidden.or(Some("jku")),
                                "jwk" => h.forbidden = h.forbidden.or(Some("jwk")),
                                "x5u" => h.forbidden = h.forbidden.or(Some("x5u")),
                                "x5c" => h.forbidden = h.forbidden.or(Some("x5c")),
                                _ => {}
                            }
                            map.next_value::<NoDuplicates>()?;
                        }
                    }
                    seen.insert(name)?;
                }
                Ok(h)
            }
        }
        d.deserialize_map(V)
    }
}

impl Header {
    /// Parses a protected header: an object without duplicate members, with `alg`, and without
    /// `crit`, `jku`, `jwk`, `x5u` or `x5c`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, JwsError> {
        let raw: RawHeader<'_> =
            strict_json::from_slice_single_pass(bytes).map_err(JwsError::Header)?;
        if let Some(name) = raw.forbidden {
            return Err(JwsError::ForbiddenHeader(name));
        }
        if raw.crit {
            return Err(JwsError::UnknownCritical);
        }
        Ok(Self {
            alg: raw.alg.ok_or(JwsError::MissingHeader("alg"))?.into_owned(),
            kid: raw.kid.map(Cow::into_owned),
            typ: raw.typ.map(Cow::into_owned),
        })
    }
}

/// Whether a `typ` header names `expected` (RFC 9068 §4 / RFC 7515 §4.1.9): compared
/// case-insensitively, with or without the `application/` prefix.
pub fn typ_matches(typ: &str, expected: &str) -> bool {
    let typ = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => typ.get(12..).unwrap_or(""),
        _ => typ,
    };
    typ.eq_ignore_ascii_case(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_counts_segments() {
        assert_eq!(
            Compact::split("a.b", 100).unwrap_err(),
            JwsError::SegmentCount { found: 2 }
        );
        assert_eq!(
            Compact::split("a.b.c.d", 100).unwrap_err(),
            JwsError::SegmentCount { found: 4 }
        );
        let c = Compact::split("aa.bb.cc", 100).unwrap();
        assert_eq!(
            (c.header, c.payload, c.signature, c.signing_input),
            ("aa", "bb", "cc", "aa.bb")
        );
    }

    #[test]
    fn split_refuses_padding_whitespace_and_standard_alphabet() {
        for bad in ["a=.b.c", "a.b .c", "a.b+.c", "a.b/c.d", "a.b.c\n"] {
            assert!(
                matches!(Compact::split(bad, 100), Err(JwsError::BadBase64 { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn oversize_is_refused_before_scanning() {
        let long = "a".repeat(101);
        assert_eq!(
            Compact::split(&long, 100).unwrap_err(),
            JwsError::Oversize { len: 101, max: 100 }
        );
    }

    #[test]
    fn header_refuses_key_pointers_and_crit() {
        for (json, name) in [
            (r#"{"alg":"EdDSA","jku":"https://evil"}"#, "jku"),
            (r#"{"alg":"EdDSA","jwk":{}}"#, "jwk"),
            (r#"{"alg":"EdDSA","x5u":"https://evil"}"#, "x5u"),
            (r#"{"alg":"EdDSA","x5c":["AA"]}"#, "x5c"),
        ] {
            assert_eq!(
                Header::from_json(json.as_bytes()),
                Err(JwsError::ForbiddenHeader(name))
            );
        }
        assert_eq!(
            Header::from_json(br#"{"alg":"EdDSA","crit":["exp"],"exp":1}"#),
            Err(JwsError::UnknownCritical)
        );
        assert_eq!(
            Header::from_json(br#"{"typ":"at+jwt"}"#),
            Err(JwsError::MissingHeader("alg"))
        );
    }

    #[test]
    fn typ_comparison_follows_rfc9068() {
        assert!(typ_matches("at+jwt", TYP_ACCESS_TOKEN));
        assert!(typ_matches("AT+JWT", TYP_ACCESS_TOKEN));
        assert!(typ_matches("application/at+jwt", TYP_ACCESS_TOKEN));
        assert!(typ_matches("Application/AT+JWT", TYP_ACCESS_TOKEN));
        assert!(!typ_matches("JWT", TYP_ACCESS_TOKEN));
        assert!(!typ_matches(TYP_REVOCATION_LIST, TYP_ACCESS_TOKEN));
        assert!(!typ_matches("application/", TYP_ACCESS_TOKEN));
    }
}
