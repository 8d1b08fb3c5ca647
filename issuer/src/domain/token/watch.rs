//! What the server's background tasks tell the token service: keys and origins that changed in the
//! database, scopes made public or not, that the change feed was just read; and the last-used
//! times it hands back for a batched write.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use keymint_jwks::{ApiKeyId, PROPAGATION_BOUND, UnixTime};

use super::TokenService;
use crate::domain::{DomainError, unix};
use crate::store::{Store, StoreError};

impl<S: Store> TokenService<S> {
    /// Forgets a cached key so the next request reads it again (after a change in the database).
    pub fn invalidate(&self, key_id: &str) {
        self.keys.invalidate(key_id);
        self.unknown.remove(key_id);
    }

    /// Records that the change watcher has just read the feed: until `now` plus the propagation
    /// bound, keys held in memory may be used without asking the database.
    pub fn feed_read(&self, now: UnixTime) {
        self.feed_read_at.store(unix(now), Ordering::Relaxed);
    }

    /// Refuses to issue (503) once the change feed has gone unread for longer than the
    /// propagation bound: a key held in memory may have been revoked meanwhile, and verifiers
    /// count on an issuer learning of a revocation within that bound.
    pub(super) fn check_feed(&self, now: UnixTime) -> Result<(), DomainError> {
        let read_at = self.feed_read_at.load(Ordering::Relaxed);
        let bound = i64::try_from(PROPAGATION_BOUND.as_secs()).unwrap_or(i64::MAX);
        let unread = unix(now).saturating_sub(read_at);
        if read_at > 0 && unread > bound {
            return Err(DomainError::Unavailable(StoreError::unavailable(format!(
                "the change feed has not been read for {unread} s"
            ))));
        }
        Ok(())
    }

    /// Forgets every cached key.
    pub fn invalidate_all(&self) {
        self.keys.clear();
        self.unknown.clear();
    }

    /// Re-reads the origins of live publishable keys (after a key change).
    pub async fn reload_origins(&self, now: UnixTime) -> Result<(), DomainError> {
        let origins = self.store.publishable_origins(unix(now)).await?;
        // As the token endpoint compares them (a key made before default ports were dropped
        // holds `https://app.example:443`).
        self.origins.store(Arc::new(
            origins
                .iter()
                .map(|o| crate::domain::keys::origin::Origin::canonical(o))
                .collect(),
        ));
        Ok(())
    }

    /// Re-reads which scopes are public (at start and after a scope change).
    pub async fn reload_public_scopes(&self) -> Result<(), DomainError> {
        // Read and store as one step: a first-read reload that read before an admin's change
        // must not store its older set after the watcher stored the newer one.
        let _one_at_a_time = self.public_scopes_reload.lock().await;
        let public = crate::domain::keys::public_scope_names(&*self.store).await?;
        self.public_scopes.store(Arc::new(public));
        Ok(())
    }

    /// Whether some live publishable key allows `origin` (for CORS preflights, which carry no key).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        crate::domain::keys::origin::Origin::parse(origin)
            .is_ok_and(|o| self.origins.load().contains(o.as_str()))
    }

    /// Takes the last-used times recorded since the previous call.
    pub fn take_last_used(&self) -> Vec<(ApiKeyId, i64)> {
        let mut usage = self
            .last_used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        usage.drain().collect()
    }
}
