//! Copying an issuer's database into a new, empty one through the [`Store`] trait only: what
//! `keymint migrate` does to move from the embedded SQLite file to Postgres, so that replicas take
//! over with every API key, signing key and revocation working as before.
//!
//! The copy goes in this order: the audit history (oldest first, so that it reads in order before
//! the migration's own records), the signing keys with their states (private keys still sealed:
//! the copy never decrypts them, the replicas will), every API key (revoked, expired and admin keys
//! too, in one transaction), the revocation entries still in force, the scopes, the server
//! settings, and the newest signed revocation list, whose serial the replicas continue from so
//! that no verifier ever sees it go backwards.
//!
//! Not copied, on purpose: the change feed (each database numbers its own, and the copy writes the
//! target's), DPoP proof IDs (each matters for a minute after its proof was made), signing keys
//! already removed and revocation entries past `drop_after` (nothing can use them any more), and
//! lists older than the newest. The two server secrets are in no database at all.
//!
//! # The calls, in order
//!
//! 1. [`Migration::read`] takes a [`Snapshot`] of the source before anything is written, and
//!    refuses a source with no API keys and no signing keys (most likely the wrong database).
//! 2. [`Snapshot::check_encryption_key`] makes sure that the encryption key the replicas will be
//!    given opens every sealed private key: the copy cannot tell otherwise.
//! 3. [`Migration::check_target`] refuses a target that holds anything; the [`EmptyTarget`] it
//!    returns is the only thing [`Migration::copy`] copies into, and only once.
//! 4. [`Migration::copy`] copies the snapshot and then fails with a conflict if the source changed
//!    meanwhile (a process still uses it): the copy would miss what was written.
//! 5. [`Migration::finish`] writes the migration's own audit record to both databases.
//!
//! A copy that stopped half-way leaves a target that the next attempt refuses until it is emptied.
//! A store error says what failed, not during what: [`Migration::doing`] says what the migration
//! was doing when it stopped.

mod copied;
mod snapshot;
mod step;

pub use copied::Copied;
pub use snapshot::Snapshot;
pub use step::{Part, Step};

use keymint_jwks::RevocationTarget;

use crate::domain::DomainError;
use crate::domain::refusal::{ConflictReason, InvalidInput};
use crate::store::{AuditQuery, AuditRecord, Store, StoreError, StoreResult, StoredList};
use snapshot::newest_audit;

/// The audit action of the migration's own records.
pub const ACTION: &str = "database.migrate";

/// The settings every server on a database shares (`domain::settings`), which replicas on the
/// target must find as the source's servers ran with, and the fingerprints of the secrets the
/// move carries (`domain::settings::secrets`), so that a replica given other secrets refuses.
fn shared_settings() -> impl Iterator<Item = &'static str> {
    crate::domain::settings::SettingName::stored_keys()
        .into_iter()
        .chain(crate::domain::settings::secrets::STORED)
}

/// Audit records per read and per write.
const AUDIT_BATCH: i64 = 2000;

/// One copy from a source store into an empty target; see the module docs for the order of calls.
#[derive(Debug)]
pub struct Migration<'a, S> {
    source: &'a S,
    source_name: &'a str,
    target_name: &'a str,
    actor: &'a str,
    now: i64,
    audit_batch: i64,
    step: Step,
}

impl<'a, S: Store> Migration<'a, S> {
    /// A migration from `source`. The names are for messages and the audit record, as given: the
    /// caller keeps passwords out of them. `actor` and `now` go into the audit records.
    pub fn new(
        source: &'a S,
        source_name: &'a str,
        target_name: &'a str,
        actor: &'a str,
        now: i64,
    ) -> Self {
        Self {
            source,
            source_name,
            target_name,
            actor,
            now,
            audit_batch: AUDIT_BATCH,
            step: Step::Starting,
        }
    }

    /// What the migration is doing, or was doing when it failed.
    pub fn step(&self) -> Step {
        self.step
    }

    /// [`step`](Self::step) in words, naming the target where it helps.
    pub fn doing(&self) -> String {
        match self.step {
            Step::Recording => format!("writing the audit record to {}", self.target_name),
            step => step.to_string(),
        }
    }

    /// Reads everything to copy, refusing a source with no API keys and no signing keys
    /// ([`DomainError::Invalid`]).
    pub async fn read(&mut self) -> Result<Snapshot, DomainError> {
        let source = self.source;
        let now = self.now;
        let last_change = self
            .run(Step::Reading(Part::ChangeFeed), source.last_change())
            .await?;
        let newest_audit = self
            .run(Step::Reading(Part::AuditRecords), newest_audit(source))
            .await?;
        let mut keys = self
            .run(Step::Reading(Part::ApiKeys), source.keys(None))
            .await?;
        // The store lists newest first; the copy keeps the order they were made in.
        keys.reverse();
        let mut settings = Vec::new();
        for name in shared_settings() {
            let value = self
                .run(Step::Reading(Part::Settings), source.setting(name))
                .await?;
            if let Some(v) = value {
                settings.push((name, v));
            }
        }
        let snapshot = Snapshot {
            keys,
            signing_keys: self
                .run(Step::Reading(Part::SigningKeys), source.signing_keys())
                .await?,
            revocations: self
                .run(Step::Reading(Part::Revocations), source.revocations(now))
                .await?,
            scopes: self
                .run(Step::Reading(Part::Scopes), source.scopes())
                .await?,
            policies: self
                .run(
                    Step::Reading(Part::TenantPolicies),
                    source.tenant_policies(),
                )
                .await?,
            settings,
            list: self
                .run(Step::Reading(Part::RevocationList), source.latest_list())
                .await?,
            last_change,
            newest_audit,
        };
        if snapshot.keys.is_empty() && snapshot.signing_keys.is_empty() {
            return Err(DomainError::Invalid(InvalidInput::NothingToMigrate(
                self.source_name.to_owned(),
            )));
        }
        Ok(snapshot)
    }

    /// Refuses a target that holds API keys, signing keys, a revocation list or audit records
    /// ([`DomainError::Conflict`], naming what it found): the copy never merges.
    pub async fn check_target<'t, T: Store>(
        &mut self,
        target: &'t T,
    ) -> Result<EmptyTarget<'t, T>, DomainError> {
        let step = Step::CheckingTarget;
        let keys = self.run(step, target.keys(None)).await?.len();
        let signing_keys = self.run(step, target.signing_keys()).await?.len();
        let list = self.run(step, target.latest_list()).await?;
        let audit = self.run(step, newest_audit(target)).await?;
        let mut found = Vec::new();
        if keys > 0 {
            found.push(format!("{keys} API keys"));
        }
        if signing_keys > 0 {
            found.push(format!("{signing_keys} signing keys"));
        }
        if let Some(l) = list {
            found.push(format!("a revocation list with serial {}", l.serial));
        }
        if audit.is_some() {
            found.push("audit records".into());
        }
        if found.is_empty() {
            return Ok(EmptyTarget(target));
        }
        Err(DomainError::Conflict(ConflictReason::TargetNotEmpty(
            found.join(", "),
        )))
    }

    /// Copies `snap` into `target`, each item with an audit record of its own, then makes sure the
    /// source is still as `snap` saw it ([`DomainError::Conflict`] at [`Step::Rereading`] if not).
    pub async fn copy<T: Store>(
        &mut self,
        snap: &Snapshot,
        target: EmptyTarget<'_, T>,
    ) -> Result<Copied, DomainError> {
        let target = target.0;
        let audit = self.copy_audit(target, snap.newest_audit).await?;
        let usage = self.copy_usage(target).await?;

        for k in &snap.signing_keys {
            let a = self.record(format!(
                "copied signing key {} ({})",
                k.kid,
                k.state.as_str()
            ));
            self.run(
                Step::Writing(Part::SigningKeys),
                target.insert_signing_key(k, Some(&a)),
            )
            .await?;
        }
        if !snap.keys.is_empty() {
            let a = self.record(format!("copied {} API keys", snap.keys.len()));
            self.run(
                Step::Writing(Part::ApiKeys),
                target.insert_keys(&snap.keys, &a),
            )
            .await?;
        }
        for r in &snap.revocations {
            let mut a = self.record(format!(
                "copied revocation entry {} {}",
                r.target.kind(),
                r.target.id()
            ));
            match &r.target {
                RevocationTarget::Key(id) => a.key_id = Some(id.to_string()),
                RevocationTarget::Tenant(t) => a.tenant = Some(t.to_string()),
                RevocationTarget::Jti(_) | RevocationTarget::Kid(_) => {}
            }
            // Into an empty target every entry is new.
            let _added = self
                .run(
                    Step::Writing(Part::Revocations),
                    target.add_revocation(r, &a),
                )
                .await?;
        }
        for s in &snap.scopes {
            let a = AuditRecord {
                scopes: Some(s.name.to_string()),
                ..self.record(format!("copied scope, public={}", s.visibility.is_public()))
            };
            self.run(
                Step::Writing(Part::Scopes),
                target.put_scope(&s.name, s.visibility, &a),
            )
            .await?;
        }
        for p in &snap.policies {
            let a = AuditRecord {
                tenant: Some(p.tenant.clone()),
                ..self.record(format!("copied tenant policy, on_leak={}", p.on_leak))
            };
            self.run(
                Step::Writing(Part::TenantPolicies),
                target.put_tenant_policy(p, Some(&a)),
            )
            .await?;
        }
        for (name, value) in &snap.settings {
            self.run(
                Step::Writing(Part::Settings),
                target.set_setting(name, value),
            )
            .await?;
        }
        if let Some(l) = &snap.list {
            // `as_of` counts the source's change feed, which means nothing in the target: 0 makes
            // the first replica re-sign the list at once, with the next serial, from the entries.
            let list = StoredList {
                as_of: 0,
                ..l.clone()
            };
            self.run(
                Step::Writing(Part::RevocationList),
                target.insert_list(&list, None),
            )
            .await?;
        }

        let source = self.source;
        if !self.run(Step::Rereading, snap.unchanged(source)).await? {
            return Err(source_changed());
        }
        Ok(Copied {
            audit,
            usage,
            signing_keys: snap.signing_keys.len(),
            keys: snap.keys.len(),
            revoked_keys: snap.keys.iter().filter(|k| k.revoked_at.is_some()).count(),
            revocations: snap.revocations.len(),
            scopes: snap.scopes.len(),
            settings: snap.settings.len(),
            serial: snap.list.as_ref().map(|l| l.serial),
        })
    }

    /// Writes the migration's audit record (both names and what was copied) to the target, then to
    /// the source, so that the old database says where everything went for whoever opens it
    /// later, and logs it. Only the target's write can fail the migration: the source's failure
    /// is in [`Finished::source_unrecorded`].
    pub async fn finish<T: Store>(
        &mut self,
        target: &T,
        copied: &Copied,
    ) -> Result<Finished, DomainError> {
        let record = self.record(format!(
            "from {} to {}: {copied}",
            self.source_name, self.target_name
        ));
        let records = std::slice::from_ref(&record);
        self.run(Step::Recording, target.insert_audit(records))
            .await?;
        let source_unrecorded = self.source.insert_audit(records).await.err();
        crate::domain::audit::log(&record);
        Ok(Finished { source_unrecorded })
    }

    /// Copies the audit records up to `newest`, oldest first, `audit_batch` at a time. The store
    /// pages newest first, so a first pass notes where each page begins and a second one writes
    /// the pages in reverse: memory holds one page and one cursor per page, however long the
    /// history.
    async fn copy_audit<T: Store>(
        &mut self,
        target: &T,
        newest: Option<i64>,
    ) -> Result<u64, DomainError> {
        let Some(newest) = newest else {
            return Ok(0);
        };
        let (source, batch) = (self.source, self.audit_batch);
        let page = |before: i64| AuditQuery {
            before: Some(before),
            limit: batch,
            ..AuditQuery::default()
        };
        let reading = Step::Reading(Part::AuditRecords);
        let mut starts = Vec::new();
        let mut before = newest.saturating_add(1);
        let mut expected = 0u64;
        loop {
            let rows = self.run(reading, source.audit(&page(before))).await?;
            let Some(oldest) = rows.last().map(|e| e.id) else {
                break;
            };
            starts.push(before);
            expected += rows.len() as u64;
            before = oldest;
            if i64::try_from(rows.len()).unwrap_or(i64::MAX) < batch {
                break;
            }
        }
        let mut copied = 0u64;
        for &before in starts.iter().rev() {
            let rows = self.run(reading, source.audit(&page(before))).await?;
            let records: Vec<AuditRecord> = rows.into_iter().rev().map(|e| e.record).collect();
            self.run(
                Step::Writing(Part::AuditRecords),
                target.insert_audit(&records),
            )
            .await?;
            copied += records.len() as u64;
        }
        if copied != expected {
            // Records came or went between the two passes.
            self.step = Step::Rereading;
            return Err(source_changed());
        }
        Ok(copied)
    }

    /// Copies the usage rollups, `audit_batch` rows at a time, in ID order. A server still
    /// counting on the source adds to rows already copied or appends new ones: those counts are
    /// the few seconds between the copy and the switch, and they stay in the source's log.
    async fn copy_usage<T: Store>(&mut self, target: &T) -> Result<u64, DomainError> {
        let (source, batch) = (self.source, self.audit_batch);
        let mut after = 0;
        let mut copied = 0u64;
        loop {
            let rows = self
                .run(
                    Step::Reading(Part::UsageRollups),
                    source.usage_rows(after, batch),
                )
                .await?;
            let Some(last) = rows.last().map(|r| r.id) else {
                break;
            };
            let counts: Vec<_> = rows.into_iter().map(|r| r.count).collect();
            self.run(Step::Writing(Part::UsageRollups), target.add_usage(&counts))
                .await?;
            copied += counts.len() as u64;
            after = last;
            if i64::try_from(counts.len()).unwrap_or(i64::MAX) < batch {
                break;
            }
        }
        Ok(copied)
    }

    /// Runs one store call as `step`.
    async fn run<R>(
        &mut self,
        step: Step,
        call: impl Future<Output = StoreResult<R>>,
    ) -> Result<R, DomainError> {
        self.step = step;
        call.await.map_err(|e| self.failed(e))
    }

    /// A store error as the domain says it. A row that exists already is a conflict with what the
    /// target holds, said with the step, not an unavailable database.
    fn failed(&self, e: StoreError) -> DomainError {
        match e {
            StoreError::Conflict => DomainError::Conflict(ConflictReason::RowExists(self.doing())),
            other => other.into(),
        }
    }

    /// One of the migration's own audit records.
    fn record(&self, detail: String) -> AuditRecord {
        AuditRecord {
            at: self.now,
            action: ACTION.into(),
            outcome: "ok".into(),
            actor: Some(self.actor.into()),
            detail: Some(detail),
            ..AuditRecord::default()
        }
    }

    #[cfg(test)]
    fn with_audit_batch(mut self, batch: i64) -> Self {
        self.audit_batch = batch;
        self
    }
}

fn source_changed() -> DomainError {
    DomainError::Conflict(ConflictReason::SourceChanged)
}

/// A target that [`Migration::check_target`] found empty: the only thing a copy goes into, once.
#[derive(Debug)]
pub struct EmptyTarget<'t, T>(&'t T);

/// A finished migration.
#[derive(Debug)]
#[must_use]
pub struct Finished {
    /// Why the audit record was not written to the source, if it was not: worth a warning, not a
    /// failure, since the target has it.
    pub source_unrecorded: Option<StoreError>,
}

#[cfg(test)]
pub(crate) mod tests;
