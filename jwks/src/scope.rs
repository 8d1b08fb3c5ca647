//! OAuth2 scopes (RFC 6749 §3.3): a `Scope` is one scope-token, a `ScopeSet` the space-separated
//! `scope` claim.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::IdError;
use crate::ids::check_id;

/// One scope: 1 to 128 characters from RFC 6749's scope-token alphabet
/// (`%x21 / %x23-5B / %x5D-7E`: visible ASCII except `"` and `\`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(Box<str>);

fn scope_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e)
}

impl Scope {
    /// Longest accepted scope.
    pub const MAX_LEN: usize = 128;

    /// Parses one scope.
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s: String = s.into();
        check_id(
            "scope",
            &s,
            Self::MAX_LEN,
            "visible ASCII except \" and \\",
            scope_char,
        )?;
        Ok(Self(s.into_boxed_str()))
    }

    /// The scope as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this scope is in the reserved `admin:` namespace.
    pub fn is_admin(&self) -> bool {
        self.0.starts_with("admin:")
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({:?})", &*self.0)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Scope {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::new(s)
    }
}

/// Why a `scope` string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// One of the scopes is invalid.
    #[error("scope #{index}: {error}")]
    Scope {
        /// Position in the list.
        index: usize,
        /// Why.
        error: IdError,
    },
    /// Scopes are separated by exactly one space, with none leading or trailing.
    #[error("scopes must be separated by single spaces")]
    Separator,
    /// More scopes than [`ScopeSet::MAX_SCOPES`].
    #[error("{count} scopes, the maximum is {max}")]
    TooMany {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// A set of scopes, written as one space-separated string (the `scope` claim).
///
/// Held as a sorted vector without repeats rather than a `BTreeSet`: sets are small (a key's or a
/// token's scopes), and a B-tree's smallest node is a 280-byte block for a single scope. The
/// issuer keeps a parsed set for each of up to 100,000 cached keys and copies one into every
/// token it signs; a vector is one exact-size block, cheaper to copy and to read.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    /// The most scopes one token or key may carry.
    pub const MAX_SCOPES: usize = 256;

    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `"a b c"`. The empty string is the empty set; repeated scopes collapse.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        if s.is_empty() {
            return Ok(Self(Vec::new()));
        }
        // Sized once: a vector grown by pushes is then shrunk by a reallocation (the verifier
        // parses the scope claim of every fresh token; the issuer a key's scopes per grant).
        let parts = s.bytes().filter(|&b| b == b' ').count() + 1;
        let mut set = Vec::with_capacity(parts.min(Self::MAX_SCOPES));
        for (index, part) in s.split(' ').enumerate() {
            if part.is_empty() {
                return Err(ScopeError::Separator);
            }
            if index >= Self::MAX_SCOPES {
                return Err(ScopeError::TooMany {
                    count: s.split(' ').count(),
                    max: Self::MAX_SCOPES,
                });
            }
            set.push(Scope::new(part).map_err(|error| ScopeError::Scope { index, error })?);
        }
        Ok(Self::sorted(set))
    }

    /// `scopes` sorted, without repeats, in a block of their size.
    fn sorted(mut scopes: Vec<Scope>) -> Self {
        scopes.sort_unstable();
        scopes.dedup();
        scopes.shrink_to_fit();
        Self(scopes)
    }

    /// The scopes in `values`, each of which may hold several separated by whitespace: repeated
    /// command-line flags, or a JSON array. Repeated scopes collapse.
    pub fn from_values<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Self, ScopeError> {
        let parts: Vec<&str> = values.into_iter().flat_map(str::split_whitespace).collect();
        if parts.len() > Self::MAX_SCOPES {
            return Err(ScopeError::TooMany {
                count: parts.len(),
                max: Self::MAX_SCOPES,
            });
        }
        parts
            .into_iter()
            .enumerate()
            .map(|(index, s)| Scope::new(s).map_err(|error| ScopeError::Scope { index, error }))
            .collect()
    }

    /// Whether `scope` is in the set.
    pub fn contains(&self, scope: &Scope) -> bool {
        self.0.binary_search(scope).is_ok()
    }

    /// Whether every scope of `other` is in this set.
    pub fn is_superset(&self, other: &ScopeSet) -> bool {
        other.0.iter().all(|s| self.contains(s))
    }

    /// Adds a scope; false if it was there already.
    pub fn insert(&mut self, scope: Scope) -> bool {
        match self.0.binary_search(&scope) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, scope);
                true
            }
        }
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// Number of scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Self::sorted(iter.into_iter().collect())
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(s.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopeSet({:?})", self.to_string())
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn from_values_splits_each_value_on_whitespace_and_caps_the_count() {
        let set = ScopeSet::from_values(["a b", "c", "  a  "]).unwrap();
        assert_eq!(set.to_string(), "a b c");
        assert!(matches!(
            ScopeSet::from_values(["a", "b\"c"]),
            Err(ScopeError::Scope { index: 1, .. })
        ));
        let many: Vec<String> = (0..=ScopeSet::MAX_SCOPES)
            .map(|n| format!("s{n}"))
            .collect();
        assert!(matches!(
            ScopeSet::from_values(many.iter().map(String::as_str)),
            Err(ScopeError::TooMany { count: 257, .. })
        ));
    }

    #[test]
    fn parse_accepts_rfc6749_scope_tokens() {
        let set = ScopeSet::parse("read:orders write admin:keys").unwrap();
        assert_eq!(set.len(), 3);
        assert!(set.contains(&Scope::new("write").unwrap()));
        assert_eq!(set.to_string(), "admin:keys read:orders write");
    }

    #[test]
    fn parse_refuses_bad_separators_and_characters() {
        assert_eq!(ScopeSet::parse("a  b"), Err(ScopeError::Separator));
        assert_eq!(ScopeSet::parse(" a"), Err(ScopeError::Separator));
        assert_eq!(ScopeSet::parse("a "), Err(ScopeError::Separator));
        assert!(matches!(
            ScopeSet::parse("a \"b\""),
            Err(ScopeError::Scope { index: 1, .. })
        ));
        assert!(matches!(
            ScopeSet::parse("a\tb"),
            Err(ScopeError::Scope { .. })
        ));
    }

    #[test]
    fn empty_string_is_the_empty_set() {
        assert!(ScopeSet::parse("").unwrap().is_empty());
    }

    fn scope_strategy() -> impl Strategy<Value = String> {
        "[!#-\\[\\]-~]{1,12}"
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(scopes in proptest::collection::vec(scope_strategy(), 0..10)) {
            let set: ScopeSet = scopes.iter().map(|s| Scope::new(s.clone()).unwrap()).collect();
            let again = ScopeSet::parse(&set.to_string()).unwrap();
            prop_assert_eq!(set, again);
        }

        #[test]
        fn parse_never_panics(s in ".{0,64}") {
            let _ = ScopeSet::parse(&s);
        }

        /// The sorted vector behaves as the `BTreeSet` it replaced: same members in the same
        /// order whatever the input order and repeats, same answers to membership and subset.
        #[test]
        fn behaves_as_a_sorted_set(a in proptest::collection::vec(scope_strategy(), 0..8),
                                   b in proptest::collection::vec(scope_strategy(), 0..8),
                                   extra in proptest::collection::vec(scope_strategy(), 0..4)) {
            use std::collections::BTreeSet;
            let scopes = |v: &[String]| v.iter().map(|s| Scope::new(s.clone()).unwrap()).collect::<Vec<_>>();
            let mut set: ScopeSet = scopes(&a).into_iter().collect();
            let mut model: BTreeSet<Scope> = scopes(&a).into_iter().collect();
            for s in scopes(&extra) {
                prop_assert_eq!(set.insert(s.clone()), model.insert(s));
            }
            prop_assert!(set.iter().eq(model.iter()));
            prop_assert_eq!(set.len(), model.len());
            let other: ScopeSet = scopes(&b).into_iter().collect();
            let other_model: BTreeSet<Scope> = scopes(&b).into_iter().collect();
            prop_assert_eq!(set.is_superset(&other), model.is_superset(&other_model));
            for s in scopes(&b) {
                prop_assert_eq!(set.contains(&s), model.contains(&s));
            }
            let mut reversed = scopes(&a);
            reversed.reverse();
            reversed.extend(scopes(&a));
            let again: ScopeSet = reversed.into_iter().collect();
            prop_assert_eq!(&again, &scopes(&a).into_iter().collect::<ScopeSet>());
            prop_assert_eq!(ScopeSet::parse(&set.to_string()).unwrap(), set);
        }

        #[test]
        fn superset_agrees_with_contains(a in proptest::collection::vec(scope_strategy(), 0..6),
                                         b in proptest::collection::vec(scope_strategy(), 0..6)) {
            let a: ScopeSet = a.into_iter().map(|s| Scope::new(s).unwrap()).collect();
            let b: ScopeSet = b.into_iter().map(|s| Scope::new(s).unwrap()).collect();
            prop_assert_eq!(a.is_superset(&b), b.iter().all(|s| a.contains(s)));
        }
    }
}
