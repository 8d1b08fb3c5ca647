//! The issuer's logic: API keys, signing keys, revocations, token exchange and audit. No HTTP and
//! no SQL here: the domain talks to a [`Store`](crate::store::Store) and returns typed errors.
//!
//! By subdomain: [`keys`] (API keys: format, hashing, policy, rate limits), [`revocation`] (the
//! signed list), [`signing`] (signing keys and their lifecycle), [`settings`] (what every replica
//! shares), [`token`] (trading a key for a token), [`admin`] (the admin API's gate and calls) and
//! [`migration`] (SQLite to Postgres), over the leaves [`reserved`] (names no customer may use),
//! [`clock`], [`client`] and [`audit`].

// From the bottom up: the leaves (error, refusal, reserved, clock, client, audit), then keys,
// revocation, signing, settings, token, admin and migration, each using only those before it. No
// import cycles: `issuer/tests/layering.rs` checks.
pub mod admin;
pub mod audit;
pub mod client;
pub mod client_slots;
pub mod clock;
mod error;
pub mod feed;
pub mod keys;
pub mod leaks;
pub mod migration;
pub mod refusal;
pub mod reserved;
pub mod revocation;
pub mod settings;
pub mod signing;
pub mod token;
pub mod usage;

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod lifecycle_tests;

pub use error::{Chain, ClientFailure, DomainError, Fault};

/// Seconds since the Unix epoch, as the store keeps time.
pub fn unix(t: keymint_jwks::UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}
