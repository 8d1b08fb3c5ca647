//! What granting copies from a key into every token (its tenant, audiences and scopes), held as
//! text inside the cached key's own block.
//!
//! With load spread over 10,000 keys each heap block a request reads is a cache miss, and these
//! were three to five blocks behind the key (a `String` for the tenant, a `Vec` of audiences and
//! one of scopes, each element a block of its own), each read only after the one pointing to it:
//! `perf annotate` of the token path put about a third of its extra time under that load on
//! those reads. Inline, they arrive with the key. Text longer than [`INLINE`] bytes (long
//! audience URLs, many scopes) goes to one heap block, as before.
//!
//! The typed values are built from the text when a token is granted: the parse costs tens of
//! nanoseconds, a miss to memory about a hundred.

use keymint_jwks::{Audience, ScopeSet, TenantId};
use smallvec::SmallVec;

/// Bytes held inline: a tenant, one audience URL and a few scopes fit; the key stays within the
/// allocator's 320-byte size class.
const INLINE: usize = 120;

/// A key's tenant, audiences and scopes, as text validated when the key was read.
#[derive(Debug)]
pub(super) struct GrantText {
    /// The tenant, then the audiences and then the scopes, each list space separated (the scopes
    /// in [`ScopeSet`]'s order, without repeats). All of it ASCII: each part was a validated
    /// [`TenantId`], [`Audience`] or [`keymint_jwks::Scope`], none of which admits a space.
    text: SmallVec<[u8; INLINE]>,
    /// Where the tenant ends and where the audiences end.
    tenant_end: u32,
    audiences_end: u32,
}

/// A key's grant text, split.
#[derive(Debug, Clone, Copy)]
pub(super) struct Parts<'a> {
    pub(super) tenant: &'a str,
    /// Space separated, in the order stored.
    audiences: &'a str,
    /// Space separated, sorted, without repeats: the scope claim as it is.
    pub(super) scopes: &'a str,
}

impl<'a> Parts<'a> {
    /// The key's audiences.
    pub(super) fn audiences(self) -> impl Iterator<Item = &'a str> {
        self.audiences.split(' ').filter(|a| !a.is_empty())
    }

    /// The key's only audience, if it has exactly one.
    pub(super) fn only_audience(self) -> Option<&'a str> {
        let mut all = self.audiences();
        let only = all.next()?;
        all.next().is_none().then_some(only)
    }

    /// The tenant as the token's claim.
    pub(super) fn tenant_id(self) -> Result<TenantId, keymint_jwks::IdError> {
        TenantId::new(self.tenant)
    }

    /// The key's scopes as a set.
    pub(super) fn scope_set(self) -> Result<ScopeSet, keymint_jwks::ScopeError> {
        ScopeSet::parse(self.scopes)
    }
}

impl GrantText {
    pub(super) fn new(tenant: &TenantId, audiences: &[Audience], scopes: &ScopeSet) -> Self {
        let mut text = SmallVec::new();
        text.extend_from_slice(tenant.as_str().as_bytes());
        let tenant_end = text.len();
        for (i, a) in audiences.iter().enumerate() {
            if i > 0 {
                text.push(b' ');
            }
            text.extend_from_slice(a.as_str().as_bytes());
        }
        let audiences_end = text.len();
        for s in scopes.iter() {
            text.push(b' ');
            text.extend_from_slice(s.as_str().as_bytes());
        }
        text.shrink_to_fit();
        Self {
            text,
            // A tenant is at most 128 bytes and a key's stored columns are far below 4 GiB.
            tenant_end: u32::try_from(tenant_end).unwrap_or(u32::MAX),
            audiences_end: u32::try_from(audiences_end).unwrap_or(u32::MAX),
        }
    }

    /// The tenant, the audiences and the scopes, from one check of the text.
    pub(super) fn parts(&self) -> Parts<'_> {
        // Built from validated ASCII identifiers only (see `text`), so this never fails.
        let all = std::str::from_utf8(&self.text).unwrap_or_default();
        let (t, a) = (self.tenant_end as usize, self.audiences_end as usize);
        Parts {
            tenant: all.get(..t).unwrap_or_default(),
            audiences: all.get(t..a).unwrap_or_default(),
            // After the space that ends the audiences.
            scopes: all.get(a + 1..).unwrap_or_default(),
        }
    }

    /// The tenant alone (its few bytes checked, not the whole text).
    pub(super) fn tenant(&self) -> &str {
        let bytes = self
            .text
            .get(..self.tenant_end as usize)
            .unwrap_or_default();
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    /// Reads the text's first and last bytes: see [`super::active_key::ActiveKey::warm`].
    pub(super) fn warm(&self) -> u8 {
        self.text.first().copied().unwrap_or(0) ^ self.text.last().copied().unwrap_or(0)
    }

    /// Whether the text is held inline (tests).
    #[cfg(test)]
    fn inline(&self) -> bool {
        !self.text.spilled()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn text(tenant: &str, audiences: &[&str], scopes: &str) -> GrantText {
        let audiences: Vec<Audience> = audiences
            .iter()
            .map(|a| Audience::new(*a).unwrap())
            .collect();
        GrantText::new(
            &TenantId::new(tenant).unwrap(),
            &audiences,
            &ScopeSet::parse(scopes).unwrap(),
        )
    }

    #[test]
    fn each_part_reads_back_as_it_was_given() {
        let t = text(
            "acme",
            &["https://api.test", "https://other.test"],
            "write read write",
        );
        assert_eq!(t.tenant(), "acme");
        let p = t.parts();
        assert_eq!(p.tenant, "acme");
        assert_eq!(
            p.audiences().collect::<Vec<_>>(),
            ["https://api.test", "https://other.test"]
        );
        assert_eq!(
            p.only_audience(),
            None,
            "two audiences: none is the only one"
        );
        assert_eq!(p.scopes, "read write", "sorted, without repeats");
        assert_eq!(
            p.scope_set().unwrap(),
            ScopeSet::parse("read write").unwrap()
        );
        assert_eq!(p.tenant_id().unwrap(), TenantId::new("acme").unwrap());
        assert!(t.inline());
    }

    #[test]
    fn a_key_without_scopes_or_audiences_reads_back_empty() {
        let empty = text("acme", &[], "");
        let t = empty.parts();
        assert_eq!(t.tenant, "acme");
        assert_eq!(t.audiences().count(), 0);
        assert_eq!(t.only_audience(), None);
        assert_eq!(t.scopes, "");
        assert!(t.scope_set().unwrap().is_empty());
        let one = text("acme", &["https://api.test"], "");
        assert_eq!(one.parts().only_audience(), Some("https://api.test"));
        assert_eq!(one.parts().scopes, "");
        let no_audience = text("acme", &[], "read");
        assert_eq!(no_audience.parts().audiences().count(), 0);
        assert_eq!(no_audience.parts().scopes, "read");
    }

    #[test]
    fn text_longer_than_the_inline_room_goes_to_the_heap_and_reads_the_same() {
        let long_aud = format!("https://{}.test/api", "a".repeat(200));
        let scopes: Vec<String> = (0..40).map(|i| format!("scope:{i:02}")).collect();
        let t = text("acme", &[&long_aud], &scopes.join(" "));
        assert!(!t.inline());
        let p = t.parts();
        assert_eq!(p.only_audience(), Some(long_aud.as_str()));
        assert_eq!(p.scope_set().unwrap().iter().count(), 40);
        assert_eq!(p.tenant, "acme");
    }

    proptest::proptest! {
        #[test]
        fn any_valid_key_reads_back_its_parts(
            tenant in "[A-Za-z0-9._:@-]{1,128}",
            audiences in proptest::collection::vec("[!-~]{1,60}", 0..4),
            scopes in proptest::collection::vec("[a-z:*]{1,20}", 0..12),
        ) {
            let auds: Vec<&str> = audiences.iter().map(String::as_str).collect();
            let set = ScopeSet::parse(&scopes.join(" ")).unwrap();
            let t = text(&tenant, &auds, &scopes.join(" "));
            proptest::prop_assert_eq!(t.tenant(), tenant.as_str());
            let p = t.parts();
            proptest::prop_assert_eq!(p.tenant, tenant.as_str());
            proptest::prop_assert_eq!(p.audiences().collect::<Vec<_>>(), auds);
            proptest::prop_assert_eq!(p.scope_set().unwrap(), set);
        }
    }
}
