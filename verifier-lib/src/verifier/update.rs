//! The update paths: installing a key set or a signed revocation list. Each swaps one value
//! atomically, so a concurrent `verify` sees the old value or the new one and is never blocked.

use std::sync::Arc;

use keymint_jwks::{Jwks, SignedRevocationList, UnixTime};

use super::Verifier;
use crate::UpdateError;
use crate::keyset::KeySet;
use crate::revocation::RevocationState;

/// What [`Verifier::update_revocations`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevocationUpdate {
    /// A newer list is now in force.
    Installed {
        /// Its serial.
        serial: u64,
    },
    /// The very same list (same serial, same bytes) was already in force.
    Unchanged {
        /// Its serial.
        serial: u64,
    },
}

impl Verifier {
    /// Replaces the key set. Atomic: a concurrent `verify` sees the old set or the new one, never a
    /// mix, and is never blocked. Cached tokens whose key left the set are dropped.
    pub fn set_keys(&self, jwks: Jwks) {
        let new = Arc::new(KeySet::new(jwks));
        self.0.keys.store(Arc::clone(&new));
        self.0
            .cache
            .retain(|e| new.still_has(e.token.kid().as_str(), &e.key));
    }

    /// Reads a key set from a file (as written by `keymint publish`) and installs it.
    pub fn set_keys_from_file(&self, path: &std::path::Path) -> Result<(), crate::BuildError> {
        let jwks = crate::files::read_jwks(path)?;
        self.set_keys(jwks);
        Ok(())
    }

    /// Installs a signed revocation list at the configured clock's time. See
    /// [`update_revocations_at`](Self::update_revocations_at).
    pub fn update_revocations(&self, jws: &str) -> Result<RevocationUpdate, UpdateError> {
        self.update_revocations_at(jws, self.0.clock.now())
    }

    /// Installs a signed revocation list as of `now`, if it is signed by a key of the current key
    /// set that the list in force does not revoke, has this verifier's issuer, was not issued
    /// later than `now` plus the leeway, is valid for no longer than the cap (7 days by default),
    /// has not expired, and does not go backwards: a lower serial is a rollback and an equal serial
    /// is accepted only with the very same bytes. The serial stops binding once the key that
    /// signed the list in force has left the key set or is revoked; then only a list issued
    /// earlier than the one in force (beyond the leeway) is refused. On any error the list in
    /// force stays in force. Never blocks `verify`.
    pub fn update_revocations_at(
        &self,
        jws: &str,
        now: UnixTime,
    ) -> Result<RevocationUpdate, UpdateError> {
        let _writer = self
            .0
            .update_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = self.0.revocations.load_full();
        if let Some(cur) = &current
            && cur.signed.jws() == jws
        {
            return Ok(RevocationUpdate::Unchanged {
                serial: cur.signed.list().serial,
            });
        }
        let cfg = &self.0.config;
        let keys = self.0.keys.load();
        let signed = SignedRevocationList::verify(jws, &keys.jwks, &cfg.issuer, cfg.max_list_len)?;
        let policy = crate::list_rules::ListPolicy {
            leeway_secs: cfg.leeway_secs,
            max_validity: cfg.max_list_validity,
        };
        crate::list_rules::admit(current.as_deref(), &signed, &keys.jwks, now, policy)?;
        let serial = signed.list().serial;
        crate::telemetry::list_serial(serial);
        // Generations only grow (writers hold the lock), so a cached token's record of the list
        // it was last checked against never names a later list.
        let generation = current.as_ref().map_or(1, |c| c.generation + 1);
        let state = Arc::new(RevocationState::new(signed, generation));
        self.0.revocations.store(Some(Arc::clone(&state)));
        // Tokens signed by a revoked signing key are rejected on every call anyway; this frees
        // their memory now.
        self.0
            .cache
            .retain(|e| !state.index.kid_revoked(e.token.kid().as_str()));
        Ok(RevocationUpdate::Installed { serial })
    }

    /// Reads a signed revocation list from a file (as written by `keymint publish`) and installs
    /// it.
    pub fn update_revocations_from_file(
        &self,
        path: &std::path::Path,
    ) -> Result<RevocationUpdate, UpdateError> {
        let jws = crate::files::read_list(path, self.0.config.max_list_len)?;
        self.update_revocations(&jws)
    }

    /// Records a successful key-set refresh (for the staleness check).
    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    pub(crate) fn keys_refreshed(&self, now: UnixTime) {
        crate::telemetry::refreshed("jwks", now);
        if let Some(live) = &self.0.live {
            live.keys_ok_at
                .store(now.0.max(1), std::sync::atomic::Ordering::Relaxed);
        }
    }
}
