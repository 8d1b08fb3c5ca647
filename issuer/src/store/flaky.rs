//! A test double: wraps a real store and fails every call with `Unavailable` while switched off,
//! like a database that went away.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
                if self.down.load(Ordering::SeqCst)
                    && let Some(answer) = <$out as WhenDown>::when_down()
                {
                    return answer;
                }
                self.inner.$name($($arg),*).await
            })*
        }
    };
}

store_methods!(faulty);
