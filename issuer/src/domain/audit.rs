//! Audit: every issuance and every admin action is one structured log line at once. Admin actions
//! are also stored in the same transaction as the change (by the store); issuances are stored in
//! batches by [`AuditSink`], at most [`FLUSH_INTERVAL`] behind the log.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::store::{AuditRecord, Store};

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

/// Drains `rx` into the store every [`FLUSH_INTERVAL`] until the sink is dropped; records that fail
/// to write are kept and retried.
pub async fn run_writer<S: Store>(store: std::sync::Arc<S>, mut rx: mpsc::Receiver<AuditRecord>) {
    let mut pending: Vec<AuditRecord> = Vec::new();
    let mut tick = tokio::time::interval(FLUSH_INTERVAL);
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Some(r) => {
                    pending.push(r);
                    // One transaction per batch, not per issuance.
                    if pending.len() >= 1000 {
                        flush(&*store, &mut pending).await;
                    }
                }
                None => {
                    flush(&*store, &mut pending).await;
                    return;
                }
            },
            _ = tick.tick() => flush(&*store, &mut pending).await,
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
