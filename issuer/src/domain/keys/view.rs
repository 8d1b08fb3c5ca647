//! A key as admins see it: every field but the secret, with its state at a given time.

use keymint_jwks::UnixTime;
use serde::Serialize;

use crate::domain::unix;
use crate::store::KeyRecord;

/// A key as shown to admins: never a secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    /// Key ID.
    pub key_id: String,
    /// `sk` / `pk`.
    pub kind: String,
    /// `live` / `test`.
    pub env: String,
    /// Tenant.
    pub tenant: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Audiences.
    pub audiences: Vec<String>,
    /// Default token lifetime, seconds.
    pub ttl: i64,
    /// Maximum token lifetime, seconds.
    pub max_ttl: i64,
    /// Expiry.
    pub expires_at: i64,
    /// Allowed networks.
    pub allow_ips: Vec<String>,
    /// Allowed browser origins.
    pub allow_origins: Vec<String>,
    /// Rate limit.
    pub rate_limit: Option<String>,
    /// Label.
    pub label: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Created.
    pub created_at: i64,
    /// Last used (updated in batches).
    pub last_used_at: Option<i64>,
    /// `active`, `revoked` or `expired`.
    pub state: &'static str,
    /// Revoked at.
    pub revoked_at: Option<i64>,
    /// Successor after rotation.
    pub rotated_to: Option<String>,
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

impl KeyView {
    /// The admin view of a record at `now`.
    pub fn from_record(r: &KeyRecord, now: UnixTime) -> Self {
        let state = if r.revoked_at.is_some() {
            "revoked"
        } else if r.expires_at <= unix(now) {
            "expired"
        } else {
            "active"
        };
        Self {
            key_id: r.key_id.clone(),
            kind: r.kind.clone(),
            env: r.env.clone(),
            tenant: r.tenant.clone(),
            scopes: words(&r.scopes),
            audiences: words(&r.audiences),
            ttl: r.default_ttl,
            max_ttl: r.max_ttl,
            expires_at: r.expires_at,
            allow_ips: words(&r.allow_ips),
            allow_origins: words(&r.allow_origins),
            rate_limit: r.rate_limit.clone(),
            label: r.label.clone(),
            owner: r.owner.clone(),
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            state,
            revoked_at: r.revoked_at,
            rotated_to: r.rotated_to.clone(),
        }
    }
}
