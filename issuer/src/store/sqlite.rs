//! The embedded SQLite store: one file in the data dir, WAL mode so that a server and admin
//! commands can use it at once.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::sql::sql_store;
use super::{AuditRecord, Migrations, StoreError, StoreResult, UsageCount};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Where [`SqliteStore::peek_settings`] looks.
#[derive(Debug, Clone, Copy)]
pub enum PeekAt<'a> {
    /// A database file.
    Path(&'a Path),
    /// A `sqlite:` URL.
    Url(&'a str),
}

/// SQLite-backed [`Store`](super::Store).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

use super::unavailable;

impl SqliteStore {
    /// Opens (creating if needed) `path` and runs the migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        // The database holds no secrets, but nothing in it is anyone else's business either.
        #[cfg(unix)]
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path);
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        Self::connect(options).await
    }

    /// Opens a `sqlite:` URL and runs the migrations.
    pub async fn open_url(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(unavailable)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        Self::connect(options).await
    }

    /// Whether the database file at `path` (or a `sqlite:` URL) exists: a data dir whose database
    /// exists must not get new secrets.
    pub fn exists(path_or_url: PeekAt<'_>) -> StoreResult<bool> {
        let options = match path_or_url {
            PeekAt::Path(p) => SqliteConnectOptions::new().filename(p),
            PeekAt::Url(u) => SqliteConnectOptions::from_str(u).map_err(unavailable)?,
        };
        Ok(options.get_filename().is_file())
    }

    /// The stored settings of the database at `path` (or a `sqlite:` URL), read without writing:
    /// `serve` checks its flags against them before anything else, so a refused start leaves the
    /// files as they were. No file, or no `settings` table yet: nothing stored (a first start).
    ///
    /// With no write-ahead log beside the database (the last process closed it cleanly), the file
    /// is opened `immutable`: a read-only open in WAL mode would otherwise create the `-wal` and
    /// `-shm` files. With a log (a server still running, or one that was killed), it is opened
    /// read-only: the database and its log stay as they are; SQLite may rebuild the `-shm` index,
    /// which holds no data.
    pub async fn peek_settings(path_or_url: PeekAt<'_>) -> StoreResult<Vec<(String, String)>> {
        let options = match path_or_url {
            PeekAt::Path(p) => SqliteConnectOptions::new().filename(p),
            PeekAt::Url(u) => SqliteConnectOptions::from_str(u).map_err(unavailable)?,
        };
        let path = options.get_filename().to_owned();
        if !path.is_file() {
            return Ok(Vec::new());
        }
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        let options = options
            .create_if_missing(false)
            .read_only(true)
            .immutable(!Path::new(&wal).exists())
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        let read = async {
            let exists: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'settings')",
            )
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

    async fn connect(options: SqliteConnectOptions) -> StoreResult<Self> {
        // A 1 MiB page cache per connection (SQLite's default is 2 MiB): the token path reads keys
        // from the issuer's own cache, so the pages that matter are the few the appends touch, and
        // four pooled connections then hold at most 4 MiB however large the tables grow. Four, not
        // more: SQLite has one writer at a time, the token path reads a key once and then from
        // the issuer's cache, and each connection is a thread with its own page cache and
        // allocator arena (measured: eight held about 10 MB under load from 10,000 keys).
        let options = options.pragma("cache_size", "-1024");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(Migrations(e))))?;
        Ok(Self { pool })
    }

    /// SQLite serializes writers: change IDs commit in order already.
    #[allow(clippy::unused_async)]
    async fn order_changes(_tx: &mut Transaction<'_, Sqlite>) -> StoreResult<()> {
        Ok(())
    }

    async fn append_audit(
        tx: &mut Transaction<'_, Sqlite>,
        records: &[AuditRecord],
    ) -> StoreResult<()> {
        // One statement per batch: the records travel as one JSON array and SQLite unpacks them,
        // instead of eleven bound values per record crossing to sqlx's SQLite worker thread.
        let json = serde_json::to_string(records).map_err(|e| StoreError::Corrupt(Box::new(e)))?;
        sqlx::query(
            "INSERT INTO audit (at, action, outcome, reason, actor, key_id, tenant, scopes, client_ip, origin, detail)
             SELECT value ->> 'at', value ->> 'action', value ->> 'outcome', value ->> 'reason', value ->> 'actor',
                    value ->> 'key_id', value ->> 'tenant', value ->> 'scopes', value ->> 'client_ip',
                    value ->> 'origin', value ->> 'detail'
             FROM json_each($1)",
        )
        .bind(json)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn upsert_usage(
        tx: &mut Transaction<'_, Sqlite>,
        counts: &[UsageCount],
    ) -> StoreResult<()> {
        // One statement per batch, as for the audit rows. `WHERE true` tells SQLite's parser that
        // the ON CONFLICT belongs to the INSERT, not to a join in the SELECT.
        let json = serde_json::to_string(counts).map_err(|e| StoreError::Corrupt(Box::new(e)))?;
        sqlx::query(
            "INSERT INTO key_usage (key_id, bucket, action, outcome, reason, client, origin, count, first_seen, last_seen)
             SELECT value ->> 'key_id', value ->> 'bucket', value ->> 'action', value ->> 'outcome',
                    value ->> 'reason', value ->> 'client', value ->> 'origin', value ->> 'count',
                    value ->> 'first_seen', value ->> 'last_seen'
             FROM json_each($1) WHERE true
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

    /// The database is a file on this machine: its clock is this process's own.
    async fn server_clock(&self) -> StoreResult<Option<f64>> {
        Ok(None)
    }

    /// SQLite cannot tell one process that another wrote: the watcher finds out at its next poll.
    async fn wait_for_change(&self, max: Duration) {
        tokio::time::sleep(max).await;
    }

    async fn after_bulk_load(&self) -> StoreResult<()> {
        // A bulk load leaves a large write-ahead log; fold it into the database now rather than
        // in the middle of some later request's commit.
        self.checkpoint().await
    }

    /// Folds the write-ahead log into the database file (and truncates the log).
    pub async fn checkpoint(&self) -> StoreResult<()> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

sql_store!(SqliteStore, Sqlite);

#[cfg(test)]
impl SqliteStore {
    /// A store on one connection, so that a per-connection setting holds for all of it (the
    /// fault tests' "disk full").
    pub(crate) async fn open_single_connection(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(1));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(Migrations(e))))?;
        Ok(Self { pool })
    }

    /// Caps the database at the pages it has now, as a full disk would (SQLITE_FULL on growth),
    /// or lifts the cap.
    pub(crate) async fn set_full(&self, full: bool) -> StoreResult<()> {
        let pages: i64 = if full {
            sqlx::query_scalar("PRAGMA page_count")
                .fetch_one(&self.pool)
                .await
                .map_err(unavailable)?
        } else {
            4_294_967_294
        };
        sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
