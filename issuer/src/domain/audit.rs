//! Audit of admin actions: each is one structured log line and one stored row, written by the
//! store in the same transaction as the change. Issuances and refusals are logged and counted by
//! [`crate::domain::usage`] instead: a row per token would grow the database without bound.

use crate::store::AuditRecord;

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
