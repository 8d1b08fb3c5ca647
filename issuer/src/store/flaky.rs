//! A test double: wraps a real store and fails every call with `Unavailable` while switched off,
//! like a database that went away.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{
    AuditEntry, AuditQuery, AuditRecord, Change, KeyRecord, RefusalCount, RevocationRecord,
    SigningKeyRecord, SigningKeyState, Store, StoreError, StoreResult, StoredList, Successor,
    TenantSummary,
};

/// See the module docs.
#[derive(Debug, Clone)]
pub struct FlakyStore<S> {
    inner: S,
    down: Arc<AtomicBool>,
}

impl<S> FlakyStore<S> {
    /// Wraps `inner`, up.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            down: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Takes the database down (`true`) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> StoreResult<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::unavailable("injected: database down"))
        } else {
            Ok(())
        }
    }
}

impl<S: Store> Store for FlakyStore<S> {
    async fn ping(&self) -> StoreResult<()> {
        self.check()?;
        self.inner.ping().await
    }
    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        self.check()?;
        self.inner.setting(name).await
    }
    async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        self.check()?;
        self.inner.set_setting(name, value).await
    }
    async fn insert_key(&self, key: &KeyRecord, audit: &AuditRecord) -> StoreResult<()> {
        self.check()?;
        self.inner.insert_key(key, audit).await
    }
    async fn insert_keys(&self, keys: &[KeyRecord], audit: &AuditRecord) -> StoreResult<()> {
        self.check()?;
        self.inner.insert_keys(keys, audit).await
    }
    async fn key(&self, key_id: &str) -> StoreResult<Option<KeyRecord>> {
        self.check()?;
        self.inner.key(key_id).await
    }
    async fn keys(&self, tenant: Option<&str>) -> StoreResult<Vec<KeyRecord>> {
        self.check()?;
        self.inner.keys(tenant).await
    }
    async fn revoke_key(
        &self,
        key_id: &str,
        entry: &RevocationRecord,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        self.check()?;
        self.inner.revoke_key(key_id, entry, audit).await
    }
    async fn rotate_key(
        &self,
        old: &str,
        grace_until: i64,
        successor: &KeyRecord,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        self.check()?;
        self.inner
            .rotate_key(old, grace_until, successor, audit)
            .await
    }
    async fn revoke_tenant(
        &self,
        tenant: &str,
        entry: &RevocationRecord,
        audit: &AuditRecord,
    ) -> StoreResult<u64> {
        self.check()?;
        self.inner.revoke_tenant(tenant, entry, audit).await
    }
    async fn add_revocation(
        &self,
        entry: &RevocationRecord,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        self.check()?;
        self.inner.add_revocation(entry, audit).await
    }
    async fn touch_keys(&self, used: &[(String, i64)]) -> StoreResult<()> {
        self.check()?;
        self.inner.touch_keys(used).await
    }
    async fn revocations(&self, now: i64) -> StoreResult<Vec<RevocationRecord>> {
        self.check()?;
        self.inner.revocations(now).await
    }
    async fn latest_list(&self) -> StoreResult<Option<StoredList>> {
        self.check()?;
        self.inner.latest_list().await
    }
    async fn insert_list(&self, list: &StoredList) -> StoreResult<()> {
        self.check()?;
        self.inner.insert_list(list).await
    }
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        self.check()?;
        self.inner.signing_keys().await
    }
    async fn insert_signing_key(
        &self,
        key: &SigningKeyRecord,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<()> {
        self.check()?;
        self.inner.insert_signing_key(key, audit).await
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
        self.check()?;
        self.inner
            .transition_signing_key(kid, from, to, at, remove_after, audit)
            .await
    }
    async fn revoke_signing_key(
        &self,
        kid: &str,
        successor: Option<Successor<'_>>,
        entry: &RevocationRecord,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        self.check()?;
        self.inner
            .revoke_signing_key(kid, successor, entry, audit)
            .await
    }
    async fn put_scope(&self, name: &str, public: bool, audit: &AuditRecord) -> StoreResult<()> {
        self.check()?;
        self.inner.put_scope(name, public, audit).await
    }
    async fn scopes(&self) -> StoreResult<Vec<(String, bool)>> {
        self.check()?;
        self.inner.scopes().await
    }
    async fn publishable_origins(&self, now: i64) -> StoreResult<Vec<String>> {
        self.check()?;
        self.inner.publishable_origins(now).await
    }
    async fn change_hint(&self, max: std::time::Duration) {
        self.inner.change_hint(max).await;
    }
    async fn last_change(&self) -> StoreResult<i64> {
        self.check()?;
        self.inner.last_change().await
    }
    async fn changes_since(&self, after: i64) -> StoreResult<Vec<Change>> {
        self.check()?;
        self.inner.changes_since(after).await
    }
    async fn list_changed_since(&self, after: i64) -> StoreResult<bool> {
        self.check()?;
        self.inner.list_changed_since(after).await
    }
    async fn insert_audit(&self, records: &[AuditRecord]) -> StoreResult<()> {
        self.check()?;
        self.inner.insert_audit(records).await
    }
    async fn audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        self.check()?;
        self.inner.audit(query).await
    }
    async fn add_refusals(&self, counts: &[RefusalCount]) -> StoreResult<()> {
        self.check()?;
        self.inner.add_refusals(counts).await
    }
    async fn refusals(&self, since: i64, limit: i64) -> StoreResult<Vec<RefusalCount>> {
        self.check()?;
        self.inner.refusals(since, limit).await
    }
    async fn tenants(&self, now: i64) -> StoreResult<Vec<TenantSummary>> {
        self.check()?;
        self.inner.tenants(now).await
    }
    async fn claim_dpop_proof(&self, id: &str, until: i64, now: i64) -> StoreResult<bool> {
        self.check()?;
        self.inner.claim_dpop_proof(id, until, now).await
    }
}
