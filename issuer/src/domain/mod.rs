//! The issuer's logic: API keys, signing keys, revocations, token exchange and audit. No HTTP and
//! no SQL here: the domain talks to a [`Store`](crate::store::Store) and returns typed errors.

mod active_key;
pub mod admin;
pub mod admin_api;
pub mod api_key;
pub mod audit;
pub mod clock;
mod dpop_binding;
mod error;
mod grant;
pub mod key_hash;
mod key_policy;
pub mod keys;
pub mod limits;
pub mod migration;
pub mod origin;
pub mod revocations;
pub mod secret_box;
pub mod signing;
pub mod throttle;
pub mod token;

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod lifecycle_tests;

pub use error::{Chain, ClientFailure, DomainError};

/// Seconds since the Unix epoch, as the store keeps time.
pub fn unix(t: keymint_jwks::UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}
