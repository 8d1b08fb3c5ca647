//! Secret-scanning reports: tenants' policies for a leaked key, and the digests of reports
//! already acted on (a bounded table).
//!
//! Methods of [`Store`](crate::store::Store), stamped into each backend's impl by
//! [`sql_store!`](super::sql_store).

macro_rules! sql_leaks {
    () => {
        async fn tenant_policies(
            &self,
        ) -> $crate::store::StoreResult<Vec<$crate::store::TenantPolicyRecord>> {
            ::sqlx::query_as("SELECT tenant, on_leak, updated_at, webhook_url, webhook_secret FROM tenant_policies ORDER BY tenant")
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)
        }

        async fn tenant_policy(
            &self,
            tenant: &str,
        ) -> $crate::store::StoreResult<Option<$crate::store::TenantPolicyRecord>> {
            ::sqlx::query_as("SELECT tenant, on_leak, updated_at, webhook_url, webhook_secret FROM tenant_policies WHERE tenant = $1")
                .bind(tenant)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)
        }

        async fn put_tenant_policy(
            &self,
            policy: &$crate::store::TenantPolicyRecord,
            audit: Option<&$crate::store::AuditRecord>,
        ) -> $crate::store::StoreResult<()> {
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            ::sqlx::query(
                "INSERT INTO tenant_policies (tenant, on_leak, updated_at, webhook_url, webhook_secret)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant) DO UPDATE SET on_leak = excluded.on_leak,
                    updated_at = excluded.updated_at, webhook_url = excluded.webhook_url,
                    webhook_secret = excluded.webhook_secret",
            )
            .bind(&policy.tenant)
            .bind(&policy.on_leak)
            .bind(policy.updated_at)
            .bind(&policy.webhook_url)
            .bind(&policy.webhook_secret)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            if let Some(a) = audit {
                Self::audit_in(&mut tx, a).await?;
            }
            tx.commit().await.map_err(unavailable)
        }

        async fn leak_report(&self, digest: &str) -> $crate::store::StoreResult<Option<String>> {
            ::sqlx::query_scalar("SELECT answer FROM leak_reports WHERE digest = $1")
                .bind(digest)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)
        }

        async fn record_leak_report(
            &self,
            digest: &str,
            at: i64,
            answer: &str,
            keep: i64,
        ) -> $crate::store::StoreResult<$crate::store::Applied> {
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            let done = ::sqlx::query(
                "INSERT INTO leak_reports (digest, received_at, answer) VALUES ($1, $2, $3)
                 ON CONFLICT (digest) DO NOTHING",
            )
            .bind(digest)
            .bind(at)
            .bind(answer)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            // The bound: everything older than the newest `keep` goes (one indexed range delete;
            // at most the one row just pushed out, once the table is full).
            ::sqlx::query(
                "DELETE FROM leak_reports WHERE id <=
                    (SELECT id FROM leak_reports ORDER BY id DESC LIMIT 1 OFFSET $1)",
            )
            .bind(keep)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            tx.commit().await.map_err(unavailable)?;
            Ok($crate::store::Applied::from_rows(done.rows_affected()))
        }

        async fn enqueue_webhook(
            &self,
            d: &$crate::store::WebhookDelivery,
        ) -> $crate::store::StoreResult<()> {
            ::sqlx::query(
                "INSERT INTO webhook_deliveries (tenant, url, body, state, attempts, next_at, created_at, last_error)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&d.tenant)
            .bind(&d.url)
            .bind(&d.body)
            .bind(&d.state)
            .bind(d.attempts)
            .bind(d.next_at)
            .bind(d.created_at)
            .bind(&d.last_error)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
            Ok(())
        }

        async fn due_webhooks(
            &self,
            now: i64,
            limit: i64,
            per_tenant: i64,
        ) -> $crate::store::StoreResult<Vec<$crate::store::WebhookDelivery>> {
            ::sqlx::query_as(
                "SELECT id, tenant, url, body, state, attempts, next_at, created_at, last_error
                 FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY tenant ORDER BY next_at, id) AS nth
                       FROM webhook_deliveries WHERE state = 'pending' AND next_at <= $1) due
                 WHERE nth <= $3
                 ORDER BY next_at, id LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .bind(per_tenant)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
        }

        async fn claim_webhook(
            &self,
            id: i64,
            seen: i64,
            until: i64,
        ) -> $crate::store::StoreResult<$crate::store::Applied> {
            let done = ::sqlx::query(
                "UPDATE webhook_deliveries SET next_at = $3
                 WHERE id = $1 AND next_at = $2 AND state = 'pending'",
            )
            .bind(id)
            .bind(seen)
            .bind(until)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
            Ok($crate::store::Applied::from_rows(done.rows_affected()))
        }

        async fn finish_webhook(
            &self,
            d: &$crate::store::WebhookDelivery,
            keep: i64,
        ) -> $crate::store::StoreResult<()> {
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            ::sqlx::query(
                "UPDATE webhook_deliveries SET state = $2, attempts = $3, next_at = $4, last_error = $5
                 WHERE id = $1",
            )
            .bind(d.id)
            .bind(&d.state)
            .bind(d.attempts)
            .bind(d.next_at)
            .bind(&d.last_error)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            ::sqlx::query(
                "DELETE FROM webhook_deliveries WHERE state <> 'pending' AND id <=
                    (SELECT id FROM webhook_deliveries WHERE state <> 'pending'
                     ORDER BY id DESC LIMIT 1 OFFSET $1)",
            )
            .bind(keep)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            tx.commit().await.map_err(unavailable)
        }
    };
}

pub(in crate::store) use sql_leaks;
