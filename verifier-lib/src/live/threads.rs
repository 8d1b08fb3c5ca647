//! The refresh threads and the handle that owns them.

use std::io::{BufRead as _, Read as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use keymint_jwks::{Jwks, UnixTime};

use super::config::{LiveConfig, LiveError, Source};
use super::fetch::{self, FetchError, Fetched};
use crate::{UpdateError, Verifier};

/// Counters, for operators and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveStats {
    /// Key-set fetches attempted (polls and `kid` refetches).
    pub jwks_fetches: u64,
    /// Of those, refetches triggered by an unknown `kid`.
    pub jwks_kid_refetches: u64,
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
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    jwks_fetches: AtomicU64,
    jwks_kid_refetches: AtomicU64,
    jwks_failures: AtomicU64,
    lists_installed: AtomicU64,
    lists_refused: AtomicU64,
    list_fetch_failures: AtomicU64,
    events: AtomicU64,
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
            jwks_failures: c.jwks_failures.load(Ordering::Relaxed),
            lists_installed: c.lists_installed.load(Ordering::Relaxed),
            lists_refused: c.lists_refused.load(Ordering::Relaxed),
            list_fetch_failures: c.list_fetch_failures.load(Ordering::Relaxed),
            events: c.events.load(Ordering::Relaxed),
        }
    }
}

impl Drop for LiveHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

struct Ctx {
    verifier: Verifier,
    cfg: LiveConfig,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    ready_tx: Arc<tokio::sync::watch::Sender<bool>>,
    keys_in: AtomicBool,
    list_in: AtomicBool,
    push_connected: AtomicBool,
}

impl Ctx {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn mark_ready(&self) {
        if self.keys_in.load(Ordering::SeqCst) && self.list_in.load(Ordering::SeqCst) {
            self.ready_tx.send_replace(true);
        }
    }

    /// Sleeps `d` in slices so that a stop is noticed within a second.
    fn sleep(&self, d: Duration) {
        let deadline = Instant::now() + d;
        while !self.stopped() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(200)));
        }
    }

    fn clamp(&self, max_age: Option<Duration>, fallback: Duration) -> Duration {
        max_age.unwrap_or(fallback).clamp(
            self.cfg.min_refresh,
            self.cfg.max_refresh.max(self.cfg.min_refresh),
        )
    }

    fn install_list(&self, text: &str) {
        match self.verifier.update_revocations(text) {
            Ok(crate::RevocationUpdate::Installed { .. }) => {
                self.counters
                    .lists_installed
                    .fetch_add(1, Ordering::Relaxed);
                self.list_in.store(true, Ordering::SeqCst);
                self.mark_ready();
            }
            Ok(_) => {
                crate::telemetry::refreshed("revocations", UnixTime::now());
                self.list_in.store(true, Ordering::SeqCst);
                self.mark_ready();
            }
            Err(e) => {
                self.counters.lists_refused.fetch_add(1, Ordering::Relaxed);
                if let UpdateError::List(keymint_jwks::RevocationListError::UnknownKid(_)) = &e {
                    // Signed by a key we do not have yet: ask for the key set.
                    self.verifier.kid_missed();
                }
                if let UpdateError::Rollback { current, offered } = &e {
                    tracing::warn!(current, offered, "refused a rolled-back revocation list");
                } else {
                    tracing::warn!(error = %e, "refused a revocation list; keeping the one in force");
                }
            }
        }
    }
}

fn get(
    agent: &ureq::Agent,
    source: &Source,
    etag: &mut Option<String>,
    seen: &mut Option<std::time::SystemTime>,
    limit: u64,
) -> Result<Fetched, FetchError> {
    match source {
        Source::Url(url) => {
            let f = fetch::get_text(agent, url, etag.as_deref(), limit)?;
            if f.etag.is_some() {
                etag.clone_from(&f.etag);
            }
            Ok(f)
        }
        Source::File(path) => fetch::read_file(path, seen, limit),
    }
}

fn keys_thread(ctx: Arc<Ctx>, wake: Receiver<()>) {
    let agent = fetch::agent(ctx.cfg.timeout, ctx.cfg.timeout, Some(ctx.cfg.timeout));
    let (mut etag, mut seen) = (None, None);
    let mut last_kid_fetch: Option<Instant> = None;
    while !ctx.stopped() {
        ctx.counters.jwks_fetches.fetch_add(1, Ordering::Relaxed);
        let next = match get(
            &agent,
            &ctx.cfg.jwks,
            &mut etag,
            &mut seen,
            ctx.cfg.max_jwks_bytes,
        ) {
            Ok(f) => {
                let ok = match f.body.as_deref().map(|b| Jwks::from_json(b.as_bytes())) {
                    Some(Ok(jwks)) => {
                        ctx.verifier.set_keys(jwks);
                        true
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "refused a key set; keeping the one in force");
                        false
                    }
                    None => true, // not modified
                };
                if ok {
                    ctx.verifier.keys_refreshed(UnixTime::now());
                    ctx.keys_in.store(true, Ordering::SeqCst);
                    ctx.mark_ready();
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
        // Wait for the next poll, or for an unknown kid (at most one refetch per cooldown).
        let deadline = Instant::now() + next;
        loop {
            if ctx.stopped() {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match wake.recv_timeout(left.min(Duration::from_millis(500))) {
                Ok(()) => {
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
        // The list can only be checked against a key set.
        if !ctx.keys_in.load(Ordering::SeqCst) {
            ctx.sleep(Duration::from_millis(50));
            continue;
        }
        let next = match get(
            &agent,
            &ctx.cfg.revocations,
            &mut etag,
            &mut seen,
            ctx.cfg.max_list_bytes,
        ) {
            Ok(f) => {
                if let Some(text) = f.body {
                    ctx.install_list(&text);
                    if !ctx.list_in.load(Ordering::SeqCst) {
                        // Refused: try again from scratch soon (the key set may be catching up).
                        etag = None;
                        seen = None;
                    }
                }
                // With the push channel up, polling is only the fallback.
                let fallback = if ctx.push_connected.load(Ordering::SeqCst) {
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
        ctx.sleep(next);
    }
}

/// Room on an event-stream line for the field name and line ending around a list (`data: ...\r\n`).
const SSE_LINE_ALLOWANCE: u64 = 64;

fn events_thread(ctx: Arc<Ctx>, url: String) {
    // Reads block until the next event or keep-alive (every 15 s from keymint).
    let agent = fetch::agent(ctx.cfg.timeout, Duration::from_secs(45), None);
    // No line of a stream we accept is longer than a whole list: reading stops there, so a
    // hostile endpoint cannot grow one line without bound before the list's own cap is checked.
    let max_line = ctx.cfg.max_list_bytes.saturating_add(SSE_LINE_ALLOWANCE);
    let mut last_id: Option<String> = None;
    let mut backoff = Duration::from_millis(250);
    while !ctx.stopped() {
        if !ctx.keys_in.load(Ordering::SeqCst) {
            ctx.sleep(Duration::from_millis(50));
            continue;
        }
        let mut req = agent.get(&url).set("Accept", "text/event-stream");
        if let Some(id) = &last_id {
            req = req.set("Last-Event-ID", id);
        }
        match req.call() {
            Ok(res) => {
                ctx.push_connected.store(true, Ordering::SeqCst);
                let mut reader = std::io::BufReader::new(res.into_reader());
                let (mut id, mut event, mut data) = (None::<String>, String::new(), String::new());
                let mut line = String::new();
                loop {
                    if ctx.stopped() {
                        return;
                    }
                    line.clear();
                    match reader
                        .by_ref()
                        .take(max_line.saturating_add(1))
                        .read_line(&mut line)
                    {
                        Ok(0) | Err(_) => break,
                        Ok(n) if n as u64 > max_line => {
                            tracing::warn!("revocation event line too long; reconnecting");
                            break;
                        }
                        Ok(_) => {}
                    }
                    let l = line.trim_end_matches(['\r', '\n']);
                    if l.is_empty() {
                        if event == "revocations" && !data.is_empty() {
                            ctx.counters.events.fetch_add(1, Ordering::Relaxed);
                            ctx.install_list(&data);
                            if id.is_some() {
                                last_id.clone_from(&id);
                            }
                            backoff = Duration::from_millis(250);
                        }
                        event.clear();
                        data.clear();
                    } else if let Some(v) = l.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                        if data.len() as u64 > ctx.cfg.max_list_bytes {
                            tracing::warn!("pushed revocation list too large; reconnecting");
                            break;
                        }
                    } else if let Some(v) = l.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = l.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    }
                }
                ctx.push_connected.store(false, Ordering::SeqCst);
            }
            Err(e) => tracing::warn!(error = %e, "revocation events unavailable; polling instead"),
        }
        ctx.sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(30));
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
        spawn("keymint-events", Box::new(move || events_thread(c, url)))?;
    }
    Ok(LiveHandle {
        stop,
        counters,
        ready,
    })
}
