//! Audit: every issuance, every admin action and every refusal is one structured log line at once.
//! Admin actions are also stored in the same transaction as the change (by the store); issuances
//! are stored in batches by [`AuditSink`], at most [`FLUSH_INTERVAL`] behind the log; refusals are
//! stored as counts per hour, action, reason, client network and key ID (`refusal_counts`), so a
//! flood of bogus credentials grows a count, not a table.

use std::time::Duration;

use std::collections::HashMap;

use tokio::sync::mpsc;

use crate::domain::client::client_of;
use crate::store::{AuditRecord, RefusalCount, Store};

/// How often queued issuance records are written to the database: the window a crash can lose
/// from the database (the log line was already written).
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Records queued before the database falls behind; beyond it records are only in the log.
const QUEUE: usize = 100_000;

/// Who made an admin change, for its audit record: the name (`cli`, `admin-key:<ID>`) and, for a
/// change made over the admin API, the client address it came from.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// The actor's name.
    pub name: &'a str,
    /// The client address, when the change came over HTTP.
    pub client_ip: Option<std::net::IpAddr>,
}

impl<'a> From<&'a str> for Actor<'a> {
    fn from(name: &'a str) -> Self {
        Self {
            name,
            client_ip: None,
        }
    }
}

impl<'a> From<&'a String> for Actor<'a> {
    fn from(name: &'a String) -> Self {
        Self::from(name.as_str())
    }
}

impl Actor<'_> {
    /// Names this actor (and its address) in `r`.
    pub fn stamp(self, mut r: AuditRecord) -> AuditRecord {
        r.actor = Some(self.name.to_owned());
        if let Some(ip) = self.client_ip {
            r.client_ip = Some(ip.to_string());
        }
        r
    }
}

/// Writes one audit record as a structured log line (target `keymint::audit`).
pub fn log(r: &AuditRecord) {
    tracing::info!(
        target: "keymint::audit",
        at = r.at,
        action = %r.action,
        outcome = %r.outcome,
        reason = r.reason.as_deref(),
        actor = r.actor.as_deref(),
        key_id = r.key_id.as_deref(),
        tenant = r.tenant.as_deref(),
        scopes = r.scopes.as_deref(),
        client_ip = r.client_ip.as_deref(),
        origin = r.origin.as_deref(),
        detail = r.detail.as_deref(),
        "audit"
    );
}

/// Logs issuance records at once and queues them for a batched database write.
#[derive(Debug, Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<AuditRecord>,
}

impl AuditSink {
    /// A sink and the receiving end that [`run_writer`] drains.
    pub fn new() -> (Self, mpsc::Receiver<AuditRecord>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Self { tx }, rx)
    }

    /// Records an issuance.
    pub fn record(&self, r: AuditRecord) {
        log(&r);
        if self.tx.try_send(r).is_err() {
            tracing::warn!(target: "keymint::audit", "audit queue full: record kept in the log only");
        }
    }
}

/// Distinct refusal kinds counted in an hour; beyond it further kinds are folded into the client
/// `other`, so an attacker rotating addresses or key IDs grows neither memory nor the table by
/// more than this many rows an hour.
const MAX_REFUSAL_KINDS: usize = 10_000;

/// Refusals of one flush interval, counted by hour, action, reason, client network and key ID.
/// At most [`MAX_REFUSAL_KINDS`] distinct kinds reach the database in an hour; further ones are
/// counted under the client `other` (attackers choose addresses and key IDs).
#[derive(Debug, Default)]
struct RefusalTally(
    HashMap<(i64, String, String, String, String), RefusalCount>,
    HourKinds,
);

/// The kinds already counted in the current hour.
#[derive(Debug, Default)]
struct HourKinds {
    bucket: i64,
    seen: std::collections::HashSet<(String, String, String, String)>,
}

impl RefusalTally {
    fn add(&mut self, r: &AuditRecord) {
        let bucket = r.at - r.at.rem_euclid(3600);
        if bucket != self.1.bucket {
            self.1 = HourKinds {
                bucket,
                seen: std::collections::HashSet::new(),
            };
        }
        let client = r
            .client_ip
            .as_deref()
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
            .map_or_else(|| "unknown".to_owned(), |ip| client_of(ip).to_string());
        let mut key = (
            bucket,
            r.action.clone(),
            r.reason.clone().unwrap_or_default(),
            client,
            r.key_id.clone().unwrap_or_default(),
        );
        let kind = (key.1.clone(), key.2.clone(), key.3.clone(), key.4.clone());
        if !self.1.seen.contains(&kind) {
            if self.1.seen.len() >= MAX_REFUSAL_KINDS {
                key.3 = "other".into();
                key.4 = String::new();
            } else {
                self.1.seen.insert(kind);
            }
        }
        let at = r.at;
        self.0
            .entry(key.clone())
            .and_modify(|c| {
                c.count += 1;
                c.first_seen = c.first_seen.min(at);
                c.last_seen = c.last_seen.max(at);
            })
            .or_insert_with(|| RefusalCount {
                bucket: key.0,
                action: key.1,
                reason: key.2,
                client: key.3,
                key_id: key.4,
                count: 1,
                first_seen: at,
                last_seen: at,
            });
    }
}

/// Drains `rx` into the store every [`FLUSH_INTERVAL`] until the sink is dropped: issuances and
/// admin actions as records, refusals as counts (never a row per refused request). What fails to
/// write is kept and retried.
pub async fn run_writer<S: Store>(store: std::sync::Arc<S>, mut rx: mpsc::Receiver<AuditRecord>) {
    let mut pending: Vec<AuditRecord> = Vec::new();
    let mut refused = RefusalTally::default();
    let mut tick = tokio::time::interval(FLUSH_INTERVAL);
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Some(r) if r.outcome == "refused" => refused.add(&r),
                Some(r) => {
                    pending.push(r);
                    // One transaction per batch, not per issuance.
                    if pending.len() >= 1000 {
                        flush(&*store, &mut pending).await;
                    }
                }
                None => {
                    flush(&*store, &mut pending).await;
                    flush_refusals(&*store, &mut refused).await;
                    return;
                }
            },
            _ = tick.tick() => {
                flush(&*store, &mut pending).await;
                flush_refusals(&*store, &mut refused).await;
            }
        }
    }
}

async fn flush_refusals<S: Store>(store: &S, tally: &mut RefusalTally) {
    if tally.0.is_empty() {
        return;
    }
    let counts: Vec<RefusalCount> = tally.0.values().cloned().collect();
    match store.add_refusals(&counts).await {
        Ok(()) => tally.0.clear(),
        // Kept (bounded by MAX_REFUSAL_KINDS) and added to until the database takes them.
        Err(e) => {
            tracing::warn!(target: "keymint::audit", error = %e, kinds = counts.len(), "refusal counts not written; will retry")
        }
    }
}

async fn flush<S: Store>(store: &S, pending: &mut Vec<AuditRecord>) {
    if pending.is_empty() {
        return;
    }
    match store.insert_audit(pending).await {
        Ok(()) => pending.clear(),
        Err(e) => {
            tracing::warn!(target: "keymint::audit", error = %e, queued = pending.len(), "audit batch not written; will retry");
            if pending.len() > QUEUE {
                let excess = pending.len() - QUEUE;
                pending.drain(..excess);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AuditQuery, SqliteStore};

    fn refused(at: i64, ip: String) -> AuditRecord {
        AuditRecord {
            at,
            action: "token.issue".into(),
            outcome: "refused".into(),
            reason: Some("unknown key".into()),
            client_ip: Some(ip),
            key_id: Some("k1".into()),
            ..AuditRecord::default()
        }
    }

    /// Issue #13: every refusal was an audit row, so a bogus-credential flood grew the table.
    #[tokio::test]
    async fn a_refusal_flood_adds_to_one_count_and_issuances_stay_records() {
        let dir = std::env::temp_dir().join(format!("keymint-refusals-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = std::sync::Arc::new(SqliteStore::open(&dir.join("db")).await.unwrap());
        let (sink, rx) = AuditSink::new();
        let writer = tokio::spawn(run_writer(std::sync::Arc::clone(&store), rx));
        // A thousand refusals from rotating addresses of one /64, and one issuance.
        for n in 0..1000u32 {
            sink.record(refused(
                7200 + i64::from(n % 60),
                format!("2001:db8::{n:x}"),
            ));
        }
        sink.record(AuditRecord {
            at: 7300,
            action: "token.issue".into(),
            outcome: "granted".into(),
            ..AuditRecord::default()
        });
        drop(sink);
        writer.await.unwrap();
        let counts = store.refusals(0, 100).await.unwrap();
        assert_eq!(counts.len(), 1, "{counts:?}");
        assert_eq!(counts[0].count, 1000);
        assert_eq!(counts[0].client, "2001:db8::");
        assert_eq!((counts[0].first_seen, counts[0].last_seen), (7200, 7259));
        let rows = store
            .audit(&AuditQuery {
                limit: 100,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "only the issuance is a row");
        assert_eq!(rows[0].record.outcome, "granted");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_tally_never_holds_more_than_its_bound_of_kinds() {
        let mut tally = RefusalTally::default();
        for n in 0..(MAX_REFUSAL_KINDS as u32 + 500) {
            tally.add(&refused(7200, std::net::Ipv4Addr::from(n).to_string()));
        }
        assert_eq!(tally.0.len(), MAX_REFUSAL_KINDS + 1);
        let other: i64 = tally
            .0
            .values()
            .filter(|c| c.client == "other")
            .map(|c| c.count)
            .sum();
        assert_eq!(other, 500);
        // The bound is per hour, not per flush: after a flush, new kinds still go to `other`.
        tally.0.clear();
        tally.add(&refused(7300, "203.0.113.77".into()));
        assert_eq!(
            tally.0.values().next().map(|c| c.client.as_str()),
            Some("other")
        );
        tally.add(&refused(10800, "203.0.113.77".into()));
        assert!(
            tally.0.values().any(|c| c.client == "203.0.113.77"),
            "a new hour starts a new bound"
        );
    }
}
