//! JSON parsing that refuses duplicate object members.
//!
//! `serde_json` keeps the last of two members with the same name, and other JSON parsers keep the
//! first: a token or key set with duplicate members can mean different things to different
//! readers. keymint refuses such documents outright, at every nesting level.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};

/// Why a JSON document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// An object had two members with the same name.
    #[error("duplicate JSON member {member:?}")]
    DuplicateMember {
        /// The repeated name, cut to 32 characters.
        member: String,
    },
    /// The document is not valid JSON or does not have the expected shape.
    #[error("{0}")]
    Invalid(String),
}

/// Parses `bytes` as `T` after checking that no object in it repeats a member name.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    reject_duplicates(bytes)?;
    serde_json::from_slice(bytes).map_err(|e| JsonError::Invalid(describe(&e)))
}

/// Checks that `bytes` is one JSON value in which no object repeats a member name.
pub fn reject_duplicates(bytes: &[u8]) -> Result<(), JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de::Deserialize::deserialize(&mut de)
        .map(|NoDuplicates| ())
        .and_then(|()| de.end())
        .map_err(|e| map_error(&e))
}

/// A serde error message that never echoes input values: only the category and position.
fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "I/O error",
        Category::Syntax => "JSON syntax error",
        Category::Eof => "JSON ends early",
        Category::Data => "JSON has the wrong shape",
    };
    // Data errors from our own types name the field, not the value; keep them for operators.
    if e.classify() == Category::Data {
        let msg = e.to_string();
        let msg = msg.split(" at line").next().unwrap_or_default();
        let cut: String = msg.chars().take(160).collect();
        return format!("{what}: {cut}");
    }
    format!("{what} at column {}", e.column())
}

const DUPLICATE_PREFIX: &str = "keymint-duplicate-member:";

/// Any JSON value, checked for duplicate members at every depth and otherwise ignored.
pub(crate) struct NoDuplicates;

impl<'de> de::Deserialize<'de> for NoDuplicates {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicatesVisitor)
    }
}

/// A JSON string, borrowed from the input when it has no escapes.
pub(crate) struct Text<'de>(pub(crate) Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// The member names of one object seen so far.
#[derive(Default)]
pub(crate) struct MemberSet<'de> {
    // Most objects here are small (a JWS header, a claims set): a linear scan beats hashing.
    small: Vec<Cow<'de, str>>,
    big: Option<HashSet<Cow<'de, str>>>,
}

impl<'de> MemberSet<'de> {
    /// Records `name`, or fails if the object already had it.
    pub(crate) fn insert<E: de::Error>(&mut self, name: Cow<'de, str>) -> Result<(), E> {
        let duplicate = match self.big.as_mut() {
            Some(set) => set.contains(&name),
            None => self.small.contains(&name),
        };
        if duplicate {
            let cut: String = name.chars().take(32).collect();
            return Err(E::custom(format_args!("{DUPLICATE_PREFIX}{cut}")));
        }
        match self.big.as_mut() {
            Some(set) => {
                set.insert(name);
            }
            None => {
                self.small.push(name);
                if self.small.len() > 16 {
                    self.big = Some(self.small.drain(..).collect());
                }
            }
        }
        Ok(())
    }
}

/// Parses `bytes` in one pass as a `T` whose own `Deserialize` rejects duplicate members (with
/// [`MemberSet`]), mapping the errors like [`from_slice`].
pub(crate) fn from_slice_single_pass<'de, T: de::Deserialize<'de>>(
    bytes: &'de [u8],
) -> Result<T, JsonError> {
    serde_json::from_slice(bytes).map_err(|e| map_error(&e))
}

fn map_error(e: &serde_json::Error) -> JsonError {
    let msg = e.to_string();
    match msg.strip_prefix(DUPLICATE_PREFIX) {
        Some(rest) => JsonError::DuplicateMember {
            member: rest.split(" at line").next().unwrap_or_default().to_owned(),
        },
        None => JsonError::Invalid(describe(e)),
    }
}

struct NoDuplicatesVisitor;

impl<'de> Visitor<'de> for NoDuplicatesVisitor {
    type Value = NoDuplicates;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NoDuplicates, A::Error> {
        let mut seen = MemberSet::default();
        while let Some(Text(name)) = map.next_key::<Text<'de>>()? {
            seen.insert(name)?;
            map.next_value::<NoDuplicates>()?;
        }
        Ok(NoDuplicates)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NoDuplicates, A::Error> {
        while seq.next_element::<NoDuplicates>()?.is_some() {}
        Ok(NoDuplicates)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_unit<E: de::Error>(self) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_top_level_member_is_refused() {
        let err = reject_duplicates(br#"{"a":1,"b":2,"a":3}"#).unwrap_err();
        assert_eq!(err, JsonError::DuplicateMember { member: "a".into() });
    }

    #[test]
    fn duplicate_nested_member_is_refused() {
        assert!(matches!(
            reject_duplicates(br#"{"cnf":{"jkt":"x","jkt":"y"}}"#),
            Err(JsonError::DuplicateMember { .. })
        ));
    }

    #[test]
    fn escaped_duplicate_is_refused() {
        // "\u0061" is "a": the same member spelled differently.
        assert!(matches!(
            reject_duplicates(br#"{"a":1,"\u0061":2}"#),
            Err(JsonError::DuplicateMember { .. })
        ));
    }

    #[test]
    fn many_members_switch_to_a_set_and_still_catch_duplicates() {
        let mut doc = String::from("{");
        for i in 0..40 {
            doc.push_str(&format!("\"m{i}\":{i},"));
        }
        doc.push_str("\"m3\":0}");
        assert!(matches!(
            reject_duplicates(doc.as_bytes()),
            Err(JsonError::DuplicateMember { .. })
        ));
    }

    #[test]
    fn distinct_members_and_trailing_garbage() {
        assert!(reject_duplicates(br#"{"a":[{"a":1},{"a":2}],"b":null}"#).is_ok());
        assert!(matches!(
            reject_duplicates(br#"{"a":1} x"#),
            Err(JsonError::Invalid(_))
        ));
    }
}
