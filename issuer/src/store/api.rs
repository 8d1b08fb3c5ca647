//! The [`Store`] surface, written once. [`store_methods!`] lists every method with its docs and
//! hands the list to a macro that writes what it needs from it: the trait itself here, the
//! dispatch of [`DbStore`](super::DbStore) in `any.rs`, and the fault-injecting test double in
//! `flaky.rs`. Adding a method is one entry here plus its SQL in `sql/`.

use std::future::Future;
use std::time::Duration;

use keymint_jwks::{ApiKeyId, Kid, Scope, TenantId};

use super::{
    Applied, AuditEntry, AuditQuery, AuditRecord, ChangePage, Claim, KeyRecord, RevocationRecord,
    ScopeRecord, SigningKeyRecord, SigningKeyState, StoreResult, StoredList, Successor,
    TenantPolicyRecord, TenantSummary, UsageCount, UsageEntry, UsageLine, Visibility,
    WebhookDelivery,
};

/// Calls `$then!` with every method of [`Store`]: `docs fn name(&self, args) -> Output;`.
macro_rules! store_methods {
    ($then:ident) => {
        $then! {
            /// Checks that the database answers.
            fn ping(&self) -> StoreResult<()>;
            /// A setting.
            fn setting(&self, name: &str) -> StoreResult<Option<String>>;
            /// Sets a setting (bookkeeping such as the token-lifetime high-water mark; the shared
            /// server settings go through [`put_settings`](Store::put_settings)).
            fn set_setting(&self, name: &str, value: &str) -> StoreResult<()>;
            /// Stores each setting not stored yet, in one transaction, leaving stored ones as they
            /// are (a server's first start; concurrent first starts agree on whoever came first).
            fn init_settings(&self, values: &[(&str, &str)]) -> StoreResult<()>;
            /// Changes shared settings: the values, an admin audit record and a `settings` change
            /// for the running servers, in one transaction. With `entry_span`, every revocation
            /// entry still listed at `audit.at` is kept until at least `revoked_at + entry_span`
            /// (a longer token lifetime), and the change feed says the list changed.
            fn put_settings(
                &self,
                values: &[(&str, &str)],
                entry_span: Option<i64>,
                audit: &AuditRecord
            ) -> StoreResult<()>;
            /// Inserts a new API key.
            fn insert_key(&self, key: &KeyRecord, audit: &AuditRecord) -> StoreResult<()>;
            /// Inserts many API keys in one transaction, with one audit record (bulk seeding).
            fn insert_keys(&self, keys: &[KeyRecord], audit: &AuditRecord) -> StoreResult<()>;
            /// One API key.
            fn key(&self, key_id: &ApiKeyId) -> StoreResult<Option<KeyRecord>>;
            /// API keys, optionally of one tenant, newest first.
            fn keys(&self, tenant: Option<&TenantId>) -> StoreResult<Vec<KeyRecord>>;
            /// At most `limit` API keys, optionally of one tenant, newest first (then by key ID),
            /// starting after the key `after` names by its creation time and ID.
            fn keys_page(
                &self,
                tenant: Option<&TenantId>,
                after: Option<(i64, &str)>,
                limit: i64
            ) -> StoreResult<Vec<KeyRecord>>;
            /// Tenants named by customer (non-admin) keys, with their key counts at `now`.
            fn tenants(&self, now: i64) -> StoreResult<Vec<TenantSummary>>;
            /// Revokes a key and records the revocation entry. False if the key does not exist or was
            /// already revoked.
            fn revoke_key(
                &self,
                key_id: &ApiKeyId,
                entry: &RevocationRecord,
                audit: &AuditRecord
            ) -> StoreResult<Applied>;
            /// Inserts `successor` and cuts the old key's expiry to `grace_until`.
            fn rotate_key(
                &self,
                old_key_id: &ApiKeyId,
                grace_until: i64,
                successor: &KeyRecord,
                audit: &AuditRecord
            ) -> StoreResult<Applied>;
            /// Revokes every key of a tenant and records the tenant entry; returns the number of keys.
            fn revoke_tenant(
                &self,
                tenant: &TenantId,
                entry: &RevocationRecord,
                audit: &AuditRecord
            ) -> StoreResult<u64>;
            /// Records a revocation entry (token or signing key) on its own.
            fn add_revocation(
                &self,
                entry: &RevocationRecord,
                audit: &AuditRecord
            ) -> StoreResult<Applied>;
            /// Records last-used times, in one transaction.
            fn touch_keys(&self, used: &[(ApiKeyId, i64)]) -> StoreResult<()>;
            /// Deletes at most `batch` keys revoked, or expired, before `before` (dead for longer
            /// than the audit retention) that have no usage rows left; returns how many went.
            fn prune_keys(&self, before: i64, batch: i64) -> StoreResult<u64>;
            /// Revocation entries still in force at `now` (`drop_after` not passed).
            fn revocations(&self, now: i64) -> StoreResult<Vec<RevocationRecord>>;
            /// The newest signed list.
            fn latest_list(&self) -> StoreResult<Option<StoredList>>;
            /// Stores a signed list made to follow the list `replacing` (its serial; `None` when
            /// there was none). `Conflict` if the newest stored list is another by now (another
            /// process signed first: of processes racing from one list, one wins and the others
            /// serve its bytes).
            fn insert_list(&self, list: &StoredList, replacing: Option<i64>) -> StoreResult<()>;
            /// All signing keys that are not removed.
            fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
            /// Inserts a signing key.
            fn insert_signing_key(
                &self,
                key: &SigningKeyRecord,
                audit: Option<&AuditRecord>
            ) -> StoreResult<()>;
            /// Moves a signing key to a new state, only if it is in `from` (so that concurrent processes
            /// do each transition once). Returns whether it moved.
            fn transition_signing_key(
                &self,
                kid: &Kid,
                from: SigningKeyState,
                to: SigningKeyState,
                at: i64,
                remove_after: Option<i64>,
                audit: Option<&AuditRecord>
            ) -> StoreResult<Applied>;
            /// Revokes a signing key at once: out of the JWKS, private key destroyed, and a `kid`
            /// revocation entry, in one transaction. False if no such key is published.
            fn revoke_signing_key(
                &self,
                kid: &Kid,
                successor: Option<Successor<'_>>,
                entry: &RevocationRecord,
                audit: &AuditRecord
            ) -> StoreResult<Applied>;
            /// Declares a scope (public or not); idempotent.
            fn put_scope(&self, name: &Scope, visibility: Visibility, audit: &AuditRecord) -> StoreResult<()>;
            /// Declared scopes and whether each is public.
            fn scopes(&self) -> StoreResult<Vec<ScopeRecord>>;
            /// Every origin allowed by a publishable key that is neither revoked nor expired at `now`.
            fn publishable_origins(&self, now: i64) -> StoreResult<Vec<String>>;
            /// Records a DPoP proof ID until `until` (dropping a few long-expired ones on the way).
            /// False if it was recorded before: a replay, whichever process saw it first.
            fn claim_dpop_proof(&self, id: &str, until: i64, now: i64) -> StoreResult<Claim>;
            /// Resolves when another process may just have written to the change feed, or after `max`
            /// at the latest: the change watcher waits on this between reads of the feed. Backends that
            /// can be told (Postgres: `LISTEN`/`NOTIFY`) wake early; the others just wait `max`.
            fn change_hint(&self, max: Duration) -> ();
            /// The database server's clock (Unix seconds), where it is another machine's
            /// (Postgres); `None` where the database is this process's own file (SQLite).
            fn database_clock(&self) -> StoreResult<Option<f64>>;
            /// The newest change ID.
            fn last_change(&self) -> StoreResult<i64>;
            /// Changes after `after`, oldest first, at most [`FEED_PAGE`](super::FEED_PAGE) of them: read on from the last.
            /// Says so when changes after `after` may have been pruned.
            fn changes_since(&self, after: i64) -> StoreResult<ChangePage>;
            /// Whether anything that changes the revocation list (a revocation or a signing-key change)
            /// came after change `after`, however many other changes came too (true as well when
            /// changes after `after` may have been pruned).
            fn list_changed_since(&self, after: i64) -> StoreResult<bool>;
            /// Deletes at most `batch` of the oldest changes made before `before`, never the
            /// newest change (its ID is what [`last_change`](Store::last_change) answers); returns
            /// how many went.
            fn prune_changes(&self, before: i64, batch: i64) -> StoreResult<u64>;
            /// Appends audit records in one transaction.
            fn insert_audit(&self, records: &[AuditRecord]) -> StoreResult<()>;
            /// Adds usage counts (one transaction), summing with the rows already there.
            fn add_usage(&self, counts: &[UsageCount]) -> StoreResult<()>;
            /// `key_id`'s usage from hour `since` on, summed per client, origin, action, outcome
            /// and reason, the largest counts first, at most `limit` lines.
            fn usage(&self, key_id: &str, since: i64, limit: i64) -> StoreResult<Vec<UsageLine>>;
            /// Usage rows with an ID above `after`, oldest first, at most `limit` (for `migrate`).
            fn usage_rows(&self, after: i64, limit: i64) -> StoreResult<Vec<UsageEntry>>;
            /// Deletes at most `batch` audit rows older than `before`; returns how many went.
            fn prune_audit(&self, before: i64, batch: i64) -> StoreResult<u64>;
            /// Deletes at most `batch` usage rows of hours before `before`; returns how many went.
            fn prune_usage(&self, before: i64, batch: i64) -> StoreResult<u64>;
            /// Deletes at most `batch` revocation entries whose `drop_after` is before `before`
            /// (no list has carried them since); returns how many went.
            fn prune_revocations(&self, before: i64, batch: i64) -> StoreResult<u64>;
            /// Every tenant's stored policy (tenants without one have the defaults).
            fn tenant_policies(&self) -> StoreResult<Vec<TenantPolicyRecord>>;
            /// One tenant's stored policy, if it has one.
            fn tenant_policy(&self, tenant: &str) -> StoreResult<Option<TenantPolicyRecord>>;
            /// Stores a tenant's policy (and the admin audit record, in the same transaction).
            fn put_tenant_policy(
                &self,
                policy: &TenantPolicyRecord,
                audit: Option<&AuditRecord>
            ) -> StoreResult<()>;
            /// The answer given to the secret-scanning report with this body digest, if one was.
            fn leak_report(&self, digest: &str) -> StoreResult<Option<String>>;
            /// Remembers the answer to a report, keeping only the newest `keep` reports.
            /// `Unchanged` if another process recorded the same report first.
            fn record_leak_report(
                &self,
                digest: &str,
                at: i64,
                answer: &str,
                keep: i64
            ) -> StoreResult<Applied>;
            /// Queues a webhook call.
            fn enqueue_webhook(&self, d: &WebhookDelivery) -> StoreResult<()>;
            /// Pending webhook calls due at `now`, oldest first, at most `limit`, and at most
            /// `per_tenant` of any one tenant (so one tenant's backlog cannot fill a round).
            fn due_webhooks(
                &self,
                now: i64,
                limit: i64,
                per_tenant: i64
            ) -> StoreResult<Vec<WebhookDelivery>>;
            /// Takes a due call for one attempt: pushes its `next_at` from `seen` to `until`, only if
            /// it is still pending at `seen` (so that of several replicas one tries it).
            fn claim_webhook(&self, id: i64, seen: i64, until: i64) -> StoreResult<Applied>;
            /// Records an attempt's outcome (`state`, `attempts`, `next_at`, `last_error` from `d`)
            /// and deletes finished calls beyond the newest `keep`.
            fn finish_webhook(&self, d: &WebhookDelivery, keep: i64) -> StoreResult<()>;
            /// Stored audit records matching `query`, newest first.
            fn audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>>;
        }
    };
}

/// Writes the trait from the list.
macro_rules! declare_store {
    ($($(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $out:ty;)*) => {
        /// Everything keymint persists. Implementations: [`SqliteStore`](super::SqliteStore),
        /// [`PgStore`](super::PgStore), and [`DbStore`](super::DbStore) (either, chosen by the
        /// database URL at run time).
        ///
        /// Every admin mutation takes its [`AuditRecord`] and writes it, and a [`Change`](super::Change), in the same
        /// transaction as the change itself.
        pub trait Store: Send + Sync + 'static {
            $($(#[$doc])* fn $name(&self $(, $arg: $ty)*) -> impl Future<Output = $out> + Send;)*
        }
    };
}

store_methods!(declare_store);
