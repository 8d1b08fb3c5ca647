//! The key list a page at a time: a million keys are listed page by page (keyset pagination in
//! the list's order, newest first, then by key ID), never loaded at once.

use keymint_jwks::{ApiKeyId, TenantId, UnixTime};

use super::view::KeyView;
use crate::domain::DomainError;
use crate::domain::refusal::RequestRefusal;
use crate::store::{KeyRecord, Store};

/// The most keys one page of the key list holds, and the size of a page asked for without one.
pub const KEYS_PAGE: u32 = 1_000;

/// Where a page of the key list starts: after the key created at `created_at` with this ID (the
/// list runs newest first, then by key ID). Written `<created_at>.<key_id>`; opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCursor {
    created_at: i64,
    key_id: ApiKeyId,
}

impl KeyCursor {
    /// Reads a cursor the list wrote.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let bad = |why: &str| {
            DomainError::InvalidRequest(RequestRefusal::Unreadable {
                name: "after",
                why: format!("not a cursor from the key list: {why}"),
            })
        };
        let (created_at, key_id) = s.split_once('.').ok_or_else(|| bad("no '.'"))?;
        Ok(Self {
            created_at: created_at.parse().map_err(|_| bad("no creation time"))?,
            key_id: ApiKeyId::new(key_id).map_err(|_| bad("no key ID"))?,
        })
    }

    /// The cursor after `record`.
    fn after(record: &KeyRecord) -> Option<Self> {
        Some(Self {
            created_at: record.created_at,
            key_id: ApiKeyId::new(record.key_id.as_str()).ok()?,
        })
    }

    /// As the store takes it.
    fn position(&self) -> (i64, &str) {
        (self.created_at, self.key_id.as_str())
    }
}

impl std::fmt::Display for KeyCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.created_at, self.key_id)
    }
}

/// One page of the key list, newest first.
#[derive(Debug, Clone)]
pub struct KeysPage {
    /// The keys.
    pub keys: Vec<KeyView>,
    /// Where the next page starts; none on the last page.
    pub next: Option<KeyCursor>,
}

/// A page of keys, optionally of one tenant, newest first: at most `limit` (1 to [`KEYS_PAGE`]),
/// after `after`; the admin API and `keys list` page through the store with it.
pub async fn page<S: Store + ?Sized>(
    store: &S,
    tenant: Option<&TenantId>,
    after: Option<&KeyCursor>,
    limit: u32,
    now: UnixTime,
) -> Result<KeysPage, DomainError> {
    let limit = limit.clamp(1, KEYS_PAGE);
    // One more than asked: whether there is a next page, without an empty last one.
    let mut rows = store
        .keys_page(tenant, after.map(KeyCursor::position), i64::from(limit) + 1)
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Ok(KeysPage {
        next: if more {
            rows.last().and_then(KeyCursor::after)
        } else {
            None
        },
        keys: rows.iter().map(|r| KeyView::from_record(r, now)).collect(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_key_cursor_reads_back_what_it_writes_and_refuses_anything_else() {
        let c = KeyCursor::parse("1700000000.AbC123xyz0AbC123").unwrap();
        assert_eq!(c.to_string(), "1700000000.AbC123xyz0AbC123");
        assert_eq!(c.position(), (1_700_000_000, "AbC123xyz0AbC123"));
        for bad in ["", "1700000000", "x.AbC123", "1.", "1.not a key id!"] {
            assert!(
                matches!(KeyCursor::parse(bad), Err(DomainError::InvalidRequest(_))),
                "{bad:?}"
            );
        }
    }
}
