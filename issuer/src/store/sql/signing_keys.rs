//! Signing keys (encrypted private parts) and their lifecycle transitions.
//!
//! Methods of [`Store`](crate::store::Store), stamped into each backend's impl by
//! [`sql_store!`](super::sql_store).

macro_rules! sql_signing_keys {
    () => {
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
            Self::insert_signing_key_in(&mut tx, k).await?;
            if let Some(a) = audit {
                Self::audit_in(&mut tx, a).await?;
            }
            Self::change_in(&mut tx, "signing_key", k.kid.as_str(), k.created_at).await?;
            tx.commit().await.map_err(unavailable)
        }

        async fn transition_signing_key(
            &self,
            kid: &::keymint_jwks::Kid,
            from: $crate::store::SigningKeyState,
            to: $crate::store::SigningKeyState,
            at: i64,
            remove_after: Option<i64>,
            audit: Option<&$crate::store::AuditRecord>,
        ) -> $crate::store::StoreResult<$crate::store::Applied> {
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
            let q = q.bind(kid.as_str()).bind(from.as_str());
            let done = q.execute(&mut *tx).await.map_err(unavailable)?;
            if done.rows_affected() == 0 {
                return Ok($crate::store::Applied::Unchanged);
            }
            if let Some(a) = audit {
                Self::audit_in(&mut tx, a).await?;
            }
            Self::change_in(&mut tx, "signing_key", kid.as_str(), at).await?;
            tx.commit().await.map_err(unavailable)?;
            Ok($crate::store::Applied::Changed)
        }

        async fn revoke_signing_key(
            &self,
            kid: &::keymint_jwks::Kid,
            successor: Option<$crate::store::Successor<'_>>,
            entry: &$crate::store::RevocationRecord,
            audit: &$crate::store::AuditRecord,
        ) -> $crate::store::StoreResult<$crate::store::Applied> {
            use $crate::store::Successor;
            let mut tx = self.begin_write().await?;
            // The key taking over, in the same transaction: never two active keys, never none.
            match successor {
                Some(Successor::Promote(next)) => {
                    let done = ::sqlx::query(
                        "UPDATE signing_keys SET state = 'active', activate_at = $1
                         WHERE kid = $2 AND state = 'next'",
                    )
                    .bind(entry.revoked_at)
                    .bind(next.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                    if done.rows_affected() == 0 {
                        return Ok($crate::store::Applied::Unchanged);
                    }
                    Self::change_in(&mut tx, "signing_key", next.as_str(), entry.revoked_at)
                        .await?;
                }
                Some(Successor::Insert(new)) => {
                    Self::insert_signing_key_in(&mut tx, new).await?;
                    Self::change_in(&mut tx, "signing_key", new.kid.as_str(), new.created_at).await?;
                }
                None => {}
            }
            let done = ::sqlx::query(
                "UPDATE signing_keys SET state = 'revoked', revoked_at = $1, encrypted_pkcs8 = $2
                 WHERE kid = $3 AND state IN ('next', 'active', 'retired')",
            )
            .bind(entry.revoked_at)
            .bind(Vec::<u8>::new())
            .bind(kid.as_str())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            if done.rows_affected() == 0 {
                return Ok($crate::store::Applied::Unchanged);
            }
            Self::finish_revocation(tx, entry, audit, "signing_key", kid.as_str()).await?;
            Ok($crate::store::Applied::Changed)
        }
    };
}

pub(in crate::store) use sql_signing_keys;
