//! Revocation entries and the signed lists, one per serial.
//!
//! Methods of [`Store`](crate::store::Store), stamped into each backend's impl by
//! [`sql_store!`](super::sql_store).

macro_rules! sql_revocations {
    () => {
        async fn add_revocation(
            &self,
            entry: &$crate::store::RevocationRecord,
            audit: &$crate::store::AuditRecord,
        ) -> $crate::store::StoreResult<$crate::store::Applied> {
            let mut tx = self.begin_write().await?;
            let added = Self::revocation_in(&mut tx, entry).await?;
            Self::audit_in(&mut tx, audit).await?;
            Self::change_in(&mut tx, "revocation", entry.target.id(), audit.at).await?;
            tx.commit().await.map_err(unavailable)?;
            Ok(added)
        }

        async fn revocations(
            &self,
            now: i64,
        ) -> $crate::store::StoreResult<Vec<$crate::store::RevocationRecord>> {
            let rows: Vec<$crate::store::records::RevocationRow> = ::sqlx::query_as(
                "SELECT kind, target, revoked_at, drop_after FROM revocations
                 WHERE drop_after > $1 ORDER BY revoked_at, kind, target",
            )
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
            rows.into_iter().map(TryInto::try_into).collect()
        }

        async fn prune_revocations(
            &self,
            before: i64,
            batch: i64,
        ) -> $crate::store::StoreResult<u64> {
            // A bounded batch per statement, found through the `drop_after` index.
            ::sqlx::query(
                "DELETE FROM revocations WHERE (kind, target) IN
                   (SELECT kind, target FROM revocations WHERE drop_after < $1 LIMIT $2)",
            )
            .bind(before)
            .bind(batch)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
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
    };
}

pub(in crate::store) use sql_revocations;
