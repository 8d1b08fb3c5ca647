//! Persistence. Only this module sees sqlx; the domain talks to the [`Store`] trait.

#[macro_use]
mod api;
mod any;
#[cfg(test)]
mod flaky;
mod postgres;
mod records;
mod sql;
mod sqlite;
#[cfg(test)]
pub(crate) mod tests;

pub use any::DbStore;
pub use api::Store;
#[cfg(test)]
pub use flaky::FlakyStore;
pub use postgres::PgStore;
pub use records::{
    Applied, AuditEntry, AuditQuery, AuditRecord, Change, ChangePage, Claim, KeyRecord,
    RevocationRecord, ScopeRecord, SigningKeyRecord, SigningKeyState, StoredList,
    TenantPolicyRecord, TenantSummary, UsageCount, UsageEntry, UsageLine, Visibility,
    WebhookDelivery,
};
pub use sqlite::{PeekAt, SqliteStore};

/// Checks a database URL (`--database-url`, `KEYMINT_DATABASE_URL`) without connecting: its
/// scheme, and that the driver can read the rest. A URL that cannot work is the operator's to fix
/// (a usage error, exit 2), not a database to wait for: reported as "the database is
/// unavailable" (exit 5), a supervisor would restart keymint forever. The message leaves the URL
/// out (it may hold a password).
pub fn check_url(url: &str) -> Result<(), String> {
    use std::str::FromStr;
    let read = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        sqlx::postgres::PgConnectOptions::from_str(url).map(drop)
    } else if url.starts_with("sqlite:") {
        sqlx::sqlite::SqliteConnectOptions::from_str(url).map(drop)
    } else {
        return Err("must start with postgres://, postgresql:// or sqlite:".into());
    };
    read.map_err(|e| {
        format!(
            "is not a database URL keymint can use ({e}); special characters in a password \
             must be percent-encoded (# is %23)"
        )
    })
}

/// The error underneath a [`StoreError`], kept whole (sqlx's own source chain included) but
/// without naming sqlx outside `store/`.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be reached, is locked beyond the busy timeout, or failed. Says
    /// what the database said; the chain under it stays reachable through `source()`.
    #[error(transparent)]
    Unavailable(Cause),
    /// A row that must be unique already exists.
    #[error("already exists")]
    Conflict,
    /// A stored value could not be decoded.
    #[error("stored data is corrupt")]
    Corrupt(#[source] Cause),
}

/// Schema migrations that failed, with sqlx's error under them.
#[derive(Debug, thiserror::Error)]
#[error("schema migrations failed")]
struct Migrations(#[source] sqlx::migrate::MigrateError);

impl StoreError {
    /// An unavailable database, said in the store's own words.
    pub fn unavailable(why: impl Into<String>) -> Self {
        Self::Unavailable(why.into().into())
    }
}

/// Result alias for store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// Maps a sqlx error: a unique violation is a [`StoreError::Conflict`], anything else means the
/// database did not do what was asked.
fn unavailable(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => StoreError::Corrupt(Box::new(e)),
        _ => StoreError::Unavailable(Box::new(e)),
    }
}

/// The key that takes over from a revoked active signing key, in the revocation's transaction.
#[derive(Debug, Clone, Copy)]
pub enum Successor<'a> {
    /// The published *next* key (by `kid`) becomes active.
    Promote(&'a keymint_jwks::Kid),
    /// A new key, inserted already active.
    Insert(&'a SigningKeyRecord),
}

/// The most changes [`Store::changes_since`] returns at once.
pub const FEED_PAGE: i64 = 10_000;
