//! The one SQL implementation of [`Store`](super::Store), shared by SQLite and Postgres.
//!
//! Both backends run the very same statements: `$N` placeholders (sqlx's SQLite driver reads them
//! too), `CASE` instead of the non-portable `max(a, b)` / `GREATEST`, empty blobs bound rather than
//! written as literals, `ON CONFLICT` upserts and `UPDATE … FROM` (SQLite ≥ 3.33, Postgres). What
//! does differ is behind three hooks each backend provides as associated functions:
//!
//! - `order_changes(tx)`, taken first by every transaction that writes the change feed: Postgres
//!   hands out `changes.id` from a sequence at insert time, so two
//!   concurrent transactions could commit their IDs out of order and a poller reading `id > last`
//!   would skip one for good. It takes a transaction-scoped advisory lock first, so change IDs
//!   commit in order. SQLite serializes writers already.
//! - `append_audit(tx, records)`: a batch of audit records in one statement, each backend's way.
//! - `after_bulk_load(&self)`: SQLite folds its write-ahead log after a bulk insert.
//!
//! A macro rather than generic code, because sqlx's per-database bounds cannot be written once
//! for "any database that stores `i64`, `String`, `bool` and `Vec<u8>`" on stable Rust.

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
            ) -> $crate::store::StoreResult<bool> {
                let done = ::sqlx::query(
                    "INSERT INTO revocations (kind, target, revoked_at, drop_after) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (kind, target) DO UPDATE SET drop_after =
                        CASE WHEN revocations.drop_after > excluded.drop_after
                             THEN revocations.drop_after ELSE excluded.drop_after END",
                )
                .bind(&e.kind)
                .bind(&e.target)
                .bind(e.revoked_at)
                .bind(e.drop_after)
                .execute(&mut **tx)
                .await
                .map_err(unavailable)?;
                Ok(done.rows_affected() > 0)
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
                Self::revocation_in(&mut tx, entry).await?;
                Self::audit_in(&mut tx, audit).await?;
                Self::change_in(&mut tx, kind, target, audit.at).await?;
                Self::change_in(&mut tx, "revocation", target, audit.at).await?;
                tx.commit().await.map_err(unavailable)
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
            async fn ping(&self) -> $crate::store::StoreResult<()> {
                ::sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map_err(unavailable)?;
                Ok(())
            }

            async fn setting(&self, name: &str) -> $crate::store::StoreResult<Option<String>> {
                ::sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(unavailable)
            }

            async fn set_setting(&self, name: &str, value: &str) -> $crate::store::StoreResult<()> {
                ::sqlx::query(
                    "INSERT INTO settings (name, value) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )
                .bind(name)
                .bind(value)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
                Ok(())
            }

            async fn insert_key(
                &self,
                key: &$crate::store::KeyRecord,
                audit: &$crate::store::AuditRecord,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                Self::insert_key_in(&mut tx, key).await?;
                Self::audit_in(&mut tx, audit).await?;
                Self::change_in(&mut tx, "key", &key.key_id, audit.at).await?;
                tx.commit().await.map_err(unavailable)
            }

            async fn insert_keys(
                &self,
                keys: &[$crate::store::KeyRecord],
                audit: &$crate::store::AuditRecord,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                for k in keys {
                    Self::insert_key_in(&mut tx, k).await?;
                }
                Self::audit_in(&mut tx, audit).await?;
                tx.commit().await.map_err(unavailable)?;
                self.after_bulk_load().await
            }

            async fn key(
                &self,
                key_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::KeyRecord>> {
                ::sqlx::query_as("SELECT * FROM api_keys WHERE key_id = $1")
                    .bind(key_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(unavailable)
            }

            async fn keys(
                &self,
                tenant: Option<&str>,
            ) -> $crate::store::StoreResult<Vec<$crate::store::KeyRecord>> {
                ::sqlx::query_as(
                    "SELECT * FROM api_keys WHERE ($1 IS NULL OR tenant = $1)
                     ORDER BY created_at DESC, key_id",
                )
                .bind(tenant)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)
            }

            async fn tenants(
                &self,
                now: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::TenantSummary>> {
                ::sqlx::query_as(
                    "SELECT tenant, count(*) AS keys,
                            sum(CASE WHEN revoked_at IS NULL AND expires_at > $1 THEN 1 ELSE 0 END) AS active_keys
                     FROM api_keys WHERE is_admin = $2 GROUP BY tenant ORDER BY tenant",
                )
                .bind(now)
                .bind(false)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)
            }

            async fn revoke_key(
                &self,
                key_id: &str,
                entry: &$crate::store::RevocationRecord,
                audit: &$crate::store::AuditRecord,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                let done = ::sqlx::query(
                    "UPDATE api_keys SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL",
                )
                .bind(entry.revoked_at)
                .bind(key_id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                Self::finish_revocation(tx, entry, audit, "key", key_id).await?;
                Ok(true)
            }

            async fn rotate_key(
                &self,
                old_key_id: &str,
                grace_until: i64,
                successor: &$crate::store::KeyRecord,
                audit: &$crate::store::AuditRecord,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                let done = ::sqlx::query(
                    "UPDATE api_keys
                     SET expires_at = CASE WHEN expires_at < $1 THEN expires_at ELSE $1 END, rotated_to = $2
                     WHERE key_id = $3 AND revoked_at IS NULL AND rotated_to IS NULL",
                )
                .bind(grace_until)
                .bind(&successor.key_id)
                .bind(old_key_id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                Self::insert_key_in(&mut tx, successor).await?;
                Self::audit_in(&mut tx, audit).await?;
                Self::change_in(&mut tx, "key", old_key_id, audit.at).await?;
                Self::change_in(&mut tx, "key", &successor.key_id, audit.at).await?;
                tx.commit().await.map_err(unavailable)?;
                Ok(true)
            }

            async fn revoke_tenant(
                &self,
                tenant: &str,
                entry: &$crate::store::RevocationRecord,
                audit: &$crate::store::AuditRecord,
            ) -> $crate::store::StoreResult<u64> {
                let mut tx = self.begin_write().await?;
                let ids: Vec<String> = ::sqlx::query_scalar(
                    "UPDATE api_keys SET revoked_at = $1 WHERE tenant = $2 AND revoked_at IS NULL
                     RETURNING key_id",
                )
                .bind(entry.revoked_at)
                .bind(tenant)
                .fetch_all(&mut *tx)
                .await
                .map_err(unavailable)?;
                Self::revocation_in(&mut tx, entry).await?;
                for id in &ids {
                    let key_entry = $crate::store::RevocationRecord {
                        kind: "key".into(),
                        target: id.clone(),
                        ..entry.clone()
                    };
                    Self::revocation_in(&mut tx, &key_entry).await?;
                    Self::change_in(&mut tx, "key", id, audit.at).await?;
                }
                Self::audit_in(&mut tx, audit).await?;
                Self::change_in(&mut tx, "revocation", tenant, audit.at).await?;
                tx.commit().await.map_err(unavailable)?;
                Ok(ids.len() as u64)
            }

            async fn add_revocation(
                &self,
                entry: &$crate::store::RevocationRecord,
                audit: &$crate::store::AuditRecord,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                let added = Self::revocation_in(&mut tx, entry).await?;
                Self::audit_in(&mut tx, audit).await?;
                Self::change_in(&mut tx, "revocation", &entry.target, audit.at).await?;
                tx.commit().await.map_err(unavailable)?;
                Ok(added)
            }

            async fn touch_keys(&self, used: &[(String, i64)]) -> $crate::store::StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                // One statement per 400 keys (UPDATE … FROM a VALUES list), not one per key.
                for chunk in used.chunks(400) {
                    let mut q = ::sqlx::QueryBuilder::<$db>::new("WITH used(id, at) AS (");
                    q.push_values(chunk, |mut b, (id, at)| {
                        b.push_bind(id).push_bind(at);
                    });
                    q.push(
                        ") UPDATE api_keys SET last_used_at =
                            CASE WHEN coalesce(api_keys.last_used_at, 0) > used.at
                                 THEN api_keys.last_used_at ELSE used.at END
                         FROM used WHERE api_keys.key_id = used.id",
                    );
                    q.build().execute(&mut *tx).await.map_err(unavailable)?;
                }
                tx.commit().await.map_err(unavailable)
            }

            async fn revocations(
                &self,
                now: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::RevocationRecord>> {
                ::sqlx::query_as(
                    "SELECT kind, target, revoked_at, drop_after FROM revocations
                     WHERE drop_after > $1 ORDER BY revoked_at, kind, target",
                )
                .bind(now)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)
            }

            async fn latest_list(
                &self,
            ) -> $crate::store::StoreResult<Option<$crate::store::StoredList>> {
                ::sqlx::query_as(
                    "SELECT serial, jws, iat, exp, as_of FROM revocation_lists ORDER BY serial DESC LIMIT 1",
                )
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)
            }

            async fn insert_list(
                &self,
                list: &$crate::store::StoredList,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                // The serial is the primary key: of two replicas signing the same serial, the
                // second gets `Conflict` and serves the first one's bytes.
                ::sqlx::query(
                    "INSERT INTO revocation_lists (serial, jws, iat, exp, as_of) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(list.serial)
                .bind(&list.jws)
                .bind(list.iat)
                .bind(list.exp)
                .bind(list.as_of)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                // Old lists are never served again; keep a few for forensics.
                ::sqlx::query("DELETE FROM revocation_lists WHERE serial < $1")
                    .bind(list.serial - 16)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                Self::change_in(&mut tx, "list", &list.serial.to_string(), list.iat).await?;
                tx.commit().await.map_err(unavailable)
            }

            async fn signing_keys(
                &self,
            ) -> $crate::store::StoreResult<Vec<$crate::store::SigningKeyRecord>> {
                ::sqlx::query_as(
                    "SELECT * FROM signing_keys WHERE state <> 'removed' ORDER BY created_at, kid",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)
            }

            async fn insert_signing_key(
                &self,
                k: &$crate::store::SigningKeyRecord,
                audit: Option<&$crate::store::AuditRecord>,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                ::sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, encrypted_pkcs8, public_jwk, state, created_at, activate_at,
                        retired_at, remove_after, revoked_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&k.kid)
                .bind(&k.alg)
                .bind(&k.encrypted_pkcs8)
                .bind(&k.public_jwk)
                .bind(k.state.as_str())
                .bind(k.created_at)
                .bind(k.activate_at)
                .bind(k.retired_at)
                .bind(k.remove_after)
                .bind(k.revoked_at)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                if let Some(a) = audit {
                    Self::audit_in(&mut tx, a).await?;
                }
                Self::change_in(&mut tx, "signing_key", &k.kid, k.created_at).await?;
                tx.commit().await.map_err(unavailable)
            }

            async fn transition_signing_key(
                &self,
                kid: &str,
                from: $crate::store::SigningKeyState,
                to: $crate::store::SigningKeyState,
                at: i64,
                remove_after: Option<i64>,
                audit: Option<&$crate::store::AuditRecord>,
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::SigningKeyState;
                let mut tx = self.begin_write().await?;
                // Leaving the JWKS for good also destroys the private key material (an empty blob).
                let q = match to {
                    SigningKeyState::Active | SigningKeyState::Next => ::sqlx::query(
                        "UPDATE signing_keys SET state = $1, activate_at = $2 WHERE kid = $3 AND state = $4",
                    )
                    .bind(to.as_str())
                    .bind(at),
                    SigningKeyState::Retired => ::sqlx::query(
                        "UPDATE signing_keys SET state = $1, retired_at = $2, remove_after = $3
                         WHERE kid = $4 AND state = $5",
                    )
                    .bind(to.as_str())
                    .bind(at)
                    .bind(remove_after),
                    SigningKeyState::Revoked => ::sqlx::query(
                        "UPDATE signing_keys SET state = $1, revoked_at = $2, remove_after = $3, encrypted_pkcs8 = $4
                         WHERE kid = $5 AND state = $6",
                    )
                    .bind(to.as_str())
                    .bind(at)
                    .bind(remove_after)
                    .bind(Vec::<u8>::new()),
                    SigningKeyState::Removed => ::sqlx::query(
                        "UPDATE signing_keys SET state = $1, remove_after = coalesce($2, remove_after), encrypted_pkcs8 = $3
                         WHERE kid = $4 AND state = $5",
                    )
                    .bind(to.as_str())
                    .bind(remove_after)
                    .bind(Vec::<u8>::new()),
                };
                let q = q.bind(kid).bind(from.as_str());
                let done = q.execute(&mut *tx).await.map_err(unavailable)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                if let Some(a) = audit {
                    Self::audit_in(&mut tx, a).await?;
                }
                Self::change_in(&mut tx, "signing_key", kid, at).await?;
                tx.commit().await.map_err(unavailable)?;
                Ok(true)
            }

            async fn revoke_signing_key(
                &self,
                kid: &str,
                entry: &$crate::store::RevocationRecord,
                audit: &$crate::store::AuditRecord,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                let done = ::sqlx::query(
                    "UPDATE signing_keys SET state = 'revoked', revoked_at = $1, encrypted_pkcs8 = $2
                     WHERE kid = $3 AND state IN ('next', 'active', 'retired')",
                )
                .bind(entry.revoked_at)
                .bind(Vec::<u8>::new())
                .bind(kid)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                Self::finish_revocation(tx, entry, audit, "signing_key", kid).await?;
                Ok(true)
            }

            async fn put_scope(
                &self,
                name: &str,
                public: bool,
                audit: &$crate::store::AuditRecord,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                ::sqlx::query(
                    "INSERT INTO scopes (name, public, created_at) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO UPDATE SET public = excluded.public",
                )
                .bind(name)
                .bind(public)
                .bind(audit.at)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                Self::audit_in(&mut tx, audit).await?;
                Self::change_in(&mut tx, "scope", name, audit.at).await?;
                tx.commit().await.map_err(unavailable)
            }

            async fn scopes(&self) -> $crate::store::StoreResult<Vec<(String, bool)>> {
                ::sqlx::query_as("SELECT name, public FROM scopes ORDER BY name")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(unavailable)
            }

            async fn publishable_origins(
                &self,
                now: i64,
            ) -> $crate::store::StoreResult<Vec<String>> {
                let rows: Vec<String> = ::sqlx::query_scalar(
                    "SELECT allow_origins FROM api_keys
                     WHERE kind = 'pk' AND revoked_at IS NULL AND expires_at > $1",
                )
                .bind(now)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
                let mut all: Vec<String> = rows
                    .iter()
                    .flat_map(|r| r.split_whitespace().map(str::to_owned))
                    .collect();
                all.sort();
                all.dedup();
                Ok(all)
            }

            async fn claim_dpop_proof(
                &self,
                id: &str,
                until: i64,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                // Forget proofs nobody can present any more, a few at a time.
                ::sqlx::query(
                    "DELETE FROM dpop_proofs WHERE id IN
                        (SELECT id FROM dpop_proofs WHERE until < $1 LIMIT 64)",
                )
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                let done = ::sqlx::query(
                    "INSERT INTO dpop_proofs (id, until) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                )
                .bind(id)
                .bind(until)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                tx.commit().await.map_err(unavailable)?;
                Ok(done.rows_affected() == 1)
            }

            async fn last_change(&self) -> $crate::store::StoreResult<i64> {
                let id: Option<i64> = ::sqlx::query_scalar("SELECT max(id) FROM changes")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(unavailable)?;
                Ok(id.unwrap_or(0))
            }

            async fn changes_since(
                &self,
                after: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::Change>> {
                ::sqlx::query_as(
                    "SELECT id, kind, target FROM changes WHERE id > $1 ORDER BY id LIMIT 10000",
                )
                .bind(after)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)
            }

            async fn insert_audit(
                &self,
                records: &[$crate::store::AuditRecord],
            ) -> $crate::store::StoreResult<()> {
                if records.is_empty() {
                    return Ok(());
                }
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                Self::append_audit(&mut tx, records).await?;
                tx.commit().await.map_err(unavailable)
            }

            async fn audit(
                &self,
                query: &$crate::store::AuditQuery,
            ) -> $crate::store::StoreResult<Vec<$crate::store::AuditEntry>> {
                // `id < coalesce(…)` rather than `$1 IS NULL OR id < $1`: SQLite walks the rowid
                // range from the cursor only in the first form, so a page deep in a large history
                // costs a page, not a scan of everything newer.
                ::sqlx::query_as(
                    "SELECT * FROM audit
                     WHERE id < coalesce($1, 9223372036854775807) AND ($2 IS NULL OR action = $2)
                       AND ($3 IS NULL OR outcome = $3) AND ($4 IS NULL OR key_id = $4)
                       AND ($5 IS NULL OR tenant = $5) AND ($6 IS NULL OR at >= $6)
                       AND ($7 IS NULL OR at < $7)
                     ORDER BY id DESC LIMIT $8",
                )
                .bind(query.before)
                .bind(&query.action)
                .bind(&query.outcome)
                .bind(&query.key_id)
                .bind(&query.tenant)
                .bind(query.since)
                .bind(query.until)
                .bind(query.limit)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)
            }
        }
    };
}

pub(super) use sql_store;
