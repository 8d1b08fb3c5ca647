//! What the refresh threads share: the verifier they feed, the configuration, the counters, and
//! the state of the revocation list (in force, refused and waiting for a key set).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use keymint_jwks::{RevocationListError, SignedRevocationList};

use super::config::LiveConfig;
use crate::{RevocationUpdate, UpdateError, Verifier};

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(super) jwks_fetches: AtomicU64,
    pub(super) jwks_kid_refetches: AtomicU64,
    pub(super) jwks_list_refetches: AtomicU64,
    pub(super) jwks_failures: AtomicU64,
    pub(super) lists_installed: AtomicU64,
    pub(super) lists_refused: AtomicU64,
    pub(super) list_fetch_failures: AtomicU64,
    pub(super) events: AtomicU64,
    pub(super) list_polls_pushed: AtomicU64,
}

/// The shared state of one verifier's refresh threads.
pub(super) struct Ctx {
    pub(super) verifier: Verifier,
    pub(super) cfg: LiveConfig,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) counters: Arc<Counters>,
    pub(super) ready_tx: Arc<tokio::sync::watch::Sender<bool>>,
    pub(super) keys_in: AtomicBool,
    pub(super) list_in: AtomicBool,
    pub(super) push_connected: AtomicBool,
    /// The last list refused for a reason a new key set can cure (signed by a key not known yet,
    /// or a serial bound by a key that may leave): tried again after every new key set.
    pub(super) refused: Mutex<Option<String>>,
    /// A list signed by an unknown `kid` asks the key-set thread for a refetch of its own.
    pub(super) list_kid_wanted: AtomicBool,
    /// The (unverified) serial of the last list that asked for that refetch: one per serial.
    pub(super) list_kid_serial: Mutex<Option<u64>>,
}

impl Ctx {
    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub(super) fn mark_ready(&self) {
        if self.keys_in.load(Ordering::SeqCst) && self.list_in.load(Ordering::SeqCst) {
            self.ready_tx.send_replace(true);
        }
    }

    /// Sleeps `d` in slices so that a stop is noticed within a second.
    pub(super) fn sleep(&self, d: Duration) {
        self.sleep_while(d, || true);
    }

    /// [`Self::sleep`], cut short (within a slice) once `go_on` turns false.
    pub(super) fn sleep_while(&self, d: Duration, go_on: impl Fn() -> bool) {
        let deadline = Instant::now() + d;
        while !self.stopped() && go_on() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(200)));
        }
    }

    pub(super) fn clamp(&self, max_age: Option<Duration>, fallback: Duration) -> Duration {
        max_age.unwrap_or(fallback).clamp(
            self.cfg.min_refresh,
            self.cfg.max_refresh.max(self.cfg.min_refresh),
        )
    }

    /// Offers `text` to the verifier; true if it is the list in force now (installed, or the very
    /// one already in force). Only then may the caller advance its ETag, file time or event ID:
    /// otherwise a refused list would never be offered again.
    pub(super) fn install_list(&self, text: &str) -> bool {
        match self.verifier.update_revocations(text) {
            Ok(update) => {
                if matches!(update, RevocationUpdate::Installed { .. }) {
                    self.counters
                        .lists_installed
                        .fetch_add(1, Ordering::Relaxed);
                    // Whatever was refused before is older than this list or about to be.
                    *self.refused.lock().unwrap_or_else(PoisonError::into_inner) = None;
                }
                crate::telemetry::refreshed("revocations", self.verifier.now());
                self.list_in.store(true, Ordering::SeqCst);
                self.mark_ready();
                true
            }
            Err(e) => {
                self.counters.lists_refused.fetch_add(1, Ordering::Relaxed);
                let curable = matches!(
                    e,
                    UpdateError::List(RevocationListError::UnknownKid(_))
                        | UpdateError::Rollback { .. }
                        | UpdateError::SerialConflict { .. }
                );
                if curable {
                    *self.refused.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(text.to_owned());
                }
                if let UpdateError::List(RevocationListError::UnknownKid(_)) = &e {
                    self.want_keys_for(text);
                }
                if let UpdateError::Rollback { current, offered } = &e {
                    tracing::warn!(current, offered, "refused a rolled-back revocation list");
                } else {
                    tracing::warn!(error = %e, "refused a revocation list; keeping the one in force");
                }
                false
            }
        }
    }

    /// A list signed by a key we do not have yet (after an emergency revocation, the key that
    /// signs it may be brand new): ask for the key set, outside the token `kid` cooldown, once per
    /// list serial. The serial is read unverified; it only rations the asking, and the key-set
    /// thread allows one such refetch a second whatever the serials.
    pub(super) fn want_keys_for(&self, text: &str) {
        let serial = SignedRevocationList::unverified_serial(text, self.verifier.max_list_len());
        let mut last = self
            .list_kid_serial
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if serial.is_some() && *last == serial {
            return;
        }
        *last = serial;
        drop(last);
        self.list_kid_wanted.store(true, Ordering::SeqCst);
        self.verifier.kid_missed();
    }

    /// Offers the last curably refused list again, now that a new key set is in force.
    pub(super) fn retry_refused(&self) {
        let text = self
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(text) = text {
            self.install_list(&text);
        }
    }
}
