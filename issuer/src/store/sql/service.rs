//! What the running service needs besides its data: a liveness ping, settings, and DPoP proof IDs
//! claimed once across replicas.
//!
//! Methods of [`Store`](crate::store::Store), stamped into each backend's impl by
//! [`sql_store!`](super::sql_store).

macro_rules! sql_service {
    () => {
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

        async fn init_settings(&self, values: &[(&str, &str)]) -> $crate::store::StoreResult<()> {
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            for (name, value) in values {
                ::sqlx::query(
                    "INSERT INTO settings (name, value) VALUES ($1, $2)
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(*name)
                .bind(*value)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            }
            tx.commit().await.map_err(unavailable)
        }

        async fn put_settings(
            &self,
            values: &[(&str, &str)],
            entry_span: Option<i64>,
            audit: &$crate::store::AuditRecord,
        ) -> $crate::store::StoreResult<()> {
            let mut tx = self.begin_write().await?;
            let mut names = Vec::with_capacity(values.len());
            for (name, value) in values {
                ::sqlx::query(
                    "INSERT INTO settings (name, value) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )
                .bind(*name)
                .bind(*value)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                names.push(*name);
            }
            Self::audit_in(&mut tx, audit).await?;
            Self::change_in(&mut tx, "settings", &names.join(","), audit.at).await?;
            if let Some(span) = entry_span {
                // Entries already dropped stay dropped: the tokens they covered had expired.
                let extended = ::sqlx::query(
                    "UPDATE revocations SET drop_after = revoked_at + $1
                     WHERE drop_after > $2 AND drop_after < revoked_at + $1",
                )
                .bind(span)
                .bind(audit.at)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                if extended.rows_affected() > 0 {
                    Self::change_in(&mut tx, "revocation", "drop_after", audit.at).await?;
                }
            }
            tx.commit().await.map_err(unavailable)
        }

        async fn claim_dpop_proof(
            &self,
            id: &str,
            until: i64,
            now: i64,
        ) -> $crate::store::StoreResult<$crate::store::Claim> {
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
            Ok(if done.rows_affected() == 1 {
                $crate::store::Claim::First
            } else {
                $crate::store::Claim::Replay
            })
        }
    };
}

pub(in crate::store) use sql_service;
