//! The Postgres store: one database shared by every issuer replica and admin command.
//!
//! Replicas agree through the database alone: the revocation list's serial is a primary key (one
//! list per serial, whoever signs first), every replica serves the stored bytes, and changes reach
//! the others through the `changes` feed they poll. DPoP proof IDs live in `dpop_proofs`, so a
//! proof replayed against another replica is refused too.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use super::sql::sql_store;
use super::{AuditRecord, StoreError, StoreResult, unavailable};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The advisory lock that orders change IDs (an arbitrary constant: "km" in ASCII).
const CHANGES_LOCK: i64 = 0x6b6d;

/// Postgres-backed [`Store`](super::Store).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to a `postgres://` URL and runs the migrations (concurrent replicas starting
    /// together are serialized by sqlx's migration lock).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options: PgConnectOptions = url.parse().map_err(unavailable)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // A request waiting on a dead database fails within seconds (503), not never.
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options.application_name("keymint"))
            .await
            .map_err(unavailable)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrations: {e}")))?;
        Ok(Self { pool })
    }

    async fn order_changes(tx: &mut Transaction<'_, Postgres>) -> StoreResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CHANGES_LOCK)
            .execute(&mut **tx)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn append_audit(
        tx: &mut Transaction<'_, Postgres>,
        records: &[AuditRecord],
    ) -> StoreResult<()> {
        // One statement per batch: the records travel as one JSON array.
        let json =
            serde_json::to_string(records).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO audit (at, action, outcome, reason, actor, key_id, tenant, scopes, client_ip, origin, detail)
             SELECT at, action, outcome, reason, actor, key_id, tenant, scopes, client_ip, origin, detail
             FROM jsonb_to_recordset($1::jsonb) AS r(at bigint, action text, outcome text, reason text,
                  actor text, key_id text, tenant text, scopes text, client_ip text, origin text, detail text)",
        )
        .bind(json)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    #[allow(clippy::unused_async)]
    async fn after_bulk_load(&self) -> StoreResult<()> {
        Ok(())
    }
}

sql_store!(PgStore, Postgres);
