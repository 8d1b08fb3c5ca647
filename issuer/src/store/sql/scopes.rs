//! Declared scopes and the origins of live publishable keys.
//!
//! Methods of [`Store`](crate::store::Store), stamped into each backend's impl by
//! [`sql_store!`](super::sql_store).

macro_rules! sql_scopes {
    () => {
        async fn put_scope(
            &self,
            name: &::keymint_jwks::Scope,
            visibility: $crate::store::Visibility,
            audit: &$crate::store::AuditRecord,
        ) -> $crate::store::StoreResult<()> {
            let mut tx = self.begin_write().await?;
            ::sqlx::query(
                "INSERT INTO scopes (name, public, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET public = excluded.public",
            )
            .bind(name.as_str())
            .bind(visibility.is_public())
            .bind(audit.at)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            Self::audit_in(&mut tx, audit).await?;
            Self::change_in(&mut tx, "scope", name.as_str(), audit.at).await?;
            tx.commit().await.map_err(unavailable)
        }

        async fn scopes(&self) -> $crate::store::StoreResult<Vec<$crate::store::ScopeRecord>> {
            let rows: Vec<(String, bool)> =
                ::sqlx::query_as("SELECT name, public FROM scopes ORDER BY name")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(unavailable)?;
            rows.into_iter()
                .map(|(name, public)| {
                    Ok($crate::store::ScopeRecord {
                        name: ::keymint_jwks::Scope::new(name)
                            .map_err(|e| $crate::store::StoreError::Corrupt(Box::new(e)))?,
                        visibility: if public {
                            $crate::store::Visibility::Public
                        } else {
                            $crate::store::Visibility::Private
                        },
                    })
                })
                .collect()
        }

        async fn publishable_origins(&self, now: i64) -> $crate::store::StoreResult<Vec<String>> {
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
    };
}

pub(in crate::store) use sql_scopes;
