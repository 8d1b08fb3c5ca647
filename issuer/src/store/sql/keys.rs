//! API keys: create (one or in bulk), read, list, tenants, revoke, rotate, revoke a tenant,
//! last-used times.
//!
//! Methods of [`Store`](crate::store::Store), stamped into each backend's impl by
//! [`sql_store!`](super::sql_store).

macro_rules! sql_keys {
    ($db:ty) => {
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
            key_id: &::keymint_jwks::ApiKeyId,
        ) -> $crate::store::StoreResult<Option<$crate::store::KeyRecord>> {
            ::sqlx::query_as("SELECT * FROM api_keys WHERE key_id = $1")
                .bind(key_id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)
        }

        async fn keys(
            &self,
            tenant: Option<&::keymint_jwks::TenantId>,
        ) -> $crate::store::StoreResult<Vec<$crate::store::KeyRecord>> {
            ::sqlx::query_as(
                "SELECT * FROM api_keys WHERE ($1 IS NULL OR tenant = $1)
                 ORDER BY created_at DESC, key_id",
            )
            .bind(tenant.map(::keymint_jwks::TenantId::as_str))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
        }

        async fn keys_page(
            &self,
            tenant: Option<&::keymint_jwks::TenantId>,
            after: Option<(i64, &str)>,
            limit: i64,
        ) -> $crate::store::StoreResult<Vec<$crate::store::KeyRecord>> {
            // Keyset pagination in the list's own order, one statement each way so that the
            // cursor's bound is a range on the (created_at DESC, key_id) index: a page deep in a
            // million keys costs a page, and a key created meanwhile never shifts one into the
            // next page twice.
            let tenant = tenant.map(::keymint_jwks::TenantId::as_str);
            match after {
                None => ::sqlx::query_as(
                    "SELECT * FROM api_keys WHERE ($1 IS NULL OR tenant = $1)
                     ORDER BY created_at DESC, key_id LIMIT $2",
                )
                .bind(tenant)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable),
                Some((created, id)) => ::sqlx::query_as(
                    "SELECT * FROM api_keys WHERE ($1 IS NULL OR tenant = $1)
                       AND created_at <= $2 AND (created_at < $2 OR key_id > $3)
                     ORDER BY created_at DESC, key_id LIMIT $4",
                )
                .bind(tenant)
                .bind(created)
                .bind(id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable),
            }
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
            key_id: &::keymint_jwks::ApiKeyId,
            entry: &$crate::store::RevocationRecord,
            audit: &$crate::store::AuditRecord,
        ) -> $crate::store::StoreResult<$crate::store::Applied> {
            let mut tx = self.begin_write().await?;
            let done = ::sqlx::query(
                "UPDATE api_keys SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL",
            )
            .bind(entry.revoked_at)
            .bind(key_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            if done.rows_affected() == 0 {
                return Ok($crate::store::Applied::Unchanged);
            }
            Self::finish_revocation(tx, entry, audit, "key", key_id.as_str()).await?;
            Ok($crate::store::Applied::Changed)
        }

        async fn rotate_key(
            &self,
            old_key_id: &::keymint_jwks::ApiKeyId,
            grace_until: i64,
            successor: &$crate::store::KeyRecord,
            audit: &$crate::store::AuditRecord,
        ) -> $crate::store::StoreResult<$crate::store::Applied> {
            let mut tx = self.begin_write().await?;
            let done = ::sqlx::query(
                "UPDATE api_keys
                 SET expires_at = CASE WHEN expires_at < $1 THEN expires_at ELSE $1 END, rotated_to = $2
                 WHERE key_id = $3 AND revoked_at IS NULL AND rotated_to IS NULL",
            )
            .bind(grace_until)
            .bind(&successor.key_id)
            .bind(old_key_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            if done.rows_affected() == 0 {
                return Ok($crate::store::Applied::Unchanged);
            }
            Self::insert_key_in(&mut tx, successor).await?;
            Self::audit_in(&mut tx, audit).await?;
            Self::change_in(&mut tx, "key", old_key_id.as_str(), audit.at).await?;
            Self::change_in(&mut tx, "key", &successor.key_id, audit.at).await?;
            tx.commit().await.map_err(unavailable)?;
            Ok($crate::store::Applied::Changed)
        }

        async fn revoke_tenant(
            &self,
            tenant: &::keymint_jwks::TenantId,
            entry: &$crate::store::RevocationRecord,
            audit: &$crate::store::AuditRecord,
        ) -> $crate::store::StoreResult<u64> {
            let mut tx = self.begin_write().await?;
            let ids: Vec<String> = ::sqlx::query_scalar(
                "UPDATE api_keys SET revoked_at = $1 WHERE tenant = $2 AND revoked_at IS NULL
                 RETURNING key_id",
            )
            .bind(entry.revoked_at)
            .bind(tenant.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable)?;
            // A tenant revoked again: the entry lives on to the later drop time, which is all.
            let _entry = Self::revocation_in(&mut tx, entry).await?;
            for id in &ids {
                let key_id = ::keymint_jwks::ApiKeyId::new(id.as_str())
                    .map_err(|e| $crate::store::StoreError::Corrupt(Box::new(e)))?;
                let key_entry = $crate::store::RevocationRecord {
                    target: ::keymint_jwks::RevocationTarget::Key(key_id),
                    ..entry.clone()
                };
                let _entry = Self::revocation_in(&mut tx, &key_entry).await?;
                Self::change_in(&mut tx, "key", id, audit.at).await?;
            }
            Self::audit_in(&mut tx, audit).await?;
            Self::change_in(&mut tx, "revocation", tenant.as_str(), audit.at).await?;
            tx.commit().await.map_err(unavailable)?;
            Ok(ids.len() as u64)
        }

        async fn touch_keys(
            &self,
            used: &[(::keymint_jwks::ApiKeyId, i64)],
        ) -> $crate::store::StoreResult<()> {
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            // One statement per 400 keys (UPDATE … FROM a VALUES list), not one per key.
            for chunk in used.chunks(400) {
                let mut q = ::sqlx::QueryBuilder::<$db>::new("WITH used(id, at) AS (");
                q.push_values(chunk, |mut b, (id, at)| {
                    b.push_bind(id.as_str()).push_bind(at);
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

        async fn prune_keys(&self, before: i64, batch: i64) -> $crate::store::StoreResult<u64> {
            // Expired keys first, then revoked ones, each statement one bounded batch found
            // through its own index (`api_keys_expires`, `api_keys_revoked`): the write lock is
            // held for a batch, never for the whole backlog. Not one statement with a UNION:
            // SQLite gathers the whole union before the LIMIT (370 ms a batch with 150,000 dead
            // keys, against under 50 ms for these). A key with usage rows left is kept: clients
            // still present it (its refusals are counted under its ID), and `keys usage` and
            // secret-scanning reports must still find it.
            let mut deleted = 0;
            for dead in [
                "DELETE FROM api_keys WHERE key_id IN
                   (SELECT key_id FROM api_keys k WHERE expires_at < $1 AND NOT EXISTS
                      (SELECT 1 FROM key_usage u WHERE u.key_id = k.key_id) LIMIT $2)",
                "DELETE FROM api_keys WHERE key_id IN
                   (SELECT key_id FROM api_keys k WHERE revoked_at < $1 AND NOT EXISTS
                      (SELECT 1 FROM key_usage u WHERE u.key_id = k.key_id) LIMIT $2)",
            ] {
                let room = batch - i64::try_from(deleted).unwrap_or(i64::MAX);
                if room <= 0 {
                    break;
                }
                deleted += ::sqlx::query(dead)
                    .bind(before)
                    .bind(room)
                    .execute(&self.pool)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(unavailable)?;
            }
            Ok(deleted)
        }
    };
}

pub(in crate::store) use sql_keys;
