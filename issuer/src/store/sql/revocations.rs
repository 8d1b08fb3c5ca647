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
            replacing: Option<i64>,
        ) -> $crate::store::StoreResult<()> {
            let mut tx = self.begin_write().await?;
            // Writers are serialized (`begin_write`): whoever stores a list after the one this
            // was made to follow wins, and the rest get `Conflict` and serve its bytes. Serials
            // follow the clock, so two replicas racing from one list need not pick the same
            // serial; without this both lists were stored, and a verifier polling through a load
            // balancer saw the newer, then the older one as a rollback.
            let newest: Option<i64> =
                ::sqlx::query_scalar("SELECT max(serial) FROM revocation_lists")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(unavailable)?;
            if newest != replacing {
                return Err($crate::store::StoreError::Conflict);
            }
            // The serial is also the primary key: one list per serial.
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
            // Old lists are never served again; keep the last 16 for forensics (by count:
            // serials jump with the clock).
            ::sqlx::query(
                "DELETE FROM revocation_lists WHERE serial < \
                 (SELECT min(serial) FROM (SELECT serial FROM revocation_lists \
                  ORDER BY serial DESC LIMIT 16) AS kept)",
            )
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            Self::change_in(&mut tx, "list", &list.serial.to_string(), list.iat).await?;
            tx.commit().await.map_err(unavailable)
        }
    };
}

pub(in crate::store) use sql_revocations;
