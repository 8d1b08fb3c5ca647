//! The one SQL implementation of [`Store`](super::Store), shared by SQLite and Postgres.
//!
//! Both backends run the very same statements: `$N` placeholders (sqlx's SQLite driver reads them
//! too), `CASE` instead of the non-portable `max(a, b)` / `GREATEST`, empty blobs bound rather than
//! written as literals, `ON CONFLICT` upserts and `UPDATE … FROM` (SQLite ≥ 3.33, Postgres). What
//! does differ is behind four hooks each backend provides as associated functions:
//!
//! - `order_changes(tx)`, taken first by every transaction that writes the change feed: Postgres
//!   hands out `changes.id` from a sequence at insert time, so two
//!   concurrent transactions could commit their IDs out of order and a poller reading `id > last`
//!   would skip one for good. It takes a transaction-scoped advisory lock first, so change IDs
//!   commit in order. SQLite serializes writers already.
//! - `append_audit(tx, records)`: a batch of audit records in one statement, each backend's way.
//! - `after_bulk_load(&self)`: SQLite folds its write-ahead log after a bulk insert.
//! - `wait_for_change(&self, max)`: Postgres wakes on `NOTIFY`; SQLite just waits.
//!
//! The statements live with their concept, each module a macro stamped into the one `Store` impl
//! below: [`keys`], [`revocations`], [`signing_keys`], [`scopes`], [`history`] (change feed and
//! audit records), [`leaks`] (secret-scanning reports) and [`service`] (ping, settings, DPoP proof IDs); the transaction helpers they
//! share are here.
//!
//! A macro rather than generic code, because sqlx's per-database bounds cannot be written once
//! for "any database that stores `i64`, `String`, `bool` and `Vec<u8>`" on stable Rust.

pub(super) mod history;
pub(super) mod keys;
pub(super) mod leaks;
pub(super) mod revocations;
pub(super) mod scopes;
pub(super) mod service;
pub(super) mod signing_keys;

macro_rules! sql_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Begins a transaction that will write to the change feed: ordered from its start,
            /// so that it never waits for the ordering while holding row locks another writer
            /// needs.
            async fn begin_write(
                &self,
            ) -> $crate::store::StoreResult<::sqlx::Transaction<'static, $db>> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                Self::order_changes(&mut tx).await?;
                Ok(tx)
            }

            async fn audit_in(
                tx: &mut ::sqlx::Transaction<'_, $db>,
                a: &$crate::store::AuditRecord,
            ) -> $crate::store::StoreResult<()> {
                Self::append_audit(tx, ::std::slice::from_ref(a)).await
            }

            async fn change_in(
                tx: &mut ::sqlx::Transaction<'_, $db>,
                kind: &str,
                target: &str,
                at: i64,
            ) -> $crate::store::StoreResult<()> {
                ::sqlx::query("INSERT INTO changes (kind, target, at) VALUES ($1, $2, $3)")
                    .bind(kind)
                    .bind(target)
                    .bind(at)
                    .execute(&mut **tx)
                    .await
                    .map_err(unavailable)?;
                Ok(())
            }

            async fn revocation_in(
                tx: &mut ::sqlx::Transaction<'_, $db>,
                e: &$crate::store::RevocationRecord,
            ) -> $crate::store::StoreResult<$crate::store::Applied> {
                let done = ::sqlx::query(
                    "INSERT INTO revocations (kind, target, revoked_at, drop_after) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (kind, target) DO UPDATE SET drop_after =
                        CASE WHEN revocations.drop_after > excluded.drop_after
                             THEN revocations.drop_after ELSE excluded.drop_after END",
                )
                .bind(e.target.kind())
                .bind(e.target.id())
                .bind(e.revoked_at)
                .bind(e.drop_after)
                .execute(&mut **tx)
                .await
                .map_err(unavailable)?;
                Ok($crate::store::Applied::from_rows(done.rows_affected()))
            }

            /// The end of revoking a key or signing key whose row was just marked: its list
            /// entry, the audit record, and the feed rows for the thing and for the list.
            async fn finish_revocation(
                mut tx: ::sqlx::Transaction<'_, $db>,
                entry: &$crate::store::RevocationRecord,
                audit: &$crate::store::AuditRecord,
                kind: &str,
                target: &str,
            ) -> $crate::store::StoreResult<()> {
                // The row was just marked revoked, so its entry is new or only extended.
                let _entry = Self::revocation_in(&mut tx, entry).await?;
                Self::audit_in(&mut tx, audit).await?;
                Self::change_in(&mut tx, kind, target, audit.at).await?;
                Self::change_in(&mut tx, "revocation", target, audit.at).await?;
                tx.commit().await.map_err(unavailable)
            }

            async fn insert_signing_key_in(
                tx: &mut ::sqlx::Transaction<'_, $db>,
                k: &$crate::store::SigningKeyRecord,
            ) -> $crate::store::StoreResult<()> {
                ::sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, encrypted_pkcs8, public_jwk, state, created_at, activate_at,
                        retired_at, remove_after, revoked_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(k.kid.as_str())
                .bind(&k.alg)
                .bind(&k.encrypted_pkcs8)
                .bind(&k.public_jwk)
                .bind(k.state.as_str())
                .bind(k.created_at)
                .bind(k.activate_at)
                .bind(k.retired_at)
                .bind(k.remove_after)
                .bind(k.revoked_at)
                .execute(&mut **tx)
                .await
                .map_err(unavailable)?;
                Ok(())
            }

            async fn insert_key_in(
                tx: &mut ::sqlx::Transaction<'_, $db>,
                k: &$crate::store::KeyRecord,
            ) -> $crate::store::StoreResult<()> {
                ::sqlx::query(
                    "INSERT INTO api_keys (key_id, kind, env, tenant, secret_hash, scopes, audiences, default_ttl, max_ttl,
                        expires_at, allow_ips, allow_origins, rate_limit, label, owner, is_admin, created_at, last_used_at,
                        revoked_at, rotated_to)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
                )
                .bind(&k.key_id)
                .bind(&k.kind)
                .bind(&k.env)
                .bind(&k.tenant)
                .bind(&k.secret_hash)
                .bind(&k.scopes)
                .bind(&k.audiences)
                .bind(k.default_ttl)
                .bind(k.max_ttl)
                .bind(k.expires_at)
                .bind(&k.allow_ips)
                .bind(&k.allow_origins)
                .bind(&k.rate_limit)
                .bind(&k.label)
                .bind(&k.owner)
                .bind(k.is_admin)
                .bind(k.created_at)
                .bind(k.last_used_at)
                .bind(k.revoked_at)
                .bind(&k.rotated_to)
                .execute(&mut **tx)
                .await
                .map_err(unavailable)?;
                Ok(())
            }
        }

        impl $crate::store::Store for $store {
            async fn change_hint(&self, max: ::std::time::Duration) {
                self.wait_for_change(max).await;
            }

            async fn database_clock(&self) -> $crate::store::StoreResult<Option<f64>> {
                self.server_clock().await
            }

            $crate::store::sql::keys::sql_keys!($db);
            $crate::store::sql::revocations::sql_revocations!();
            $crate::store::sql::signing_keys::sql_signing_keys!();
            $crate::store::sql::scopes::sql_scopes!();
            $crate::store::sql::history::sql_history!();
            $crate::store::sql::service::sql_service!();
            $crate::store::sql::leaks::sql_leaks!();
        }
    };
}

pub(super) use sql_store;
