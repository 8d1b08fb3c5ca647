//! [`DbStore`]: the store the database URL names, chosen at run time.

use super::{
    AuditEntry, AuditQuery, AuditRecord, Change, KeyRecord, PgStore, RefusalCount,
    RevocationRecord, SigningKeyRecord, SigningKeyState, SqliteStore, Store, StoreResult,
    StoredList, Successor, TenantSummary,
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

impl Store for DbStore {
    async fn change_hint(&self, max: std::time::Duration) {
        on!(self, s => s.change_hint(max).await);
    }
    async fn ping(&self) -> StoreResult<()> {
        on!(self, s => s.ping().await)
    }
    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        on!(self, s => s.setting(name).await)
    }
    async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        on!(self, s => s.set_setting(name, value).await)
    }
    async fn insert_key(&self, key: &KeyRecord, audit: &AuditRecord) -> StoreResult<()> {
        on!(self, s => s.insert_key(key, audit).await)
    }
    async fn insert_keys(&self, keys: &[KeyRecord], audit: &AuditRecord) -> StoreResult<()> {
        on!(self, s => s.insert_keys(keys, audit).await)
    }
    async fn key(&self, key_id: &str) -> StoreResult<Option<KeyRecord>> {
        on!(self, s => s.key(key_id).await)
    }
    async fn keys(&self, tenant: Option<&str>) -> StoreResult<Vec<KeyRecord>> {
        on!(self, s => s.keys(tenant).await)
    }
    async fn tenants(&self, now: i64) -> StoreResult<Vec<TenantSummary>> {
        on!(self, s => s.tenants(now).await)
    }
    async fn revoke_key(
        &self,
        key_id: &str,
        entry: &RevocationRecord,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        on!(self, s => s.revoke_key(key_id, entry, audit).await)
    }
    async fn rotate_key(
        &self,
        old_key_id: &str,
        grace_until: i64,
        successor: &KeyRecord,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        on!(self, s => s.rotate_key(old_key_id, grace_until, successor, audit).await)
    }
    async fn revoke_tenant(
        &self,
        tenant: &str,
        entry: &RevocationRecord,
        audit: &AuditRecord,
    ) -> StoreResult<u64> {
        on!(self, s => s.revoke_tenant(tenant, entry, audit).await)
    }
    async fn add_revocation(
        &self,
        entry: &RevocationRecord,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        on!(self, s => s.add_revocation(entry, audit).await)
    }
    async fn touch_keys(&self, used: &[(String, i64)]) -> StoreResult<()> {
        on!(self, s => s.touch_keys(used).await)
    }
    async fn revocations(&self, now: i64) -> StoreResult<Vec<RevocationRecord>> {
        on!(self, s => s.revocations(now).await)
    }
    async fn latest_list(&self) -> StoreResult<Option<StoredList>> {
        on!(self, s => s.latest_list().await)
    }
    async fn insert_list(&self, list: &StoredList) -> StoreResult<()> {
        on!(self, s => s.insert_list(list).await)
    }
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        on!(self, s => s.signing_keys().await)
    }
    async fn insert_signing_key(
        &self,
        key: &SigningKeyRecord,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<()> {
        on!(self, s => s.insert_signing_key(key, audit).await)
    }
    async fn transition_signing_key(
        &self,
        kid: &str,
        from: SigningKeyState,
        to: SigningKeyState,
        at: i64,
        remove_after: Option<i64>,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        on!(self, s => s.transition_signing_key(kid, from, to, at, remove_after, audit).await)
    }
    async fn revoke_signing_key(
        &self,
        kid: &str,
        successor: Option<Successor<'_>>,
        entry: &RevocationRecord,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        on!(self, s => s.revoke_signing_key(kid, successor, entry, audit).await)
    }
    async fn put_scope(&self, name: &str, public: bool, audit: &AuditRecord) -> StoreResult<()> {
        on!(self, s => s.put_scope(name, public, audit).await)
    }
    async fn scopes(&self) -> StoreResult<Vec<(String, bool)>> {
        on!(self, s => s.scopes().await)
    }
    async fn publishable_origins(&self, now: i64) -> StoreResult<Vec<String>> {
        on!(self, s => s.publishable_origins(now).await)
    }
    async fn claim_dpop_proof(&self, id: &str, until: i64, now: i64) -> StoreResult<bool> {
        on!(self, s => s.claim_dpop_proof(id, until, now).await)
    }
    async fn last_change(&self) -> StoreResult<i64> {
        on!(self, s => s.last_change().await)
    }
    async fn changes_since(&self, after: i64) -> StoreResult<Vec<Change>> {
        on!(self, s => s.changes_since(after).await)
    }
    async fn list_changed_since(&self, after: i64) -> StoreResult<bool> {
        on!(self, s => s.list_changed_since(after).await)
    }
    async fn insert_audit(&self, records: &[AuditRecord]) -> StoreResult<()> {
        on!(self, s => s.insert_audit(records).await)
    }
    async fn audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        on!(self, s => s.audit(query).await)
    }
    async fn add_refusals(&self, counts: &[RefusalCount]) -> StoreResult<()> {
        on!(self, s => s.add_refusals(counts).await)
    }
    async fn refusals(&self, since: i64, limit: i64) -> StoreResult<Vec<RefusalCount>> {
        on!(self, s => s.refusals(since, limit).await)
    }
}
