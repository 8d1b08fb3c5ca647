//! A test double: wraps a real store and fails every call with `Unavailable` while switched off,
//! like a database that went away, or only the calls of one method (one read that failed while
//! the rest worked). It counts the calls of each method, so a test can wait for one to happen,
//! and it can hold a method's answer back while the test changes the database, to play a race
//! out in a fixed order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keymint_jwks::{ApiKeyId, Kid, Scope, TenantId};

use super::{
    Applied, AuditEntry, AuditQuery, AuditRecord, ChangePage, Claim, KeyRecord, RevocationRecord,
    ScopeRecord, SigningKeyRecord, SigningKeyState, Store, StoreError, StoreResult, StoredList,
    Successor, TenantPolicyRecord, TenantSummary, UsageCount, UsageEntry, UsageLine, Visibility,
    WebhookDelivery,
};

/// See the module docs.
#[derive(Debug, Clone)]
pub struct FlakyStore<S> {
    inner: S,
    down: Arc<AtomicBool>,
    failing: Arc<Mutex<Option<&'static str>>>,
    calls: Arc<Mutex<HashMap<&'static str, usize>>>,
    hold: Arc<Mutex<Option<&'static str>>>,
    reached: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
}

impl<S> FlakyStore<S> {
    /// Wraps `inner`, up.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            down: Arc::new(AtomicBool::new(false)),
            failing: Arc::default(),
            calls: Arc::default(),
            hold: Arc::default(),
            reached: Arc::default(),
            release: Arc::default(),
        }
    }

    /// Holds back the answer of the next calls of the method `name` (`Some`), each until
    /// [`Self::release`]; `None` stops holding.
    pub fn set_hold(&self, name: Option<&'static str>) {
        *self.hold.lock().unwrap_or_else(PoisonError::into_inner) = name;
    }

    /// Waits until a held call has its answer (read from the database, not yet returned).
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Lets one held call return its answer.
    pub fn release(&self) {
        self.release.notify_one();
    }

    /// After a call of `name` has its answer: waits for [`Self::release`] if `name` is held.
    async fn after(&self, name: &'static str) {
        let held = *self.hold.lock().unwrap_or_else(PoisonError::into_inner) == Some(name);
        if held {
            self.reached.notify_one();
            self.release.notified().await;
        }
    }

    /// Fails every call of the method `name` (`Some`), or none (`None`), the rest working.
    pub fn set_failing(&self, name: Option<&'static str>) {
        *self.failing.lock().unwrap_or_else(PoisonError::into_inner) = name;
    }

    /// How many calls of the method `name` were made so far (answered or failed).
    pub fn calls(&self, name: &str) -> usize {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    /// Whether a call of `name` is to fail now, counting it.
    fn fails(&self, name: &'static str) -> bool {
        *self
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name)
            .or_insert(0) += 1;
        self.down.load(Ordering::SeqCst)
            || *self.failing.lock().unwrap_or_else(PoisonError::into_inner) == Some(name)
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Takes the database down (`true`) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

/// What a call answers while the database is down: an error for every fallible call; the rest
/// (waiting for a change hint) go on as usual.
trait WhenDown: Sized {
    fn when_down() -> Option<Self>;
}

impl<T> WhenDown for StoreResult<T> {
    fn when_down() -> Option<Self> {
        Some(Err(StoreError::unavailable("injected: database down")))
    }
}

impl WhenDown for () {
    fn when_down() -> Option<Self> {
        None
    }
}

/// Writes the fault-injecting [`Store`] impl from the one list of methods.
macro_rules! faulty {
    ($($(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $out:ty;)*) => {
        impl<S: Store> Store for FlakyStore<S> {
            $(async fn $name(&self $(, $arg: $ty)*) -> $out {
                if self.fails(stringify!($name))
                    && let Some(answer) = <$out as WhenDown>::when_down()
                {
                    return answer;
                }
                let answer = self.inner.$name($($arg),*).await;
                self.after(stringify!($name)).await;
                answer
            })*
        }
    };
}

store_methods!(faulty);
