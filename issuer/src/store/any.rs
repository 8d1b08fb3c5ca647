//! [`DbStore`]: the store the database URL names, chosen at run time.

use std::time::Duration;

use keymint_jwks::{ApiKeyId, Kid, Scope, TenantId};

use super::{
    Applied, AuditEntry, AuditQuery, AuditRecord, ChangePage, Claim, KeyRecord, PgStore,
    RevocationRecord, ScopeRecord, SigningKeyRecord, SigningKeyState, SqliteStore, Store,
    StoreResult, StoredList, Successor, TenantPolicyRecord, TenantSummary, UsageCount, UsageEntry,
    UsageLine, Visibility, WebhookDelivery,
};

/// SQLite or Postgres. An enum rather than a trait object (the [`Store`] trait's async methods
/// are not object safe) or a second copy of the whole server generic over each backend.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DbStore {
    /// The embedded database.
    Sqlite(SqliteStore),
    /// A shared database for replicas.
    Postgres(PgStore),
}

impl DbStore {
    /// Whether several processes may serve from this database at once (and so must supply the
    /// server secrets rather than generate them).
    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }
}

/// Runs `$e` with `$s` bound to whichever store `$self` holds.
macro_rules! on {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            DbStore::Sqlite($s) => $e,
            DbStore::Postgres($s) => $e,
        }
    };
}

/// Writes [`DbStore`]'s [`Store`] impl from the one list of methods: each call goes to the
/// backend it holds.
macro_rules! dispatch {
    ($($(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $out:ty;)*) => {
        impl Store for DbStore {
            $(async fn $name(&self $(, $arg: $ty)*) -> $out {
                on!(self, s => s.$name($($arg),*).await)
            })*
        }
    };
}

store_methods!(dispatch);
