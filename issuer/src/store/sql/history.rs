//! What happened: the change feed replicas poll and the stored audit records.
//!
//! Methods of [`Store`](crate::store::Store), stamped into each backend's impl by
//! [`sql_store!`](super::sql_store).

macro_rules! sql_history {
    () => {
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
        ) -> $crate::store::StoreResult<$crate::store::ChangePage> {
            let changes: Vec<$crate::store::Change> = ::sqlx::query_as(
                "SELECT id, kind, target FROM changes WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind($crate::store::FEED_PAGE)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
            // Pruning removes the oldest changes, so the feed is whole after `after` exactly when
            // its oldest change is at most `after + 1`. Only a page that does not start right
            // after `after` needs the second look (Postgres IDs can also skip a number when a
            // transaction rolls back: then the reader re-reads once for nothing).
            let pruned_past = match changes.first() {
                Some(first) if first.id > after.saturating_add(1) => {
                    let oldest: Option<i64> = ::sqlx::query_scalar("SELECT min(id) FROM changes")
                        .fetch_one(&self.pool)
                        .await
                        .map_err(unavailable)?;
                    oldest.is_some_and(|o| o > after.saturating_add(1))
                }
                _ => false,
            };
            Ok($crate::store::ChangePage {
                changes,
                pruned_past,
            })
        }

        async fn list_changed_since(&self, after: i64) -> $crate::store::StoreResult<bool> {
            ::sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM changes
                 WHERE id > $1 AND kind IN ('revocation', 'signing_key'))
                 OR coalesce((SELECT min(id) FROM changes), 0) > $2",
            )
            .bind(after)
            .bind(after.saturating_add(1))
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)
        }

        async fn prune_changes(&self, before: i64, batch: i64) -> $crate::store::StoreResult<u64> {
            // The oldest `batch` changes by ID (the primary key: no scan), cut at the first one
            // made at or after `before` and before the newest. A prefix by ID, so that a reader
            // can tell from the oldest ID left whether it missed any (`changes_since`).
            let rows: Vec<(i64, i64)> = ::sqlx::query_as(
                "SELECT id, at FROM changes
                 WHERE id < (SELECT max(id) FROM changes) ORDER BY id LIMIT $1",
            )
            .bind(batch)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
            let Some(upto) = rows
                .iter()
                .take_while(|(_, at)| *at < before)
                .map(|(id, _)| *id)
                .last()
            else {
                return Ok(0);
            };
            ::sqlx::query("DELETE FROM changes WHERE id <= $1")
                .bind(upto)
                .execute(&self.pool)
                .await
                .map(|r| r.rows_affected())
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

        async fn add_usage(
            &self,
            counts: &[$crate::store::UsageCount],
        ) -> $crate::store::StoreResult<()> {
            if counts.is_empty() {
                return Ok(());
            }
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            Self::upsert_usage(&mut tx, counts).await?;
            tx.commit().await.map_err(unavailable)
        }

        async fn usage(
            &self,
            key_id: &str,
            since: i64,
            limit: i64,
        ) -> $crate::store::StoreResult<Vec<$crate::store::UsageLine>> {
            ::sqlx::query_as(
                "SELECT client, origin, action, outcome, reason, CAST(sum(count) AS BIGINT) AS count,
                        min(first_seen) AS first_seen, max(last_seen) AS last_seen
                 FROM key_usage WHERE key_id = $1 AND bucket >= $2
                 GROUP BY client, origin, action, outcome, reason
                 ORDER BY count DESC, client, origin, action, outcome, reason LIMIT $3",
            )
            .bind(key_id)
            .bind(since)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
        }

        async fn usage_rows(
            &self,
            after: i64,
            limit: i64,
        ) -> $crate::store::StoreResult<Vec<$crate::store::UsageEntry>> {
            ::sqlx::query_as("SELECT * FROM key_usage WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)
        }

        async fn prune_audit(&self, before: i64, batch: i64) -> $crate::store::StoreResult<u64> {
            // A bounded batch per statement, found through the `at` index: the write lock is
            // held for one batch, never for the whole backlog.
            ::sqlx::query(
                "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < $1 LIMIT $2)",
            )
            .bind(before)
            .bind(batch)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(unavailable)
        }

        async fn prune_usage(&self, before: i64, batch: i64) -> $crate::store::StoreResult<u64> {
            ::sqlx::query(
                "DELETE FROM key_usage WHERE id IN
                   (SELECT id FROM key_usage WHERE bucket < $1 LIMIT $2)",
            )
            .bind(before)
            .bind(batch)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(unavailable)
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
    };
}

pub(in crate::store) use sql_history;
