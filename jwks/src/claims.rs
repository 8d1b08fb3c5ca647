//! Access-token claims (RFC 9068 profile, SPEC "Tokens").

use std::fmt;

use std::borrow::Cow;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::scope::ScopeError;
use crate::strict_json::{self, JsonError, MemberSet, NoDuplicates, Text};
use crate::{
    ApiKeyId, Audience, ClientId, IdError, Issuer, Jkt, Jti, ScopeSet, TenantId, UnixTime,
};

/// Why a claims set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimsError {
    /// Not a JSON object, a duplicate member, or a claim of the wrong JSON type.
    #[error("claims: {0}")]
    Json(#[from] JsonError),
    /// A required claim is absent.
    #[error("required claim `{0}` is missing")]
    Missing(&'static str),
    /// A claim is present but its value is not acceptable.
    #[error("claim `{claim}` is invalid: {reason}")]
    Invalid {
        /// The claim.
        claim: &'static str,
        /// Why.
        reason: String,
    },
    /// `aud` lists several audiences; a keymint token names exactly one.
    #[error("claim `aud` names {0} audiences, exactly one is allowed")]
    AudienceCount(usize),
}

/// DPoP confirmation (RFC 9449 §6.1): the token is bound to the key with this thumbprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Confirmation {
    /// The SHA-256 JWK thumbprint of the client's DPoP key.
    pub jkt: Jkt,
}

/// The claims of a keymint access token. Every field but `nbf` and `cnf` is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// Issuer URL.
    pub iss: Issuer,
    /// The API key ID the token was minted with.
    pub sub: ApiKeyId,
    /// The one audience (serialized as a string).
    pub aud: Audience,
    /// Expiry.
    pub exp: UnixTime,
    /// Issued at.
    pub iat: UnixTime,
    /// Not before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<UnixTime>,
    /// Unique token ID.
    pub jti: Jti,
    /// OAuth2 client ID (the API key ID).
    pub client_id: ClientId,
    /// Granted scopes.
    pub scope: ScopeSet,
    /// The tenant the key belongs to.
    pub tenant: TenantId,
    /// DPoP binding, when the token is sender-constrained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The claims as read in one pass; member names are checked for duplicates as they stream by.
#[derive(Default)]
struct RawClaims<'a> {
    iss: Option<Cow<'a, str>>,
    sub: Option<Cow<'a, str>>,
    aud: Option<Vec<Cow<'a, str>>>,
    exp: Option<u64>,
    iat: Option<u64>,
    nbf: Option<u64>,
    jti: Option<Cow<'a, str>>,
    client_id: Option<Cow<'a, str>>,
    scope: Option<Cow<'a, str>>,
    tenant: Option<Cow<'a, str>>,
    cnf: Option<RawCnf<'a>>,
}

impl<'de> Deserialize<'de> for RawClaims<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawClaims<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JWT claims object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawClaims<'de>, A::Error> {
                let mut c = RawClaims::default();
                let mut seen = MemberSet::default();
                while let Some(Text(name)) = map.next_key::<Text<'de>>()? {
                    let text = match &*name {
                        "iss" => Some(&mut c.iss),
                        "sub" => Some(&mut c.sub),
                        "jti" => Some(&mut c.jti),
                        "client_id" => Some(&mut c.client_id),
                        "scope" => Some(&mut c.scope),
                        "tenant" => Some(&mut c.tenant),
                        _ => None,
                    };
                    if let Some(slot) = text {
                        *slot = Some(map.next_value::<Text<'de>>()?.0);
                    } else {
                        match &*name {
                            "exp" => c.exp = Some(map.next_value()?),
                            "iat" => c.iat = Some(map.next_value()?),
                            "nbf" => c.nbf = Some(map.next_value()?),
                            "aud" => c.aud = Some(map.next_value::<OneOrMany<'de>>()?.0),
                            "cnf" => c.cnf = Some(map.next_value()?),
                            _ => {
                                map.next_value::<NoDuplicates>()?;
                            }
                        }
                    }
                    seen.insert(name)?;
                }
                Ok(c)
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Default)]
struct RawCnf<'a> {
    jkt: Option<Cow<'a, str>>,
}

impl<'de> Deserialize<'de> for RawCnf<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawCnf<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a confirmation object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawCnf<'de>, A::Error> {
                let mut c = RawCnf::default();
                let mut seen = MemberSet::default();
                while let Some(Text(name)) = map.next_key::<Text<'de>>()? {
                    if name == "jkt" {
                        c.jkt = Some(map.next_value::<Text<'de>>()?.0);
                    } else {
                        map.next_value::<NoDuplicates>()?;
                    }
                    seen.insert(name)?;
                }
                Ok(c)
            }
        }
        d.deserialize_map(V)
    }
}

/// `aud` as a string or an array of strings (RFC 7519 §4.1.3).
struct OneOrMany<'a>(Vec<Cow<'a, str>>);

impl<'de> Deserialize<'de> for OneOrMany<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<OneOrMany<'de>, E> {
                Ok(OneOrMany(vec![Cow::Borrowed(v)]))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany<'de>, E> {
                Ok(OneOrMany(vec![Cow::Owned(v.to_owned())]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some(Text(s)) = seq.next_element::<Text<'de>>()? {
                    // Bound the work an attacker-chosen array can cause.
                    if out.len() >= 16 {
                        return Err(de::Error::custom("too many audiences"));
                    }
                    out.push(s);
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(V)
    }
}

fn id<T>(
    claim: &'static str,
    v: Option<Cow<'_, str>>,
    parse: fn(String) -> Result<T, IdError>,
) -> Result<T, ClaimsError> {
    let v = v.ok_or(ClaimsError::Missing(claim))?;
    parse(v.into_owned()).map_err(|e| ClaimsError::Invalid {
        claim,
        reason: e.to_string(),
    })
}

impl Claims {
    /// Parses a claims set, refusing duplicate members; each missing claim is its own error.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ClaimsError> {
        let raw: RawClaims<'_> = strict_json::from_slice_single_pass(bytes)?;
        let aud = {
            let list = raw.aud.ok_or(ClaimsError::Missing("aud"))?;
            if list.len() != 1 {
                return Err(ClaimsError::AudienceCount(list.len()));
            }
            id("aud", list.into_iter().next(), Audience::new)?
        };
        let scope = raw.scope.ok_or(ClaimsError::Missing("scope"))?;
        let scope = ScopeSet::parse(&scope).map_err(|e: ScopeError| ClaimsError::Invalid {
            claim: "scope",
            reason: e.to_string(),
        })?;
        let cnf = match raw.cnf {
            None => None,
            Some(RawCnf { jkt }) => {
                let jkt = jkt
                    .and_then(|j| Jkt::new(j.into_owned()).ok())
                    .ok_or_else(|| ClaimsError::Invalid {
                        claim: "cnf",
                        reason: "`cnf.jkt` must be a base64url SHA-256 thumbprint".into(),
                    })?;
                Some(Confirmation { jkt })
            }
        };
        Ok(Self {
            iss: id("iss", raw.iss, Issuer::new)?,
            sub: id("sub", raw.sub, ApiKeyId::new)?,
            aud,
            exp: UnixTime(raw.exp.ok_or(ClaimsError::Missing("exp"))?),
            iat: UnixTime(raw.iat.ok_or(ClaimsError::Missing("iat"))?),
            nbf: raw.nbf.map(UnixTime),
            jti: id("jti", raw.jti, Jti::new)?,
            client_id: id("client_id", raw.client_id, ClientId::new)?,
            scope,
            tenant: id("tenant", raw.tenant, TenantId::new)?,
            cnf,
        })
    }

    /// The claims as compact JSON, for tests and tools. (Every field is a string or a number, so
    /// serializing cannot fail; the signing path still handles the error itself rather than
    /// relying on that.)
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const FULL: &str = r#"{"iss":"https://issuer.example","sub":"K1","aud":"https://api.example","exp":200,"iat":100,"nbf":100,"jti":"j1","client_id":"K1","scope":"a b","tenant":"acme"}"#;

    #[test]
    fn full_claims_parse() {
        let c = Claims::from_json(FULL.as_bytes()).unwrap();
        assert_eq!(c.aud.as_str(), "https://api.example");
        assert_eq!(c.exp, UnixTime(200));
        assert_eq!(c.scope.len(), 2);
        assert!(c.cnf.is_none());
    }

    #[test]
    fn aud_as_one_element_array_is_accepted_and_two_are_not() {
        let one = FULL.replace(
            r#""aud":"https://api.example""#,
            r#""aud":["https://api.example"]"#,
        );
        assert!(Claims::from_json(one.as_bytes()).is_ok());
        let two = FULL.replace(r#""aud":"https://api.example""#, r#""aud":["a","b"]"#);
        assert_eq!(
            Claims::from_json(two.as_bytes()),
            Err(ClaimsError::AudienceCount(2))
        );
    }

    #[test]
    fn each_required_claim_missing_is_its_own_error() {
        let full: serde_json::Map<String, serde_json::Value> = serde_json::from_str(FULL).unwrap();
        for claim in [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "jti",
            "client_id",
            "scope",
            "tenant",
        ] {
            let mut m = full.clone();
            m.remove(claim);
            let bytes = serde_json::to_vec(&m).unwrap();
            match Claims::from_json(&bytes) {
                Err(ClaimsError::Missing(c)) => assert_eq!(c, claim),
                other => panic!("{claim}: {other:?}"),
            }
        }
        let mut m = full.clone();
        m.remove("nbf");
        assert!(Claims::from_json(&serde_json::to_vec(&m).unwrap()).is_ok());
    }

    #[test]
    fn duplicate_claim_is_refused() {
        let dup = FULL.replace(r#""tenant":"acme""#, r#""tenant":"acme","tenant":"other""#);
        assert!(matches!(
            Claims::from_json(dup.as_bytes()),
            Err(ClaimsError::Json(JsonError::DuplicateMember { .. }))
        ));
    }

    #[test]
    fn fractional_or_negative_times_are_refused() {
        for bad in [r#""exp":200.5"#, r#""exp":-1"#, r#""exp":"200""#] {
            let s = FULL.replace(r#""exp":200"#, bad);
            assert!(
                matches!(Claims::from_json(s.as_bytes()), Err(ClaimsError::Json(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn cnf_needs_a_thumbprint() {
        let with = FULL.replace(
            r#""tenant":"acme""#,
            r#""tenant":"acme","cnf":{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}"#,
        );
        assert!(Claims::from_json(with.as_bytes()).unwrap().cnf.is_some());
        let bad = FULL.replace(r#""tenant":"acme""#, r#""tenant":"acme","cnf":{}"#);
        assert!(matches!(
            Claims::from_json(bad.as_bytes()),
            Err(ClaimsError::Invalid { claim: "cnf", .. })
        ));
    }

    #[test]
    fn not_an_object_is_refused() {
        for bad in ["[]", "1", "\"x\"", "null", ""] {
            assert!(
                matches!(Claims::from_json(bad.as_bytes()), Err(ClaimsError::Json(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn serialize_round_trips() {
        let c = Claims::from_json(FULL.as_bytes()).unwrap();
        assert_eq!(Claims::from_json(&c.to_json()).unwrap(), c);
    }
}
