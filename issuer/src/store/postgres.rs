//! The Postgres store: one database shared by every issuer replica and admin command.
//!
//! Replicas agree through the database alone: the revocation list's serial is a primary key (one
//! list per serial, whoever signs first), every replica serves the stored bytes, and changes reach
//! the others through the `changes` feed they poll, woken early by `LISTEN`/`NOTIFY` (a trigger on
//! the feed notifies at commit). DPoP proof IDs live in `dpop_proofs`, so a proof replayed against
//! another replica is refused too.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use super::sql::sql_store;
use super::{AuditRecord, Migrations, StoreError, StoreResult, UsageCount, unavailable};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The advisory lock that orders change IDs (an arbitrary constant: "km" in ASCII).
pub(super) const CHANGES_LOCK: i64 = 0x6b6d;

/// The channel the `changes` trigger notifies (migration 0002).
const CHANGES_CHANNEL: &str = "keymint_changes";

/// Postgres-backed [`Store`](super::Store).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    hints: Arc<ChangeHints>,
}

/// Wake-ups from `LISTEN keymint_changes`, started by the first [`change_hint`] call (a server's
/// change watcher), so that admin commands never hold a listening connection.
///
/// [`change_hint`]: super::Store::change_hint
#[derive(Debug, Default)]
struct ChangeHints {
    notified: tokio::sync::Notify,
    listening: OnceLock<()>,
}

/// Limits on every session of the serving pool, so that one stuck connection can hold neither a
/// replica nor the cluster for long. Without them a write waited for the change lock (held by a
/// client that hung, or died, inside its transaction) for as long as the holder's TCP connection
/// took to be declared dead, hours with the OS defaults, and every revocation and key change in
/// the cluster waited with it.
/// - `lock_timeout`: a write waits at most this for a lock (the change lock included), then fails
///   as `Unavailable` (503, retried by the background tasks).
/// - `idle_in_transaction_session_timeout`: a session left inside a transaction (its client hung)
///   is ended and its locks released. keymint's transactions last milliseconds.
/// - `statement_timeout`: keymint's statements take milliseconds (pruning and copying go in
///   bounded batches); a runaway one is ended.
/// - `tcp_keepalives_*`: the server notices a client that vanished within about a minute.
///
/// Migrations run on a connection of their own without these: an index built on a large table
/// may take longer than any of them.
const SESSION_LIMITS: [(&str, &str); 6] = [
    ("lock_timeout", "5s"),
    ("idle_in_transaction_session_timeout", "60s"),
    ("statement_timeout", "30s"),
    ("tcp_keepalives_idle", "30"),
    ("tcp_keepalives_interval", "10"),
    ("tcp_keepalives_count", "3"),
];

impl PgStore {
    /// Connects to a `postgres://` URL and runs the migrations (concurrent replicas starting
    /// together are serialized by sqlx's migration lock).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options: PgConnectOptions = url.parse().map_err(unavailable)?;
        let options = options.application_name("keymint");
        let migrating = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options.clone())
            .await
            .map_err(unavailable)?;
        let migrated = MIGRATOR
            .run(&migrating)
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(Migrations(e))));
        migrating.close().await;
        migrated?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // A request waiting on a dead database fails within seconds (503), not never.
            .acquire_timeout(Duration::from_secs(3))
            // Set on each new connection with `SET` rather than in the startup packet's
            // `options`, which connection poolers such as PgBouncer refuse (or drop).
            .after_connect(|conn, _| {
                Box::pin(async move {
                    for (name, value) in SESSION_LIMITS {
                        sqlx::query(&format!("SET {name} = '{value}'"))
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            pool,
            hints: Arc::default(),
        })
    }

    /// The stored settings, read without running the migrations or writing anything: `serve`
    /// checks its flags against them first, so that a refused start leaves the database as it
    /// was. No `settings` table yet: nothing stored (a first start).
    pub async fn peek_settings(url: &str) -> StoreResult<Vec<(String, String)>> {
        let options: PgConnectOptions = url.parse().map_err(unavailable)?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options.application_name("keymint"))
            .await
            .map_err(unavailable)?;
        let read = async {
            let exists: bool = sqlx::query_scalar("SELECT to_regclass('settings') IS NOT NULL")
                .fetch_one(&pool)
                .await
                .map_err(unavailable)?;
            if !exists {
                return Ok(Vec::new());
            }
            sqlx::query_as("SELECT name, value FROM settings")
                .fetch_all(&pool)
                .await
                .map_err(unavailable)
        };
        let rows = read.await;
        pool.close().await;
        rows
    }

    /// The server's clock now (not the transaction's start, `now()`).
    pub(super) async fn server_clock(&self) -> StoreResult<Option<f64>> {
        let t: f64 = sqlx::query_scalar("SELECT extract(epoch from clock_timestamp())::float8")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(Some(t))
    }

    /// Waits for a notification on the change channel or `max`, whichever comes first.
    pub(super) async fn wait_for_change(&self, max: Duration) {
        self.hints.listening.get_or_init(|| {
            tokio::spawn(listen(self.pool.clone(), Arc::clone(&self.hints)));
        });
        let _ = tokio::time::timeout(max, self.hints.notified.notified()).await;
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
        let json = serde_json::to_string(records).map_err(|e| StoreError::Corrupt(Box::new(e)))?;
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

    async fn upsert_usage(
        tx: &mut Transaction<'_, Postgres>,
        counts: &[UsageCount],
    ) -> StoreResult<()> {
        let json = serde_json::to_string(counts).map_err(|e| StoreError::Corrupt(Box::new(e)))?;
        sqlx::query(
            "INSERT INTO key_usage (key_id, bucket, action, outcome, reason, client, origin, count, first_seen, last_seen)
             SELECT key_id, bucket, action, outcome, reason, client, origin, count, first_seen, last_seen
             FROM jsonb_to_recordset($1::jsonb) AS r(key_id text, bucket bigint, action text,
                  outcome text, reason text, client text, origin text, count bigint,
                  first_seen bigint, last_seen bigint)
             ON CONFLICT (key_id, bucket, action, outcome, reason, client, origin) DO UPDATE SET
               count = key_usage.count + excluded.count,
               first_seen = CASE WHEN excluded.first_seen < key_usage.first_seen
                            THEN excluded.first_seen ELSE key_usage.first_seen END,
               last_seen = CASE WHEN excluded.last_seen > key_usage.last_seen
                           THEN excluded.last_seen ELSE key_usage.last_seen END",
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

/// Turns notifications into wake-ups for as long as the pool is open. A lost connection is
/// re-established by the listener; notifications sent meanwhile are lost, which the watcher's
/// polling covers.
async fn listen(pool: PgPool, hints: Arc<ChangeHints>) {
    let mut listener = loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut l) => match l.listen(CHANGES_CHANNEL).await {
                Ok(()) => break l,
                Err(e) => tracing::debug!(error = %e, "cannot listen for changes yet"),
            },
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => tracing::debug!(error = %e, "cannot listen for changes yet"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    loop {
        match listener.recv().await {
            Ok(_) => hints.notified.notify_one(),
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => {
                // Polling goes on meanwhile; the next recv reconnects.
                tracing::debug!(error = %e, "change notifications interrupted");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
