//! What the admin API answers with, besides the key and settings views of their own modules.

use serde::Serialize;

use crate::store::{AuditEntry, SigningKeyRecord};

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
