//! Rows as the store reads and writes them. Plain data; the domain gives them meaning.

use keymint_jwks::{ApiKeyId, Jti, Kid, RevocationTarget, Scope, TenantId};

/// An API key row. Never holds the secret, only its keyed hash. `Debug` leaves the hash out.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct KeyRecord {
    /// Key ID (base62).
    pub key_id: String,
    /// `sk` or `pk`.
    pub kind: String,
    /// `live` or `test`.
    pub env: String,
    /// Tenant.
    pub tenant: String,
    /// HMAC-SHA256 of the secret under the pepper.
    pub secret_hash: Vec<u8>,
    /// Space-separated scopes.
    pub scopes: String,
    /// Space-separated audiences.
    pub audiences: String,
    /// Default token lifetime, seconds.
    pub default_ttl: i64,
    /// Maximum token lifetime, seconds.
    pub max_ttl: i64,
    /// Key expiry.
    pub expires_at: i64,
    /// Space-separated CIDRs; empty means any.
    pub allow_ips: String,
    /// Space-separated origins.
    pub allow_origins: String,
    /// `N/s` or `N/m`.
    pub rate_limit: Option<String>,
    /// Label.
    pub label: Option<String>,
    /// Owner, for audit.
    pub owner: Option<String>,
    /// Admin key.
    pub is_admin: bool,
    /// Created.
    pub created_at: i64,
    /// Last used (flushed in batches).
    pub last_used_at: Option<i64>,
    /// Revoked.
    pub revoked_at: Option<i64>,
    /// The successor after a rotation.
    pub rotated_to: Option<String>,
}

// Written by hand so that a record logged by mistake never prints what only the database should
// hold: the keyed hash of a secret (an offline guessing target with the pepper) or the encrypted
// private signing key.
impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("key_id", &self.key_id)
            .field("kind", &self.kind)
            .field("env", &self.env)
            .field("tenant", &self.tenant)
            .field("secret_hash", &"<redacted>")
            .field("scopes", &self.scopes)
            .field("audiences", &self.audiences)
            .field("expires_at", &self.expires_at)
            .field("is_admin", &self.is_admin)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("encrypted_pkcs8", &"<redacted>")
            .field("state", &self.state)
            .field("activate_at", &self.activate_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// How often one key was used, or refused, from one client and origin in one hour: issuances
/// and refusals are counted here, never stored one row each.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct UsageCount {
    /// The key ID; `unknown` for an ID no key has; empty when none could be read.
    pub key_id: String,
    /// Start of the hour (Unix seconds).
    pub bucket: i64,
    /// `token.issue`, `token.request`, `admin.auth`.
    pub action: String,
    /// `granted` or `refused`.
    pub outcome: String,
    /// The refusal's reason code; empty when granted.
    pub reason: String,
    /// The client network: an IPv4 address or an IPv6 /64, or `other`.
    pub client: String,
    /// The `Origin` header, empty when none, or `other`.
    pub origin: String,
    /// How many.
    pub count: i64,
    /// First in the hour.
    pub first_seen: i64,
    /// Last in the hour.
    pub last_seen: i64,
}

/// A stored usage row with its ID (`migrate` copies them in ID order).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageEntry {
    /// Row ID.
    pub id: i64,
    /// The row.
    #[sqlx(flatten)]
    pub count: UsageCount,
}

/// One line of a key's usage over a period: its hourly counts summed per client, origin, action,
/// outcome and reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct UsageLine {
    /// The client network: an IPv4 address or an IPv6 /64, or `other`.
    pub client: String,
    /// The `Origin` header, empty when none, or `other`.
    pub origin: String,
    /// `token.issue`, `token.request`.
    pub action: String,
    /// `granted` or `refused`.
    pub outcome: String,
    /// The refusal's reason code; empty when granted.
    pub reason: String,
    /// How many.
    pub count: i64,
    /// First seen in the period.
    pub first_seen: i64,
    /// Last seen in the period.
    pub last_seen: i64,
}

/// A revocation entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRecord {
    /// What is revoked (stored as its `kind` and `target` columns).
    pub target: RevocationTarget,
    /// When.
    pub revoked_at: i64,
    /// When the entry can go.
    pub drop_after: i64,
}

/// A revocation entry as its row holds it; typed once, on the way out of the store.
#[derive(sqlx::FromRow)]
pub(super) struct RevocationRow {
    kind: String,
    target: String,
    revoked_at: i64,
    drop_after: i64,
}

impl TryFrom<RevocationRow> for RevocationRecord {
    type Error = super::StoreError;

    fn try_from(r: RevocationRow) -> Result<Self, Self::Error> {
        let bad = |e: keymint_jwks::IdError| super::StoreError::Corrupt(Box::new(e));
        let target = match r.kind.as_str() {
            "key" => RevocationTarget::Key(ApiKeyId::new(r.target).map_err(bad)?),
            "jti" => RevocationTarget::Jti(Jti::new(r.target).map_err(bad)?),
            "tenant" => RevocationTarget::Tenant(TenantId::new(r.target).map_err(bad)?),
            "kid" => RevocationTarget::Kid(Kid::new(r.target).map_err(bad)?),
            other => {
                return Err(super::StoreError::Corrupt(
                    format!("revocation entry of unknown kind {other:?}").into(),
                ));
            }
        };
        Ok(Self {
            target,
            revoked_at: r.revoked_at,
            drop_after: r.drop_after,
        })
    }
}

/// Whether a conditional write changed anything. Callers must look: `#[must_use]`.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// It did.
    Changed,
    /// Nothing matched: the row is missing, or already in the state asked for.
    Unchanged,
}

impl Applied {
    /// Whether it changed anything.
    pub fn changed(self) -> bool {
        self == Self::Changed
    }

    /// From the rows a statement affected.
    pub(super) fn from_rows(rows: u64) -> Self {
        if rows == 0 {
            Self::Unchanged
        } else {
            Self::Changed
        }
    }
}

/// What claiming a DPoP proof ID in the shared table found.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First seen: the proof may be used.
    First,
    /// Seen before, by this process or another: a replay.
    Replay,
}

impl Claim {
    /// Whether this was the first claim.
    pub fn is_first(self) -> bool {
        self == Self::First
    }
}

/// Whether publishable keys may mint a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Marked public by an admin: publishable keys may hold it.
    Public,
    /// Only secret keys may hold it (the default).
    Private,
}

impl Visibility {
    /// [`Visibility::Public`] when `public`, else [`Visibility::Private`] (a JSON flag or a
    /// command-line switch).
    pub fn public_if(public: bool) -> Self {
        if public { Self::Public } else { Self::Private }
    }

    /// Whether it is [`Visibility::Public`] (the database's `public` column).
    pub fn is_public(self) -> bool {
        self == Self::Public
    }
}

/// A declared scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRecord {
    /// The scope.
    pub name: Scope,
    /// Whether publishable keys may hold it.
    pub visibility: Visibility,
}

/// A signed revocation list as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredList {
    /// Serial.
    pub serial: i64,
    /// The exact JWS.
    pub jws: String,
    /// Signed at.
    pub iat: i64,
    /// Expires.
    pub exp: i64,
    /// The newest change it reflects.
    pub as_of: i64,
}

/// A stored audit record with its ID (the pagination cursor: IDs only grow).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Row ID.
    pub id: i64,
    /// The record.
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub record: AuditRecord,
}

/// Which audit records to read: newest first, `limit` at most, older than `before` when given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only records with an ID below this (the previous page's last ID).
    pub before: Option<i64>,
    /// Only this action (`token.issue`, `key.revoke`, ...).
    pub action: Option<String>,
    /// Only this outcome.
    pub outcome: Option<String>,
    /// Only this API key.
    pub key_id: Option<String>,
    /// Only this tenant.
    pub tenant: Option<String>,
    /// Only records at or after this time.
    pub since: Option<i64>,
    /// Only records before this time.
    pub until: Option<i64>,
    /// At most this many (the caller bounds it).
    pub limit: i64,
}

/// A tenant as the keys name it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TenantSummary {
    /// Tenant.
    pub tenant: String,
    /// Keys of the tenant, in any state.
    pub keys: i64,
    /// Keys neither revoked nor expired at the time asked.
    pub active_keys: i64,
}

/// What a tenant wants done when one of its keys is reported leaked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TenantPolicyRecord {
    /// Tenant.
    pub tenant: String,
    /// `revoke` (revoke the key at once) or `flag` (only audit the report).
    pub on_leak: String,
    /// When it was last set (Unix seconds).
    pub updated_at: i64,
    /// Where the tenant's owner hears of a leaked key.
    pub webhook_url: Option<String>,
    /// The webhook's HMAC secret, sealed under the encryption key (never shown).
    #[serde(skip)]
    pub webhook_secret: Option<Vec<u8>>,
}

/// A call to a tenant's webhook, due or done.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WebhookDelivery {
    /// Row ID (0 before it is stored).
    pub id: i64,
    /// Tenant.
    pub tenant: String,
    /// Where it goes.
    pub url: String,
    /// The JSON body (no secret in it).
    pub body: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due (Unix seconds).
    pub next_at: i64,
    /// When it was enqueued.
    pub created_at: i64,
    /// What the last failed attempt said.
    pub last_error: Option<String>,
}

/// Signing key lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningKeyState {
    /// Published, not yet signing.
    Next,
    /// Signing.
    Active,
    /// Published until every token it signed has expired.
    Retired,
    /// Gone from the JWKS.
    Removed,
    /// Compromised: gone from the JWKS at once and listed as revoked.
    Revoked,
}

impl SigningKeyState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retired => "retired",
            Self::Removed => "removed",
            Self::Revoked => "revoked",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "next" => Self::Next,
            "active" => Self::Active,
            "retired" => Self::Retired,
            "removed" => Self::Removed,
            "revoked" => Self::Revoked,
            _ => return None,
        })
    }
}

impl TryFrom<String> for SigningKeyState {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("unknown signing key state {s:?}"))
    }
}

/// A signing key row. `Debug` leaves the encrypted private key out.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SigningKeyRecord {
    /// RFC 7638 thumbprint.
    #[sqlx(try_from = "String")]
    pub kid: Kid,
    /// `EdDSA` or `ES256`.
    pub alg: String,
    /// Nonce || AES-256-GCM(PKCS#8) with the kid as associated data.
    pub encrypted_pkcs8: Vec<u8>,
    /// The public JWK as JSON.
    pub public_jwk: String,
    /// Lifecycle state.
    #[sqlx(try_from = "String")]
    pub state: SigningKeyState,
    /// Created.
    pub created_at: i64,
    /// When a `next` key may start signing.
    pub activate_at: i64,
    /// When it stopped signing.
    pub retired_at: Option<i64>,
    /// When a retired key leaves the JWKS.
    pub remove_after: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

/// One row of the change feed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Change {
    /// Monotonic ID.
    pub id: i64,
    /// `key`, `revocation`, `signing_key`, `list`.
    pub kind: String,
    /// What changed (a key ID, a kid, ...).
    pub target: String,
}

/// A read of the change feed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangePage {
    /// Changes after the one asked from, oldest first.
    pub changes: Vec<Change>,
    /// Changes after the one asked from may have been pruned before this read (the reader was
    /// away longer than the feed's retention): what they said is unknown, so the reader must
    /// re-read everything it derives from the feed.
    pub pruned_past: bool,
}

/// One audit record. Never holds a secret or a whole token.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, sqlx::FromRow, utoipa::ToSchema,
)]
pub struct AuditRecord {
    /// When.
    pub at: i64,
    /// `token.issue`, `key.create`, `key.revoke`, ...
    pub action: String,
    /// `granted`, `refused`, `ok`.
    pub outcome: String,
    /// Why, when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who acted (an admin's OS user or admin key ID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The API key involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The tenant involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Scopes requested or granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<String>,
    /// Client IP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// `Origin` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Anything else (a jti, a kid, an audience).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_key_and_signing_key_rows_leaves_the_secret_parts_out() {
        let key = KeyRecord {
            key_id: "k1".into(),
            kind: "sk".into(),
            env: "live".into(),
            tenant: "acme".into(),
            secret_hash: vec![0xAB; 32],
            scopes: "a".into(),
            audiences: "https://api.test".into(),
            default_ttl: 600,
            max_ttl: 900,
            expires_at: 1,
            allow_ips: String::new(),
            allow_origins: String::new(),
            rate_limit: None,
            label: None,
            owner: None,
            is_admin: false,
            created_at: 0,
            last_used_at: None,
            revoked_at: None,
            rotated_to: None,
        };
        let shown = format!("{key:?}");
        assert!(!shown.contains("171"), "{shown}");
        assert!(
            shown.contains("<redacted>") && shown.contains("k1"),
            "{shown}"
        );
        let signing = SigningKeyRecord {
            kid: keymint_jwks::Kid::new("kid1").unwrap(),
            alg: "EdDSA".into(),
            encrypted_pkcs8: vec![0xCD; 48],
            public_jwk: "{}".into(),
            state: SigningKeyState::Active,
            created_at: 0,
            activate_at: 0,
            retired_at: None,
            remove_after: None,
            revoked_at: None,
        };
        let shown = format!("{signing:?}");
        assert!(!shown.contains("205"), "{shown}");
        assert!(
            shown.contains("<redacted>") && shown.contains("kid1"),
            "{shown}"
        );
        // What holds them inherits the redaction.
        let nested = format!("{:?}", vec![key]);
        assert!(!nested.contains("171"), "{nested}");
    }
}
