//! Persistence. Only this module sees sqlx; the domain talks to the [`Store`] trait.

use std::future::Future;

mod any;
mod flaky;
mod postgres;
mod records;
mod sql;
mod sqlite;
#[cfg(test)]
pub(crate) mod tests;

pub use any::DbStore;
pub use flaky::FlakyStore;
pub use postgres::PgStore;
pub use records::{
    AuditEntry, AuditQuery, AuditRecord, Change, KeyRecord, RefusalCount, RevocationRecord,
    SigningKeyRecord, SigningKeyState, StoredList, TenantSummary,
};
pub use sqlite::SqliteStore;

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
    Promote(&'a str),
    /// A new key, inserted already active.
    Insert(&'a SigningKeyRecord),
}

/// The most changes [`Store::changes_since`] returns at once.
pub const FEED_PAGE: i64 = 10_000;

/// Everything keymint persists. Implementations: [`SqliteStore`], [`PgStore`], and [`DbStore`]
/// (either, chosen by the database URL at run time).
///
/// Every admin mutation takes its [`AuditRecord`] and writes it, and a [`Change`], in the same
/// transaction as the change itself.
pub trait Store: Send + Sync + 'static {
    /// Checks that the database answers.
    fn ping(&self) -> impl Future<Output = StoreResult<()>> + Send;

    /// A setting.
    fn setting(&self, name: &str) -> impl Future<Output = StoreResult<Option<String>>> + Send;
    /// Sets a setting.
    fn set_setting(&self, name: &str, value: &str) -> impl Future<Output = StoreResult<()>> + Send;

    /// Inserts a new API key.
    fn insert_key(
        &self,
        key: &KeyRecord,
        audit: &AuditRecord,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Inserts many API keys in one transaction, with one audit record (bulk seeding).
    fn insert_keys(
        &self,
        keys: &[KeyRecord],
        audit: &AuditRecord,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// One API key.
    fn key(&self, key_id: &str) -> impl Future<Output = StoreResult<Option<KeyRecord>>> + Send;
    /// API keys, optionally of one tenant, newest first.
    fn keys(
        &self,
        tenant: Option<&str>,
    ) -> impl Future<Output = StoreResult<Vec<KeyRecord>>> + Send;
    /// Tenants named by customer (non-admin) keys, with their key counts at `now`.
    fn tenants(&self, now: i64) -> impl Future<Output = StoreResult<Vec<TenantSummary>>> + Send;
    /// Revokes a key and records the revocation entry. False if the key does not exist or was
    /// already revoked.
    fn revoke_key(
        &self,
        key_id: &str,
        entry: &RevocationRecord,
        audit: &AuditRecord,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Inserts `successor` and cuts the old key's expiry to `grace_until`.
    fn rotate_key(
        &self,
        old_key_id: &str,
        grace_until: i64,
        successor: &KeyRecord,
        audit: &AuditRecord,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Revokes every key of a tenant and records the tenant entry; returns the number of keys.
    fn revoke_tenant(
        &self,
        tenant: &str,
        entry: &RevocationRecord,
        audit: &AuditRecord,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Records a revocation entry (token or signing key) on its own.
    fn add_revocation(
        &self,
        entry: &RevocationRecord,
        audit: &AuditRecord,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Records last-used times, in one transaction.
    fn touch_keys(&self, used: &[(String, i64)]) -> impl Future<Output = StoreResult<()>> + Send;

    /// Revocation entries still in force at `now` (`drop_after` not passed).
    fn revocations(
        &self,
        now: i64,
    ) -> impl Future<Output = StoreResult<Vec<RevocationRecord>>> + Send;
    /// The newest signed list.
    fn latest_list(&self) -> impl Future<Output = StoreResult<Option<StoredList>>> + Send;
    /// Stores a signed list. `Conflict` if that serial exists (another process signed first).
    fn insert_list(&self, list: &StoredList) -> impl Future<Output = StoreResult<()>> + Send;

    /// All signing keys that are not removed.
    fn signing_keys(&self) -> impl Future<Output = StoreResult<Vec<SigningKeyRecord>>> + Send;
    /// Inserts a signing key.
    fn insert_signing_key(
        &self,
        key: &SigningKeyRecord,
        audit: Option<&AuditRecord>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Moves a signing key to a new state, only if it is in `from` (so that concurrent processes
    /// do each transition once). Returns whether it moved.
    fn transition_signing_key(
        &self,
        kid: &str,
        from: SigningKeyState,
        to: SigningKeyState,
        at: i64,
        remove_after: Option<i64>,
        audit: Option<&AuditRecord>,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Revokes a signing key at once: out of the JWKS, private key destroyed, and a `kid`
    /// revocation entry, in one transaction. False if no such key is published.
    fn revoke_signing_key(
        &self,
        kid: &str,
        successor: Option<Successor<'_>>,
        entry: &RevocationRecord,
        audit: &AuditRecord,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Declares a scope (public or not); idempotent.
    fn put_scope(
        &self,
        name: &str,
        public: bool,
        audit: &AuditRecord,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Declared scopes and whether each is public.
    fn scopes(&self) -> impl Future<Output = StoreResult<Vec<(String, bool)>>> + Send;
    /// Every origin allowed by a publishable key that is neither revoked nor expired at `now`.
    fn publishable_origins(
        &self,
        now: i64,
    ) -> impl Future<Output = StoreResult<Vec<String>>> + Send;

    /// Records a DPoP proof ID until `until` (dropping a few long-expired ones on the way).
    /// False if it was recorded before: a replay, whichever process saw it first.
    fn claim_dpop_proof(
        &self,
        id: &str,
        until: i64,
        now: i64,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Resolves when another process may just have written to the change feed, or after `max`
    /// at the latest: the change watcher waits on this between reads of the feed. Backends that
    /// can be told (Postgres: `LISTEN`/`NOTIFY`) wake early; the others just wait `max`.
    fn change_hint(&self, max: std::time::Duration) -> impl Future<Output = ()> + Send;
    /// The newest change ID.
    fn last_change(&self) -> impl Future<Output = StoreResult<i64>> + Send;
    /// Changes after `after`, oldest first, at most [`FEED_PAGE`] of them: read on from the last.
    fn changes_since(&self, after: i64) -> impl Future<Output = StoreResult<Vec<Change>>> + Send;
    /// Whether anything that changes the revocation list (a revocation or a signing-key change)
    /// came after change `after`, however many other changes came too.
    fn list_changed_since(&self, after: i64) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Appends audit records in one transaction.
    fn insert_audit(&self, records: &[AuditRecord])
    -> impl Future<Output = StoreResult<()>> + Send;
    /// Adds refusal counts (one transaction), summing with the rows already there.
    fn add_refusals(&self, counts: &[RefusalCount])
    -> impl Future<Output = StoreResult<()>> + Send;
    /// Refusal counts from hour `since` on, newest first, at most `limit`.
    fn refusals(
        &self,
        since: i64,
        limit: i64,
    ) -> impl Future<Output = StoreResult<Vec<RefusalCount>>> + Send;
    /// Stored audit records matching `query`, newest first.
    fn audit(
        &self,
        query: &AuditQuery,
    ) -> impl Future<Output = StoreResult<Vec<AuditEntry>>> + Send;
}
