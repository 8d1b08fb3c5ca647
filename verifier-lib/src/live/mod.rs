//! Live key sources (feature `live`): the JWKS and the revocation list from URLs or files, kept
//! fresh by background threads, with a push channel for revocations.
//!
//! - Polling honours `Cache-Control: max-age` and `ETag` (a 304 costs no parsing), clamped to
//!   `[min_refresh, max_refresh]`.
//! - Stale-if-error: a failed fetch keeps the good copy. Once the key set is older than `max_stale`
//!   (default 1 hour) without a successful refresh, `verify` fails closed with
//!   [`VerifyError::SourcesUnavailable`](crate::VerifyError::SourcesUnavailable) (HTTP 503): the
//!   server can no longer vouch for any token. The revocation list has its own signed `exp`.
//! - An unknown `kid` wakes the key-set thread, which refetches at most once per `kid_cooldown`
//!   (default 30 s): a flood of random `kid`s is one fetch, and `verify` never waits for it.
//! - A list replaces the one in force only if it is signed by the current key set, has the list's
//!   `typ` and this issuer, has not expired, and does not roll the serial back (a rollback is refused
//!   and logged to stderr). Garbage, oversized or slow responses never replace the good copy.
//! - With an events URL, a thread subscribes to the issuer's server-sent events, reconnects with
//!   backoff (sending `Last-Event-ID`) and polling goes on underneath as the fallback.
//!
//! The threads are plain OS threads with a blocking HTTP client (ureq on rustls/ring), so no async
//! runtime is required; [`LiveHandle::ready`] can still be awaited from any executor.

mod config;
mod ctx;
mod events;
mod fetch;
mod threads;

pub use config::{LiveConfig, LiveError, Source};
pub(crate) use threads::spawn;
pub use threads::{LiveHandle, LiveStats};
