//! Where keys are used from: every issuance and every refusal is one structured log line at once
//! (target `keymint::audit`, with the token's `jti`: the per-token record) and a count in an
//! hourly usage rollup (per key, client network, origin, action, outcome and reason), which
//! [`run_writer`] writes in batches off the request path. The database grows with keys × clients
//! × hours, never per token.
//!
//! Why an hour and not a minute: "where was this key used from" is answered by clients and first
//! and last seen times, which a row keeps to the second whatever its bucket; a minute would store
//! 60 rows an hour for a client that uses a key steadily (about 1,440 a day instead of 24), for no
//! answer the log line does not already give.

mod event;
mod report;
mod retention;
mod tally;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use self::event::{Issued, Outcome, Presented, Usage};
pub use self::report::{DEFAULT_SINCE, KeyUsage, MAX_LINES, key_usage};
pub(crate) use self::retention::in_batches;
pub use self::retention::{DEFAULT_RETENTION, KEY_PRUNE_BATCH, PRUNE_BATCH, prune};
pub use self::tally::{
    BUCKET, MAX_CLAIMED_KINDS, MAX_KINDS, OTHER, PER_CLAIMED_KINDS, PER_KEY_KINDS,
    PER_TENANT_KINDS, PER_UNKNOWN_KINDS, Tally,
};
use crate::domain::client::{IpText, client_of};
use crate::store::Store;

/// How often counted uses are written to the database by default (`serve --usage-flush-interval`):
/// what a crash can lose from the database (the log lines were already written) and how late
/// `keys usage` can be. A key in steady use is one row upserted per interval: under load from
/// 10,000 keys a 5 s interval made SQLite's writer 0.75 % of the server's CPU (`perf`, 2 cores),
/// so the default is 30 s; an hourly rollup loses nothing to a longer interval but freshness.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(30);
/// The shortest and the longest interval `serve` accepts.
pub const FLUSH_INTERVAL_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(3600);
/// Rows per statement: the transient memory of a write (the rows as JSON, SQLite's parse of it)
/// stays small however many rows are pending.
const FLUSH_CHUNK: usize = 1_000;

/// Logs uses and counts them for the database. Cheap to clone; shared by every request.
#[derive(Debug, Clone, Default)]
pub struct UsageLog {
    tally: Arc<Mutex<Tally>>,
}

impl UsageLog {
    /// A log with nothing counted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Logs `u` (one line) and counts it.
    pub fn record(&self, u: &Usage<'_>) {
        // The address as text once, for the line and (as the client's network, which for an
        // IPv4 client is the address itself) for the count, before taking the tally's lock.
        let ip = IpText::of(u.client);
        let network = client_of(u.client);
        let network = (network != u.client).then(|| IpText::of(network));
        tracing::info!(
            target: "keymint::audit",
            at = u.at,
            action = u.action,
            outcome = u.outcome.as_str(),
            reason = u.reason,
            code = (!u.code.is_empty()).then_some(u.code),
            key_id = u.key.logged(),
            tenant = u.tenant,
            scopes = u.scopes,
            client_ip = tracing::field::display(ip.as_str()),
            origin = u.origin,
            // Written as it is (`jti=…`, not quoted): base64url the issuer generated, so a
            // search for `jti=<id>` finds the line in either log format's text.
            jti = u.issued.map(|i| tracing::field::display(i.jti)),
            aud = u.issued.map(|i| i.aud),
            ttl = u.issued.map(|i| i.ttl),
            "audit"
        );
        self.lock()
            .add_from(u, network.as_ref().unwrap_or(&ip).as_str());
    }

    /// Counts `u` without its log line: for a flood of the same refusal, whose lines are
    /// summed up instead (see the connection limits in `server`).
    pub fn count(&self, u: &Usage<'_>) {
        self.lock().add(u);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tally> {
        // A panic elsewhere while counting leaves counts, not broken invariants: go on.
        self.tally
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes what was counted since the last call; what the database refuses is kept for the
    /// next (up to 200,000 pending rows).
    pub async fn flush<S: Store>(&self, store: &S) {
        let counts = self.lock().take();
        let dropped = self.lock().take_dropped();
        if dropped > 0 {
            metrics::counter!("keymint_usage_dropped_total").increment(dropped);
            tracing::warn!(target: "keymint::audit", dropped, "usage counts dropped while the database was failing (still in the log)");
        }
        let mut rest = counts.as_slice();
        while !rest.is_empty() {
            let (chunk, after) = rest.split_at(rest.len().min(FLUSH_CHUNK));
            if let Err(e) = store.add_usage(chunk).await {
                tracing::warn!(target: "keymint::audit", error = %e, rows = rest.len(), "usage counts not written; will retry");
                self.lock().restore(rest.to_vec());
                return;
            }
            rest = after;
        }
    }
}

/// Writes the counted uses every `every` until `stop` resolves, then once more.
pub async fn run_writer<S: Store>(
    store: Arc<S>,
    log: UsageLog,
    every: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut tick = tokio::time::interval(every);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => log.flush(&*store).await,
            () = &mut stop => {
                log.flush(&*store).await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
