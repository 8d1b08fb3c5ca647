//! The verifier: a sync core that never does I/O in `verify`.
//!
//! This module holds the state a [`Verifier`] shares between its clones and the small accessors;
//! the work is in two children: `verify` (the verification path: a token in, a
//! [`VerifiedToken`](crate::VerifiedToken) or a [`VerifyError`](crate::VerifyError) out) and
//! `update` (installing key sets and revocation lists). They share only this state: readers load
//! it without locks, writers swap whole values.

pub(crate) mod update;
mod verify;

use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, ArcSwapOption};
use keymint_jwks::{Audience, Issuer, Jwks, UnixTime};

use crate::cache::TokenCache;
use crate::clock::Clock;
use crate::keyset::KeySet;
use crate::revocation::RevocationState;

/// Verifies keymint access tokens offline. `Send + Sync`, cheap to clone (an `Arc`), meant to be
/// built once and shared by every task of a server.
#[derive(Clone, Debug)]
pub struct Verifier(Arc<Shared>);

#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) issuer: Issuer,
    pub(crate) audiences: Vec<Audience>,
    pub(crate) leeway_secs: u64,
    pub(crate) max_token_len: usize,
    pub(crate) max_list_len: usize,
    pub(crate) max_list_validity: std::time::Duration,
    pub(crate) check_revocation: bool,
    pub(crate) dpop: DpopSettings,
}

/// DPoP settings of a verifier.
#[derive(Debug)]
pub(crate) struct DpopSettings {
    pub(crate) replay: crate::dpop::ReplayCache,
    pub(crate) nonces: Option<crate::dpop::NonceSource>,
    pub(crate) window_secs: u64,
    pub(crate) base_url: Option<String>,
    pub(crate) htu_from_host: bool,
}

/// What live sources share with the verify path: a doorbell for unknown `kid`s and the time of the
/// last successful key-set refresh.
#[derive(Debug)]
pub(crate) struct LiveHooks {
    pub(crate) wake: std::sync::mpsc::SyncSender<()>,
    /// Unix seconds of the last successful refresh; 0 = never.
    pub(crate) keys_ok_at: std::sync::atomic::AtomicU64,
    pub(crate) max_stale_secs: u64,
}

#[derive(Debug)]
struct Shared {
    live: Option<LiveHooks>,
    config: Config,
    keys: ArcSwap<KeySet>,
    revocations: ArcSwapOption<RevocationState>,
    /// Serializes writers so that the serial comparison and the swap are one step; readers never
    /// take it.
    update_lock: Mutex<()>,
    cache: TokenCache,
    clock: Arc<dyn Clock>,
}

impl Verifier {
    pub(crate) fn from_parts(
        config: Config,
        jwks: Jwks,
        clock: Arc<dyn Clock>,
        cache_bytes: u64,
        live: Option<LiveHooks>,
    ) -> Self {
        Self(Arc::new(Shared {
            live,
            config,
            keys: ArcSwap::from_pointee(KeySet::new(jwks)),
            revocations: ArcSwapOption::empty(),
            update_lock: Mutex::new(()),
            cache: TokenCache::new(cache_bytes),
            clock,
        }))
    }

    /// The configured clock's time: live sources judge freshness by it, like `verify`.
    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    pub(crate) fn now(&self) -> UnixTime {
        self.0.clock.now()
    }

    /// The longest signed list accepted, in bytes.
    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    pub(crate) fn max_list_len(&self) -> usize {
        self.0.config.max_list_len
    }

    /// The serial of the revocation list in force.
    pub fn revocation_serial(&self) -> Option<u64> {
        self.0
            .revocations
            .load()
            .as_ref()
            .map(|s| s.signed.list().serial)
    }

    /// When the revocation list in force expires.
    pub fn revocation_list_expires(&self) -> Option<UnixTime> {
        self.0
            .revocations
            .load()
            .as_ref()
            .map(|s| s.signed.list().exp)
    }

    /// The issuer this verifier accepts.
    pub fn issuer(&self) -> &Issuer {
        &self.0.config.issuer
    }

    /// How many verified tokens are cached.
    pub fn cached_tokens(&self) -> usize {
        self.0.cache.len()
    }

    /// Whether `token` is in the verified-token cache (asking does not count as a use).
    #[cfg(test)]
    pub(crate) fn is_cached(&self, token: &str) -> bool {
        self.0.cache.contains(token)
    }
}
