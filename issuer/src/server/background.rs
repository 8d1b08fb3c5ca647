//! The server's background work: applying changes other processes made (within
//! [`CHANGE_POLL`](super::CHANGE_POLL)), the signing-key lifecycle and the list's re-signing every
//! second, retention every hour, and batched writes of last-used times.
#![allow(clippy::disallowed_methods)] // an edge: these tasks read the clock

use std::sync::Arc;
use std::time::Duration;

use keymint_jwks::UnixTime;

use super::Runtime;
use crate::domain::usage;
use crate::domain::{revocation, signing};
use crate::store::Store;

/// What the watcher still has to read again: a re-read that failed (the database away for a
/// moment) is retried every round, with or without new changes, until it works. Forgotten, a
/// failed signing-set reload kept this replica signing with, and publishing, a key revoked
/// elsewhere until the next signing-key change, which could be a month away.
///
/// A failure that persists (a signing key sealed under another encryption key, a corrupt row) is
/// retried with a doubling wait, up to [`RETRY_AT_MOST`], not every round: each attempt is a
/// query and a log line.
#[derive(Debug, Default)]
struct Pending {
    settings: bool,
    scopes: bool,
    origins: bool,
    signing: bool,
    /// The wait after the last failed attempt (zero when the last one worked).
    backoff: Duration,
    /// No retry before this, unless a new change comes.
    retry_at: Option<tokio::time::Instant>,
}

/// The longest wait between retries of a failing re-read.
const RETRY_AT_MOST: Duration = Duration::from_secs(30);

impl Pending {
    fn any(&self) -> bool {
        self.settings || self.scopes || self.origins || self.signing
    }

    /// After an attempt at `now`: the next wait doubles while something is still pending.
    fn attempted(&mut self, now: tokio::time::Instant) {
        if self.any() {
            self.backoff = (self.backoff * 2).clamp(super::CHANGE_POLL, RETRY_AT_MOST);
            self.retry_at = Some(now + self.backoff);
        } else {
            self.backoff = Duration::ZERO;
            self.retry_at = None;
        }
    }
}

pub(super) async fn watch_changes<S: Store>(rt: Arc<Runtime<S>>, mut last: i64) {
    let mut pending = Pending::default();
    loop {
        rt.store.change_hint(super::CHANGE_POLL).await;
        let page = match rt.store.changes_since(last).await {
            Ok(c) => {
                rt.tokens.feed_read(UnixTime::now());
                c
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the change feed");
                continue;
            }
        };
        let changes = page.changes;
        let Some(newest) = changes.last().map(|c| c.id) else {
            // What could not be read last round is retried without waiting for another change,
            // once its wait is over.
            let due = pending
                .retry_at
                .is_some_and(|at| tokio::time::Instant::now() >= at);
            if due || rt.signing_stale.load(std::sync::atomic::Ordering::SeqCst) {
                reread(&rt, &mut pending).await;
            }
            continue;
        };
        let mut signing_changed = false;
        let mut keys_changed = false;
        let mut scopes_changed = false;
        let mut settings_changed = false;
        for c in &changes {
            match c.kind.as_str() {
                "key" => {
                    rt.tokens.invalidate(&c.target);
                    keys_changed = true;
                }
                "signing_key" => signing_changed = true,
                "scope" => scopes_changed = true,
                "settings" => settings_changed = true,
                _ => {}
            }
        }
        // More changes than a page, or changes pruned before this process read them (it could
        // not reach the database for longer than the feed's retention): what they named is not
        // known, so everything cached from the database is read again.
        if page.pruned_past
            || i64::try_from(changes.len()).unwrap_or(i64::MAX) >= crate::store::FEED_PAGE
        {
            if page.pruned_past {
                tracing::warn!(
                    after = last,
                    "changes this server had not read were pruned; reloading keys, scopes, settings and signing keys"
                );
                keys_changed = true;
                signing_changed = true;
            }
            rt.tokens.invalidate_all();
            scopes_changed = true;
            settings_changed = true;
        }
        pending.settings |= settings_changed;
        pending.scopes |= scopes_changed;
        pending.origins |= keys_changed;
        pending.signing |= signing_changed;
        reread(&rt, &mut pending).await;
        if let Err(e) = rt.refresh_list().await {
            tracing::warn!(error = %e, "cannot refresh the revocation list");
        }
        last = newest;
    }
}

/// Reads again what changed, or what a failed round left, clearing each flag that worked.
async fn reread<S: Store>(rt: &Runtime<S>, pending: &mut Pending) {
    reread_once(rt, pending).await;
    pending.attempted(tokio::time::Instant::now());
}

async fn reread_once<S: Store>(rt: &Runtime<S>, pending: &mut Pending) {
    // A reload the maintenance task could not finish (after it promoted or removed a key).
    pending.signing |= rt
        .signing_stale
        .swap(false, std::sync::atomic::Ordering::SeqCst);
    // Settings before the signing set and the list: a new issuer URL re-signs it in this round.
    if pending.settings && adopt_settings(rt).await {
        pending.settings = false;
    }
    if pending.scopes {
        match rt.tokens.reload_public_scopes().await {
            Ok(()) => pending.scopes = false,
            Err(e) => tracing::warn!(error = %e, "cannot reload public scopes"),
        }
    }
    if pending.origins {
        match rt.tokens.reload_origins(UnixTime::now()).await {
            Ok(()) => pending.origins = false,
            Err(e) => tracing::warn!(error = %e, "cannot reload publishable-key origins"),
        }
    }
    if pending.signing {
        match rt.reload_signing().await {
            Ok(()) => pending.signing = false,
            Err(e) => tracing::error!(error = %e, "cannot reload signing keys; retrying"),
        }
    }
}

/// Adopts changed settings and re-signs the list under them; whether that worked (else the
/// watcher tries again next round).
async fn adopt_settings<S: Store>(rt: &Runtime<S>) -> bool {
    if let Err(e) = rt.reload_settings().await {
        tracing::warn!(error = %e, "cannot adopt the changed settings");
        return false;
    }
    if let Err(e) = rt.refresh_list().await {
        tracing::warn!(error = %e, "cannot refresh the revocation list");
    }
    true
}

pub(super) async fn maintain<S: Store>(rt: Arc<Runtime<S>>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut usage_tick = 0u32;
    loop {
        tick.tick().await;
        match signing::maintain(
            &*rt.store,
            &rt.enc,
            UnixTime::now(),
            rt.settings.load().max_token_ttl(),
        )
        .await
        {
            Ok(true) => {
                if let Err(e) = rt.reload_signing().await {
                    // Not forgotten: the watcher reads the set again until it works.
                    tracing::error!(error = %e, "cannot reload signing keys; retrying");
                    rt.signing_stale
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "signing key maintenance failed"),
        }
        if let Err(e) = rt.refresh_list().await {
            tracing::warn!(error = %e, "cannot refresh the revocation list");
        }
        // The active key's age, read from the signing set in force.
        let set = rt.signing.load();
        let active = set.active.key().kid();
        if let Some(since) = set
            .records
            .iter()
            .find(|r| r.kid == *active)
            .map(|r| r.activate_at)
        {
            let age = crate::domain::unix(UnixTime::now()).saturating_sub(since);
            metrics::gauge!("keymint_signing_key_age_seconds").set(age as f64);
        }
        usage_tick += 1;
        if usage_tick.is_multiple_of(5) {
            flush_last_used(&rt).await;
        }
        if u64::from(usage_tick).is_multiple_of(super::clock_offset::CHECK_EVERY.as_secs()) {
            super::clock_offset::check(&*rt.store).await;
        }
    }
}

/// Prunes audit rows, usage rollups and dead keys past the retention, and the change feed past its own
/// ([`crate::domain::feed::FEED_RETENTION`]): at start, then every hour.
pub(super) async fn prune_old<S: Store>(store: Arc<S>, retention: Duration) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tick.tick().await;
        match usage::prune(&*store, UnixTime::now(), retention).await {
            Ok(p) if p.audit + p.usage + p.keys > 0 => {
                tracing::info!(
                    audit = p.audit,
                    usage = p.usage,
                    keys = p.keys,
                    "pruned rows past the audit retention"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot prune audit rows; will retry"),
        }
        match revocation::prune_dropped(&*store, UnixTime::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(entries = n, "pruned revocation entries no list carries"),
            Err(e) => tracing::warn!(error = %e, "cannot prune revocation entries; will retry"),
        }
        match crate::domain::feed::prune(&*store, UnixTime::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(changes = n, "pruned the change feed's old rows"),
            Err(e) => tracing::warn!(error = %e, "cannot prune the change feed; will retry"),
        }
    }
}

/// How often retention runs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

pub(super) async fn flush_last_used<S: Store>(rt: &Runtime<S>) {
    let used = rt.tokens.take_last_used();
    if !used.is_empty()
        && let Err(e) = rt.store.touch_keys(&used).await
    {
        tracing::warn!(error = %e, "cannot record last-used times");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_reread_waits_longer_each_time_up_to_half_a_minute_and_not_after_it_works() {
        let now = tokio::time::Instant::now();
        let mut p = Pending {
            signing: true,
            ..Pending::default()
        };
        let mut waits = Vec::new();
        for _ in 0..10 {
            p.attempted(now);
            waits.push(p.backoff.as_millis());
        }
        assert_eq!(
            waits,
            [
                200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000
            ]
        );
        assert_eq!(p.retry_at, Some(now + RETRY_AT_MOST));
        p.signing = false;
        p.attempted(now);
        assert_eq!((p.backoff, p.retry_at), (Duration::ZERO, None));
    }
}
