//! What the admin API answers with, besides the key and settings views of their own modules.

use keymint_jwks::ApiKeyId;
use serde::Serialize;

use crate::domain::DomainError;
use crate::domain::keys::KeyView;
use crate::domain::refusal::RequestRefusal;
use crate::store::{AuditEntry, KeyRecord, SigningKeyRecord};

/// A declared scope.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScopeView {
    /// Scope name.
    pub name: String,
    /// Whether publishable (browser) keys may carry it.
    pub public: bool,
}

/// A revocation entry in force.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RevocationView {
    /// `key`, `jti`, `tenant` or `kid`.
    pub kind: String,
    /// What is revoked.
    pub id: String,
    /// When.
    pub revoked_at: i64,
    /// When the entry leaves the list.
    pub drop_after: i64,
}

/// A signing key as shown to admins: never its private part.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SigningKeyView {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// `EdDSA` or `ES256`.
    pub alg: String,
    /// `next`, `active`, `retired` or `revoked`.
    pub state: &'static str,
    /// Created.
    pub created_at: i64,
    /// When it signs (or signed) first.
    pub activate_at: i64,
    /// When it stopped signing.
    pub retired_at: Option<i64>,
    /// When it leaves the JWKS.
    pub remove_after: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

impl From<&SigningKeyRecord> for SigningKeyView {
    fn from(k: &SigningKeyRecord) -> Self {
        Self {
            kid: k.kid.to_string(),
            alg: k.alg.clone(),
            state: k.state.as_str(),
            created_at: k.created_at,
            activate_at: k.activate_at,
            retired_at: k.retired_at,
            remove_after: k.remove_after,
            revoked_at: k.revoked_at,
        }
    }
}

/// One page of audit records, newest first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// The records.
    pub items: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

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
    pub(super) fn after(record: &KeyRecord) -> Option<Self> {
        Some(Self {
            created_at: record.created_at,
            key_id: ApiKeyId::new(record.key_id.as_str()).ok()?,
        })
    }

    /// As the store takes it.
    pub(super) fn position(&self) -> (i64, &str) {
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
