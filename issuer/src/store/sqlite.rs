//! The embedded SQLite store: one file in the data dir, WAL mode so that a server and admin
//! commands can use it at once.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use super::{
    AuditRecord, Change, KeyRecord, RevocationRecord, SigningKeyRecord, SigningKeyState, Store,
    StoreError, StoreResult, StoredList,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite-backed [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

fn unavailable(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::Unavailable(e.to_string()),
    }
}

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

    async fn connect(options: SqliteConnectOptions) -> StoreResult<Self> {
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrations: {e}")))?;
        Ok(Self { pool })
    }
}

async fn audit_in(tx: &mut Transaction<'_, Sqlite>, a: &AuditRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit (at, action, outcome, reason, actor, key_id, tenant, scopes, client_ip, origin, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(a.at)
    .bind(&a.action)
    .bind(&a.outcome)
    .bind(&a.reason)
    .bind(&a.actor)
    .bind(&a.key_id)
    .bind(&a.tenant)
    .bind(&a.scopes)
    .bind(&a.client_ip)
    .bind(&a.origin)
    .bind(&a.detail)
    .execute(&mut **tx)
    .await
    .map_err(unavailable)?;
    Ok(())
}

async fn change_in(
    tx: &mut Transaction<'_, Sqlite>,
    kind: &str,
    target: &str,
    at: i64,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO changes (kind, target, at) VALUES (?, ?, ?)")
        .bind(kind)
        .bind(target)
        .bind(at)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    Ok(())
}

async fn revocation_in(
    tx: &mut Transaction<'_, Sqlite>,
    e: &RevocationRecord,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO revocations (kind, target, revoked_at, drop_after) VALUES (?, ?, ?, ?)
         ON CONFLICT (kind, target) DO UPDATE SET drop_after = max(drop_after, excluded.drop_after)",
    )
    .bind(&e.kind)
    .bind(&e.target)
    .bind(e.revoked_at)
    .bind(e.drop_after)
    .execute(&mut **tx)
    .await
    .map_err(unavailable)?;
    Ok(done.rows_affected() > 0)
}

async fn insert_key_in(tx: &mut Transaction<'_, Sqlite>, k: &KeyRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO api_keys (key_id, kind, env, tenant, secret_hash, scopes, audiences, default_ttl, max_ttl,
            expires_at, allow_ips, allow_origins, rate_limit, label, owner, is_admin, created_at, last_used_at,
            revoked_at, rotated_to)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&k.key_id)
    .bind(&k.kind)
    .bind(&k.env)
    .bind(&k.tenant)
    .bind(&k.secret_hash)
    .bind(&k.scopes)
    .bind(&k.audiences)
    .bind(k.default_ttl)
    .bind(k.max_ttl)
    .bind(k.expires_at)
    .bind(&k.allow_ips)
    .bind(&k.allow_origins)
    .bind(&k.rate_limit)
    .bind(&k.label)
    .bind(&k.owner)
    .bind(k.is_admin)
    .bind(k.created_at)
    .bind(k.last_used_at)
    .bind(k.revoked_at)
    .bind(&k.rotated_to)
    .execute(&mut **tx)
    .await
    .map_err(unavailable)?;
    Ok(())
}

fn key_from_row(r: &SqliteRow) -> StoreResult<KeyRecord> {
    let get = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
    Ok(KeyRecord {
        key_id: r.try_get("key_id").map_err(get)?,
        kind: r.try_get("kind").map_err(get)?,
        env: r.try_get("env").map_err(get)?,
        tenant: r.try_get("tenant").map_err(get)?,
        secret_hash: r.try_get("secret_hash").map_err(get)?,
        scopes: r.try_get("scopes").map_err(get)?,
        audiences: r.try_get("audiences").map_err(get)?,
        default_ttl: r.try_get("default_ttl").map_err(get)?,
        max_ttl: r.try_get("max_ttl").map_err(get)?,
        expires_at: r.try_get("expires_at").map_err(get)?,
        allow_ips: r.try_get("allow_ips").map_err(get)?,
        allow_origins: r.try_get("allow_origins").map_err(get)?,
        rate_limit: r.try_get("rate_limit").map_err(get)?,
        label: r.try_get("label").map_err(get)?,
        owner: r.try_get("owner").map_err(get)?,
        is_admin: r.try_get("is_admin").map_err(get)?,
        created_at: r.try_get("created_at").map_err(get)?,
        last_used_at: r.try_get("last_used_at").map_err(get)?,
        revoked_at: r.try_get("revoked_at").map_err(get)?,
        rotated_to: r.try_get("rotated_to").map_err(get)?,
    })
}

fn signing_key_from_row(r: &SqliteRow) -> StoreResult<SigningKeyRecord> {
    let get = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
    let state: String = r.try_get("state").map_err(get)?;
    Ok(SigningKeyRecord {
        kid: r.try_get("kid").map_err(get)?,
        alg: r.try_get("alg").map_err(get)?,
        encrypted_pkcs8: r.try_get("encrypted_pkcs8").map_err(get)?,
        public_jwk: r.try_get("public_jwk").map_err(get)?,
        state: SigningKeyState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("signing key state {state:?}")))?,
        created_at: r.try_get("created_at").map_err(get)?,
        activate_at: r.try_get("activate_at").map_err(get)?,
        retired_at: r.try_get("retired_at").map_err(get)?,
        remove_after: r.try_get("remove_after").map_err(get)?,
        revoked_at: r.try_get("revoked_at").map_err(get)?,
    })
}

fn audit_from_row(r: &SqliteRow) -> StoreResult<AuditRecord> {
    let get = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
    Ok(AuditRecord {
        at: r.try_get("at").map_err(get)?,
        action: r.try_get("action").map_err(get)?,
        outcome: r.try_get("outcome").map_err(get)?,
        reason: r.try_get("reason").map_err(get)?,
        actor: r.try_get("actor").map_err(get)?,
        key_id: r.try_get("key_id").map_err(get)?,
        tenant: r.try_get("tenant").map_err(get)?,
        scopes: r.try_get("scopes").map_err(get)?,
        client_ip: r.try_get("client_ip").map_err(get)?,
        origin: r.try_get("origin").map_err(get)?,
        detail: r.try_get("detail").map_err(get)?,
    })
}

impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|r| {
            r.try_get("value")
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .transpose()
    }

    async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        sqlx::query("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn insert_key(&self, key: &KeyRecord, audit: &AuditRecord) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        insert_key_in(&mut tx, key).await?;
        audit_in(&mut tx, audit).await?;
        change_in(&mut tx, "key", &key.key_id, audit.at).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn insert_keys(&self, keys: &[KeyRecord], audit: &AuditRecord) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        for k in keys {
            insert_key_in(&mut tx, k).await?;
        }
        audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(unavailable)?;
        // A bulk load leaves a large write-ahead log; fold it into the database now rather than
        // in the middle of some later request's commit.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn key(&self, key_id: &str) -> StoreResult<Option<KeyRecord>> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE key_id = ?")
            .bind(key_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn keys(&self, tenant: Option<&str>) -> StoreResult<Vec<KeyRecord>> {
        let rows = match tenant {
            Some(t) => {
                sqlx::query(
                    "SELECT * FROM api_keys WHERE tenant = ? ORDER BY created_at DESC, key_id",
                )
                .bind(t)
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query("SELECT * FROM api_keys ORDER BY created_at DESC, key_id")
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(unavailable)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_key(
        &self,
        key_id: &str,
        entry: &RevocationRecord,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
        )
        .bind(entry.revoked_at)
        .bind(key_id)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        revocation_in(&mut tx, entry).await?;
        audit_in(&mut tx, audit).await?;
        change_in(&mut tx, "key", key_id, audit.at).await?;
        change_in(&mut tx, "revocation", key_id, audit.at).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn rotate_key(
        &self,
        old_key_id: &str,
        grace_until: i64,
        successor: &KeyRecord,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let done = sqlx::query(
            "UPDATE api_keys SET expires_at = min(expires_at, ?), rotated_to = ?
             WHERE key_id = ? AND revoked_at IS NULL AND rotated_to IS NULL",
        )
        .bind(grace_until)
        .bind(&successor.key_id)
        .bind(old_key_id)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_key_in(&mut tx, successor).await?;
        audit_in(&mut tx, audit).await?;
        change_in(&mut tx, "key", old_key_id, audit.at).await?;
        change_in(&mut tx, "key", &successor.key_id, audit.at).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn revoke_tenant(
        &self,
        tenant: &str,
        entry: &RevocationRecord,
        audit: &AuditRecord,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT key_id FROM api_keys WHERE tenant = ? AND revoked_at IS NULL",
        )
        .bind(tenant)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE tenant = ? AND revoked_at IS NULL")
            .bind(entry.revoked_at)
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        revocation_in(&mut tx, entry).await?;
        for id in &ids {
            let key_entry = RevocationRecord {
                kind: "key".into(),
                target: id.clone(),
                ..entry.clone()
            };
            revocation_in(&mut tx, &key_entry).await?;
            change_in(&mut tx, "key", id, audit.at).await?;
        }
        audit_in(&mut tx, audit).await?;
        change_in(&mut tx, "revocation", tenant, audit.at).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(ids.len() as u64)
    }

    async fn add_revocation(
        &self,
        entry: &RevocationRecord,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let added = revocation_in(&mut tx, entry).await?;
        audit_in(&mut tx, audit).await?;
        change_in(&mut tx, "revocation", &entry.target, audit.at).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(added)
    }

    async fn touch_keys(&self, used: &[(String, i64)]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // One statement per 400 keys (UPDATE ... FROM a VALUES list), not one per key.
        for chunk in used.chunks(400) {
            let mut q = sqlx::QueryBuilder::<Sqlite>::new("WITH used(id, at) AS (");
            q.push_values(chunk, |mut b, (id, at)| {
                b.push_bind(id).push_bind(at);
            });
            q.push(
                ") UPDATE api_keys SET last_used_at = max(coalesce(api_keys.last_used_at, 0), used.at) \
                 FROM used WHERE api_keys.key_id = used.id",
            );
            q.build().execute(&mut *tx).await.map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn revocations(&self, now: i64) -> StoreResult<Vec<RevocationRecord>> {
        let rows = sqlx::query("SELECT kind, target, revoked_at, drop_after FROM revocations WHERE drop_after > ? ORDER BY revoked_at, kind, target")
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        let get = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
        rows.iter()
            .map(|r| {
                Ok(RevocationRecord {
                    kind: r.try_get("kind").map_err(get)?,
                    target: r.try_get("target").map_err(get)?,
                    revoked_at: r.try_get("revoked_at").map_err(get)?,
                    drop_after: r.try_get("drop_after").map_err(get)?,
                })
            })
            .collect()
    }

    async fn latest_list(&self) -> StoreResult<Option<StoredList>> {
        let row = sqlx::query("SELECT serial, jws, iat, exp, as_of FROM revocation_lists ORDER BY serial DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        let get = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
        row.map(|r| {
            Ok(StoredList {
                serial: r.try_get("serial").map_err(get)?,
                jws: r.try_get("jws").map_err(get)?,
                iat: r.try_get("iat").map_err(get)?,
                exp: r.try_get("exp").map_err(get)?,
                as_of: r.try_get("as_of").map_err(get)?,
            })
        })
        .transpose()
    }

    async fn insert_list(&self, list: &StoredList) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO revocation_lists (serial, jws, iat, exp, as_of) VALUES (?, ?, ?, ?, ?)",
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
        sqlx::query("DELETE FROM revocation_lists WHERE serial < ?")
            .bind(list.serial - 16)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        change_in(&mut tx, "list", &list.serial.to_string(), list.iat).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM signing_keys WHERE state != 'removed' ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(signing_key_from_row).collect()
    }

    async fn insert_signing_key(
        &self,
        k: &SigningKeyRecord,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, encrypted_pkcs8, public_jwk, state, created_at, activate_at, retired_at, remove_after, revoked_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&k.kid)
        .bind(&k.alg)
        .bind(&k.encrypted_pkcs8)
        .bind(&k.public_jwk)
        .bind(k.state.as_str())
        .bind(k.created_at)
        .bind(k.activate_at)
        .bind(k.retired_at)
        .bind(k.remove_after)
        .bind(k.revoked_at)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        if let Some(a) = audit {
            audit_in(&mut tx, a).await?;
        }
        change_in(&mut tx, "signing_key", &k.kid, k.created_at).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn transition_signing_key(
        &self,
        kid: &str,
        from: SigningKeyState,
        to: SigningKeyState,
        at: i64,
        remove_after: Option<i64>,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // Leaving the JWKS for good also destroys the private key material.
        let sql = match to {
            SigningKeyState::Active | SigningKeyState::Next => {
                "UPDATE signing_keys SET state = ?1, activate_at = ?2 WHERE kid = ?4 AND state = ?5"
            }
            SigningKeyState::Retired => {
                "UPDATE signing_keys SET state = ?1, retired_at = ?2, remove_after = ?3 WHERE kid = ?4 AND state = ?5"
            }
            SigningKeyState::Revoked => {
                "UPDATE signing_keys SET state = ?1, revoked_at = ?2, remove_after = ?3, encrypted_pkcs8 = x'' WHERE kid = ?4 AND state = ?5"
            }
            SigningKeyState::Removed => {
                "UPDATE signing_keys SET state = ?1, remove_after = coalesce(?3, remove_after), encrypted_pkcs8 = x'' WHERE kid = ?4 AND state = ?5"
            }
        };
        let done = sqlx::query(sql)
            .bind(to.as_str())
            .bind(at)
            .bind(remove_after)
            .bind(kid)
            .bind(from.as_str())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if let Some(a) = audit {
            audit_in(&mut tx, a).await?;
        }
        change_in(&mut tx, "signing_key", kid, at).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn revoke_signing_key(
        &self,
        kid: &str,
        entry: &RevocationRecord,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let done = sqlx::query(
            "UPDATE signing_keys SET state = 'revoked', revoked_at = ?, encrypted_pkcs8 = x''
             WHERE kid = ? AND state IN ('next', 'active', 'retired')",
        )
        .bind(entry.revoked_at)
        .bind(kid)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        revocation_in(&mut tx, entry).await?;
        audit_in(&mut tx, audit).await?;
        change_in(&mut tx, "signing_key", kid, audit.at).await?;
        change_in(&mut tx, "revocation", kid, audit.at).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn put_scope(&self, name: &str, public: bool, audit: &AuditRecord) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO scopes (name, public, created_at) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET public = excluded.public",
        )
        .bind(name)
        .bind(public)
        .bind(audit.at)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        audit_in(&mut tx, audit).await?;
        change_in(&mut tx, "scope", name, audit.at).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn scopes(&self) -> StoreResult<Vec<(String, bool)>> {
        let rows = sqlx::query("SELECT name, public FROM scopes ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        let get = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("name").map_err(get)?,
                    r.try_get("public").map_err(get)?,
                ))
            })
            .collect()
    }

    async fn publishable_origins(&self, now: i64) -> StoreResult<Vec<String>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT allow_origins FROM api_keys WHERE kind = 'pk' AND revoked_at IS NULL AND expires_at > ?",
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

    async fn last_change(&self) -> StoreResult<i64> {
        let id: Option<i64> = sqlx::query_scalar("SELECT max(id) FROM changes")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(id.unwrap_or(0))
    }

    async fn changes_since(&self, after: i64) -> StoreResult<Vec<Change>> {
        let rows = sqlx::query(
            "SELECT id, kind, target FROM changes WHERE id > ? ORDER BY id LIMIT 10000",
        )
        .bind(after)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let get = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
        rows.iter()
            .map(|r| {
                Ok(Change {
                    id: r.try_get("id").map_err(get)?,
                    kind: r.try_get("kind").map_err(get)?,
                    target: r.try_get("target").map_err(get)?,
                })
            })
            .collect()
    }

    async fn insert_audit(&self, records: &[AuditRecord]) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // One statement per batch: the records travel as one JSON array and SQLite unpacks them,
        // instead of eleven bound values per record crossing to sqlx's SQLite worker thread.
        let json =
            serde_json::to_string(records).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO audit (at, action, outcome, reason, actor, key_id, tenant, scopes, client_ip, origin, detail)
             SELECT value ->> 'at', value ->> 'action', value ->> 'outcome', value ->> 'reason', value ->> 'actor',
                    value ->> 'key_id', value ->> 'tenant', value ->> 'scopes', value ->> 'client_ip',
                    value ->> 'origin', value ->> 'detail'
             FROM json_each(?)",
        )
        .bind(json)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    async fn audit(&self, limit: i64) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query("SELECT * FROM audit ORDER BY id DESC LIMIT ?")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(audit_from_row).collect()
    }
}
