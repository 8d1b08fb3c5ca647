//! Leaked keys: secret-scanning reports (GitHub's partner program) that revoke or flag the keys
//! they name.
//!
//! A report is checked before anything in it is looked at: its ECDSA P-256 signature over the raw
//! body must verify against the scanner's published keys ([`scanner_keys`]). Unsigned, badly
//! signed or unknown-key reports all get the same refusal, whatever they name, so only the signed
//! scanner learns whether a string is a real key. For each string of a signed report:
//!
//! - not a well-formed key, no such key ID, or the wrong secret for it: `false_positive`, nothing
//!   done (a key ID is not secret: a string with a real ID and a made-up secret must not revoke
//!   someone else's key);
//! - a real key that is live: revoked at once (the tenant's default) or, under the tenant's
//!   `flag` policy ([`policy`]), only audited; either way an admin audit record names where it was
//!   found. `true_positive`;
//! - a real key already revoked or expired: audited, `true_positive`.
//!
//! The answer (one verdict per string, [`report`]) is remembered by the body's SHA-256 in a
//! bounded table: the same report delivered again is answered the same and acted on once.

pub mod policy;
pub mod report;
pub mod scanner_keys;
mod transport;
pub mod webhook;
#[cfg(test)]
mod webhook_tests;

use std::net::IpAddr;
use std::sync::Arc;

use keymint_jwks::{RevocationTarget, UnixTime};

use crate::domain::audit::Actor;
use crate::domain::keys::api_key;
use crate::domain::keys::key_hash::KeyHasher;
use crate::domain::refusal::{InvalidInput, ScanRefusal};
use crate::domain::settings::SharedSettings;
use crate::domain::{DomainError, Fault, revocation, unix};
use crate::store::{Applied, AuditRecord, KeyRecord, Store};

use policy::OnLeak;
use report::{Label, Reported, Verdict};
use scanner_keys::ScannerKeyring;

/// How many reports are remembered for answering a redelivery; older ones are forgotten (a
/// scanner redelivers within minutes). Acting on a forgotten report again is harmless: a revoked
/// key stays revoked, and only its audit record repeats.
pub const REMEMBERED_REPORTS: i64 = 10_000;

/// The actor named in the audit records of reports.
const SCANNER: &str = "secret-scanner";

/// The signature headers of a report.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// `Github-Public-Key-Identifier`.
    pub key_identifier: Option<&'a str>,
    /// `Github-Public-Key-Signature`.
    pub signature: Option<&'a str>,
}

/// Receives secret-scanning reports.
pub struct LeakDesk<S> {
    store: Arc<S>,
    hasher: KeyHasher,
    keyring: Option<Arc<ScannerKeyring>>,
    settings: SharedSettings,
}

impl<S> std::fmt::Debug for LeakDesk<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeakDesk")
            .field("enabled", &self.keyring.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: Store> LeakDesk<S> {
    /// A desk checking reports against `keyring` (`None`: reports are refused as not enabled).
    pub fn new(
        store: Arc<S>,
        hasher: KeyHasher,
        keyring: Option<Arc<ScannerKeyring>>,
        settings: SharedSettings,
    ) -> Self {
        Self {
            store,
            hasher,
            keyring,
            settings,
        }
    }

    /// Checks and acts on a report; the answer's JSON.
    pub async fn receive(
        &self,
        signed: Signed<'_>,
        body: &[u8],
        client_ip: IpAddr,
        now: UnixTime,
    ) -> Result<String, DomainError> {
        let keyring = self
            .keyring
            .as_ref()
            .ok_or(DomainError::ReportRefused(ScanRefusal::NotEnabled))?;
        keyring
            .verify(signed.key_identifier, signed.signature, body)
            .await
            .map_err(DomainError::ReportRefused)?;
        let digest = report::hex(ring::digest::digest(&ring::digest::SHA256, body).as_ref());
        if let Some(answer) = self.store.leak_report(&digest).await? {
            tracing::info!(target: "keymint::audit", %client_ip, report = %digest, "secret-scanning report delivered again: answered as the first time, nothing done");
            return Ok(answer);
        }
        let reported = report::parse(body)
            .map_err(|e| DomainError::Invalid(InvalidInput::Report(e.to_string())))?;
        let mut verdicts = Vec::with_capacity(reported.len());
        for r in &reported {
            let label = self.judge(r, client_ip, now).await?;
            verdicts.push(Verdict::on(r, label));
        }
        let answer = serde_json::to_string(&verdicts)
            .map_err(|e| DomainError::Internal(Fault::because("report answer", e)))?;
        let real = verdicts
            .iter()
            .filter(|v| v.label == Label::TruePositive)
            .count();
        tracing::info!(target: "keymint::audit", %client_ip, report = %digest, tokens = verdicts.len(), real, "secret-scanning report received");
        // Another replica that got the same delivery at the same moment may have recorded it
        // first: its answer is the same one (labels say what a string is, not what was done).
        let _first = self
            .store
            .record_leak_report(&digest, unix(now), &answer, REMEMBERED_REPORTS)
            .await?;
        Ok(answer)
    }

    /// Whether `r` is one of this issuer's keys, acting on it if it is.
    async fn judge(
        &self,
        r: &Reported,
        client_ip: IpAddr,
        now: UnixTime,
    ) -> Result<Label, DomainError> {
        let Ok(presented) = api_key::parse(r.token()) else {
            return Ok(Label::FalsePositive);
        };
        let Some(key) = self.store.key(&presented.key_id).await? else {
            return Ok(Label::FalsePositive);
        };
        if key.kind != presented.kind.as_str()
            || key.env != presented.env.as_str()
            || !self
                .hasher
                .verify(&key.key_id, presented.secret.expose(), &key.secret_hash)
        {
            return Ok(Label::FalsePositive);
        }
        let actor = Actor {
            name: SCANNER,
            client_ip: Some(client_ip),
        };
        let mut audit = actor.stamp(AuditRecord {
            at: unix(now),
            action: "key.leak_report".into(),
            outcome: "ok".into(),
            key_id: Some(key.key_id.clone()),
            tenant: Some(key.tenant.clone()),
            detail: Some(r.location()),
            ..AuditRecord::default()
        });
        if key.revoked_at.is_some() {
            audit.outcome = "already_revoked".into();
        } else if key.expires_at <= unix(now) {
            audit.outcome = "expired".into();
        } else {
            let tenant_policy = self.store.tenant_policy(&key.tenant).await?;
            let action = match policy::on_leak(tenant_policy.as_ref()) {
                OnLeak::Flag => {
                    audit.action = "key.leak_flag".into();
                    self.store
                        .insert_audit(std::slice::from_ref(&audit))
                        .await?;
                    crate::domain::audit::log(&audit);
                    "flagged"
                }
                OnLeak::Revoke => {
                    self.revoke(&presented.key_id, &key, audit, now).await?;
                    "revoked"
                }
            };
            // After the revocation is committed: the owner's call never delays it.
            let event = webhook::LeakEvent {
                kind: "key.leaked",
                action,
                key_id: &key.key_id,
                tenant: &key.tenant,
                found_at: r.url(),
                source: r.source(),
                reported_at: unix(now),
            };
            webhook::enqueue(&*self.store, tenant_policy.as_ref(), &event, now).await?;
            return Ok(Label::TruePositive);
        }
        self.store
            .insert_audit(std::slice::from_ref(&audit))
            .await?;
        crate::domain::audit::log(&audit);
        Ok(Label::TruePositive)
    }

    async fn revoke(
        &self,
        key_id: &keymint_jwks::ApiKeyId,
        key: &KeyRecord,
        mut audit: AuditRecord,
        now: UnixTime,
    ) -> Result<(), DomainError> {
        audit.action = "key.leak_revoke".into();
        let own = self.settings.load().max_token_ttl();
        let ttl = revocation::covered_ttl(&*self.store, own).await?;
        let entry = revocation::record(RevocationTarget::Key(key_id.clone()), now, ttl);
        if self.store.revoke_key(key_id, &entry, &audit).await? == Applied::Unchanged {
            // Revoked by someone else since it was read: note the report all the same.
            audit.action = "key.leak_report".into();
            audit.outcome = "already_revoked".into();
            self.store
                .insert_audit(std::slice::from_ref(&audit))
                .await?;
        }
        crate::domain::audit::log(&audit);
        tracing::warn!(key_id = %key.key_id, tenant = %key.tenant, "a leaked key was reported by the secret scanner");
        Ok(())
    }
}
