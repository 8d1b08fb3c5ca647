//! The refresh threads and the handle that owns them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use keymint_jwks::Jwks;

use super::config::{LiveConfig, LiveError, Source};
use super::ctx::{Counters, Ctx};
use super::fetch::{self, FetchError, Fetched};
use crate::Verifier;

/// At most one key-set refetch per this period for lists signed by an unknown `kid`, whatever
/// their serials: forged lists cannot become a fetch flood.
const LIST_KID_INTERVAL: Duration = Duration::from_secs(1);

/// Counters, for operators and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveStats {
    /// Key-set fetches attempted (polls and `kid` refetches).
    pub jwks_fetches: u64,
    /// Of those, refetches triggered by a token with an unknown `kid` (at most one per
    /// `kid_cooldown`).
    pub jwks_kid_refetches: u64,
    /// Of those, refetches triggered by a revocation list signed by an unknown `kid` (at most one
    /// per list serial and one per second, whatever the tokens did).
    pub jwks_list_refetches: u64,
    /// Key-set fetches that brought no usable key set (unreachable, timed out, HTTP error, too
    /// large, not a key set); the one in force stays.
    pub jwks_failures: u64,
    /// Revocation lists installed (from polling or push).
    pub lists_installed: u64,
    /// Lists refused (bad signature, wrong issuer, expired, rolled back, garbage).
    pub lists_refused: u64,
    /// List fetches that failed before there was a list to check (unreachable, timed out, HTTP
    /// error, too large, not UTF-8); the list in force stays.
    pub list_fetch_failures: u64,
    /// Server-sent events received.
    pub events: u64,
    /// List polls made while the push channel was up, each followed by a wait of `max_refresh`
    /// (polling is then the fallback) that ends early if the channel goes down.
    pub list_polls_pushed: u64,
}

/// Owns the refresh threads; dropping it stops them (within about a second).
#[derive(Debug)]
pub struct LiveHandle {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    ready: tokio::sync::watch::Receiver<bool>,
}

impl LiveHandle {
    /// Resolves once a key set and a revocation list have been installed.
    pub async fn ready(&self) {
        let mut rx = self.ready.clone();
        let _ = rx.wait_for(|r| *r).await;
    }

    /// Blocks until ready or until `timeout`; returns whether it is ready.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if *self.ready.borrow() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        *self.ready.borrow()
    }

    /// The counters so far.
    pub fn stats(&self) -> LiveStats {
        let c = &self.counters;
        LiveStats {
            jwks_fetches: c.jwks_fetches.load(Ordering::Relaxed),
            jwks_kid_refetches: c.jwks_kid_refetches.load(Ordering::Relaxed),
            jwks_list_refetches: c.jwks_list_refetches.load(Ordering::Relaxed),
            jwks_failures: c.jwks_failures.load(Ordering::Relaxed),
            lists_installed: c.lists_installed.load(Ordering::Relaxed),
            lists_refused: c.lists_refused.load(Ordering::Relaxed),
            list_fetch_failures: c.list_fetch_failures.load(Ordering::Relaxed),
            events: c.events.load(Ordering::Relaxed),
            list_polls_pushed: c.list_polls_pushed.load(Ordering::Relaxed),
        }
    }
}

impl Drop for LiveHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Fetches `source`, sending the validator the caller holds. Returns the document and the
/// validator to keep if the caller accepts it (an ETag, or a file's modification time).
fn get(
    agent: &ureq::Agent,
    source: &Source,
    etag: &Option<String>,
    seen: Option<SystemTime>,
    limit: u64,
) -> Result<(Fetched, Option<String>, Option<SystemTime>), FetchError> {
    match source {
        Source::Url(url) => {
            let f = fetch::get_text(agent, url, etag.as_deref(), limit)?;
            let next = f.etag.clone().or_else(|| etag.clone());
            Ok((f, next, seen))
        }
        Source::File(path) => {
            let mut next = seen;
            let f = fetch::read_file(path, &mut next, limit)?;
            Ok((f, etag.clone(), next))
        }
    }
}

fn keys_thread(ctx: Arc<Ctx>, wake: Receiver<()>) {
    let agent = fetch::agent(ctx.cfg.timeout, ctx.cfg.timeout, Some(ctx.cfg.timeout));
    let (mut etag, mut seen) = (None, None);
    let mut last_kid_fetch: Option<Instant> = None;
    let mut last_list_fetch: Option<Instant> = None;
    while !ctx.stopped() {
        ctx.counters.jwks_fetches.fetch_add(1, Ordering::Relaxed);
        let next = match get(&agent, &ctx.cfg.jwks, &etag, seen, ctx.cfg.max_jwks_bytes) {
            Ok((f, next_etag, next_seen)) => {
                let (ok, new_keys) = match f.body.as_deref().map(|b| Jwks::from_json(b.as_bytes()))
                {
                    Some(Ok(jwks)) => {
                        ctx.verifier.set_keys(jwks);
                        (true, true)
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "refused a key set; keeping the one in force");
                        (false, false)
                    }
                    None => (true, false), // not modified
                };
                if ok {
                    (etag, seen) = (next_etag, next_seen);
                    ctx.verifier.keys_refreshed(ctx.verifier.now());
                    ctx.keys_in.store(true, Ordering::SeqCst);
                    ctx.mark_ready();
                    if new_keys {
                        ctx.retry_refused();
                    }
                    ctx.clamp(f.max_age, ctx.cfg.max_refresh)
                } else {
                    ctx.counters.jwks_failures.fetch_add(1, Ordering::Relaxed);
                    ctx.cfg.min_refresh
                }
            }
            Err(e) => {
                ctx.counters.jwks_failures.fetch_add(1, Ordering::Relaxed);
                crate::telemetry::refresh_failed("jwks");
                tracing::warn!(error = %e, "key set refresh failed; keeping the one in force");
                ctx.cfg.min_refresh
            }
        };
        // Wait for the next poll, or for an unknown kid: a token's (at most one refetch per
        // cooldown) or a list's (at most one a second, on a budget of its own).
        let mut deadline = Instant::now() + next;
        let mut list_due = false;
        loop {
            if ctx.stopped() {
                return;
            }
            let now = Instant::now();
            let left = deadline.saturating_duration_since(now);
            if left.is_zero() {
                if list_due {
                    last_list_fetch = Some(now);
                    ctx.counters
                        .jwks_list_refetches
                        .fetch_add(1, Ordering::Relaxed);
                }
                break;
            }
            match wake.recv_timeout(left.min(Duration::from_millis(500))) {
                Ok(()) => {
                    if ctx.list_kid_wanted.swap(false, Ordering::SeqCst) {
                        // Never dropped: if the last one was under a second ago, it waits.
                        let at = last_list_fetch.map_or(now, |t| (t + LIST_KID_INTERVAL).max(now));
                        deadline = deadline.min(at);
                        list_due = true;
                        continue;
                    }
                    if last_kid_fetch.is_none_or(|t| t.elapsed() >= ctx.cfg.kid_cooldown) {
                        last_kid_fetch = Some(Instant::now());
                        ctx.counters
                            .jwks_kid_refetches
                            .fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

fn list_thread(ctx: Arc<Ctx>) {
    let agent = fetch::agent(ctx.cfg.timeout, ctx.cfg.timeout, Some(ctx.cfg.timeout));
    let (mut etag, mut seen) = (None, None);
    while !ctx.stopped() {
        let mut under_push = false;
        // The list can only be checked against a key set.
        if !ctx.keys_in.load(Ordering::SeqCst) {
            ctx.sleep(Duration::from_millis(50));
            continue;
        }
        let next = match get(
            &agent,
            &ctx.cfg.revocations,
            &etag,
            seen,
            ctx.cfg.max_list_bytes,
        ) {
            Ok((f, next_etag, next_seen)) => {
                // The validator advances only with a list in force: a refused list is fetched
                // again (not answered 304) until it is installed or replaced.
                let in_force = f.body.as_deref().is_none_or(|text| ctx.install_list(text));
                if in_force {
                    (etag, seen) = (next_etag, next_seen);
                }
                // With the push channel up, polling is only the fallback.
                under_push = ctx.push_connected.load(Ordering::SeqCst);
                if under_push {
                    ctx.counters
                        .list_polls_pushed
                        .fetch_add(1, Ordering::Relaxed);
                }
                let fallback = if under_push {
                    ctx.cfg.max_refresh
                } else {
                    ctx.cfg.min_refresh
                };
                ctx.clamp(f.max_age, fallback)
            }
            Err(e) => {
                ctx.counters
                    .list_fetch_failures
                    .fetch_add(1, Ordering::Relaxed);
                crate::telemetry::refresh_failed("revocations");
                tracing::warn!(error = %e, "revocation list refresh failed; keeping the one in force");
                ctx.cfg.min_refresh
            }
        };
        // A wait chosen because the push channel was up ends when it goes down: else a revocation
        // made while it cannot reconnect would wait out `max_refresh` (5 minutes by default).
        ctx.sleep_while(next, || {
            !under_push || ctx.push_connected.load(Ordering::SeqCst)
        });
    }
}

pub(crate) fn spawn(
    verifier: Verifier,
    cfg: LiveConfig,
    wake: Receiver<()>,
) -> Result<LiveHandle, LiveError> {
    let (ready_tx, ready) = tokio::sync::watch::channel(false);
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let events = cfg.events.clone();
    let ctx = Arc::new(Ctx {
        verifier,
        cfg,
        stop: Arc::clone(&stop),
        counters: Arc::clone(&counters),
        ready_tx: Arc::new(ready_tx),
        keys_in: AtomicBool::new(false),
        list_in: AtomicBool::new(false),
        push_connected: AtomicBool::new(false),
        refused: Mutex::new(None),
        list_kid_wanted: AtomicBool::new(false),
        list_kid_serial: Mutex::new(None),
    });
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(f)
            .map(|_| ())
            .map_err(LiveError::Thread)
    };
    let c = Arc::clone(&ctx);
    spawn("keymint-jwks", Box::new(move || keys_thread(c, wake)))?;
    let c = Arc::clone(&ctx);
    spawn("keymint-revocations", Box::new(move || list_thread(c)))?;
    if let Some(url) = events {
        let c = Arc::clone(&ctx);
        spawn(
            "keymint-events",
            Box::new(move || super::events::events_thread(c, url)),
        )?;
    }
    Ok(LiveHandle {
        stop,
        counters,
        ready,
    })
}
