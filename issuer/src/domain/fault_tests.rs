//! Faults under the domain, on a real SQLite database: full (SQLITE_FULL, as on a full disk) and
//! locked by another process beyond the busy timeout. Every admin action fails whole with
//! `Unavailable` (503 + Retry-After at the HTTP edge, see http/tests.rs), nothing is half-written,
//! issuance from cached keys goes on, and the usage counts of issuances made meanwhile reach the
//! database once it is writable again.

use crate::store::tests::tenant_of;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use keymint_jwks::{Audience, Issuer, ScopeSet, TenantId, UnixTime};
use zeroize::Zeroizing;

use crate::domain::DomainError;
use crate::domain::client::ClientContext;
use crate::domain::keys::api_key::{KeyEnv, KeyKind};
use crate::domain::keys::key_hash::{KeyHasher, Pepper};
use crate::domain::keys::{self, NewKey};
use crate::domain::settings::Settings;
use crate::domain::signing;
use crate::domain::signing::secret_box::EncryptionKey;
use crate::domain::token::{TokenRequest, TokenService};
use crate::domain::usage::{self, UsageLog};
use crate::store::{AuditQuery, FlakyStore, SqliteStore, Store};

struct World {
    store: Arc<FlakyStore<SqliteStore>>,
    hasher: KeyHasher,
    tokens: TokenService<FlakyStore<SqliteStore>>,
    path: std::path::PathBuf,
    dir: std::path::PathBuf,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn new_key(tenant: &str) -> NewKey {
    NewKey {
        kind: KeyKind::Secret,
        allow_origins: vec![],
        tenant: TenantId::new(tenant).unwrap(),
        scopes: ScopeSet::parse("a").unwrap(),
        audiences: vec![Audience::new("https://api.test").unwrap()],
        ttl: None,
        max_ttl: None,
        expires_in: Duration::from_secs(3600),
        label: Some("x".repeat(200)),
        owner: None,
        allow_ips: vec![],
        rate_limit: None,
        env: KeyEnv::Live,
    }
}

async fn world(name: &str, single: bool) -> World {
    let dir = std::env::temp_dir().join(format!("keymint-fault-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("db");
    let store = Arc::new(FlakyStore::new(if single {
        SqliteStore::open_single_connection(&path).await.unwrap()
    } else {
        SqliteStore::open(&path).await.unwrap()
    }));
    let enc = EncryptionKey::new(&Zeroizing::new([5; 32])).unwrap();
    let hasher = KeyHasher::new(&Pepper::new([6; 32]));
    signing::ensure_active(&*store, &enc, UnixTime::now())
        .await
        .unwrap();
    let set = Arc::new(ArcSwap::from_pointee(
        signing::load(&*store, &enc).await.unwrap(),
    ));
    let uses = UsageLog::new();
    tokio::spawn(usage::run_writer(
        Arc::clone(&store),
        uses.clone(),
        Duration::from_millis(500),
        std::future::pending(),
    ));
    let tokens = TokenService::new(
        Arc::clone(&store),
        hasher.clone(),
        set,
        Arc::new(ArcSwap::from_pointee(
            Settings::new(
                Issuer::new("https://issuer.test").unwrap(),
                Duration::from_secs(3600),
                Duration::from_secs(60),
                Duration::from_secs(3600),
            )
            .unwrap(),
        )),
        uses,
    );
    World {
        store,
        hasher,
        tokens,
        path,
        dir,
    }
}

async fn issue(w: &World, key: &str) -> Result<(), DomainError> {
    issue_from(w, key, IpAddr::from([127, 0, 0, 1])).await
}

async fn issue_from(w: &World, key: &str, ip: IpAddr) -> Result<(), DomainError> {
    let request = TokenRequest {
        scope: None,
        audience: None,
        ttl: None,
        dpop_jkt: None,
        dpop_proof: None,
        path: "/v1/token".into(),
    };
    let client = ClientContext { ip, origin: None };
    w.tokens
        .exchange(key, &request, &client, UnixTime::now())
        .await
        .map(|_| ())
}

/// Issuances counted in the database.
async fn issued_records(w: &World) -> i64 {
    w.store
        .usage_rows(0, 100_000)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.count.action == "token.issue" && r.count.outcome == "granted")
        .map(|r| r.count.count)
        .sum()
}

/// Waits until the database counts `n` issuances.
async fn wait_for_records(w: &World, n: i64, what: &str) {
    keymint_testkit::wait_until_async(what, Duration::from_secs(20), || async {
        (issued_records(w).await >= n).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_full_database_fails_admin_actions_whole_and_loses_no_issuance_count() {
    // What the code under test logs at WARN and above: the usage writer's "not written"
    // warnings are how this test knows it tried, and failed, to write.
    let warnings = crate::log_capture::LogBuffer::default();
    let _capture = warnings.capture(tracing::Level::WARN);
    let w = world("full", true).await;
    let (view, key) = keys::create(&*w.store, &w.hasher, &new_key("acme"), UnixTime::now(), "t")
        .await
        .unwrap();
    issue(&w, key.expose()).await.unwrap();
    wait_for_records(&w, 1, "the first issuance count").await;

    w.store.inner().set_full(true).await.unwrap();
    // Fill what free pages are left, until the database refuses to grow.
    let mut created = 0;
    let refused = loop {
        match keys::create(&*w.store, &w.hasher, &new_key("fill"), UnixTime::now(), "t").await {
            Ok(_) => created += 1,
            Err(e) => break e,
        }
        assert!(created < 10_000, "the cap never bit");
    };
    assert!(
        matches!(refused, DomainError::Unavailable(_)),
        "{refused:?}"
    );
    // Nothing half-written: every stored key has its audit record and no record lacks its key.
    let stored = w.store.keys(Some(&tenant_of("fill"))).await.unwrap().len();
    let audited = w
        .store
        .audit(&AuditQuery {
            action: Some("key.create".into()),
            tenant: Some("fill".into()),
            limit: 100_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .len();
    assert_eq!((stored, audited), (created, created));
    let again = keys::create(&*w.store, &w.hasher, &new_key("fill"), UnixTime::now(), "t").await;
    assert!(
        matches!(again, Err(DomainError::Unavailable(_))),
        "{again:?}"
    );

    // Fill the usage table's last page with rows the size of an issuance's, so the next new row
    // needs a page the database cannot have.
    let like = w.store.usage_rows(0, 1).await.unwrap().remove(0).count;
    let mut filler = 0u32;
    while w
        .store
        .add_usage(&[crate::store::UsageCount {
            client: format!("198.51.{}.{}", filler / 256, filler % 256),
            ..like.clone()
        }])
        .await
        .is_ok()
    {
        filler += 1;
        assert!(filler < 10_000, "the cap never bit");
    }
    let before = issued_records(&w).await - i64::from(filler);

    // Issuance goes on from the cached key; its counts (new clients: new rows) wait for space.
    for n in 1..=3u8 {
        issue_from(&w, key.expose(), IpAddr::from([203, 0, 113, n]))
            .await
            .unwrap();
    }
    // The writer has tried to write all three, and failed, once it warns with three rows.
    keymint_testkit::wait_until_async(
        "the usage writer to fail to write the three rows",
        Duration::from_secs(15),
        || async {
            let text = warnings.text();
            text.lines()
                .any(|l| l.contains("usage counts not written") && l.contains("rows=3"))
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        issued_records(&w).await - i64::from(filler),
        before,
        "the full database took no count"
    );
    w.store.inner().set_full(false).await.unwrap();
    wait_for_records(
        &w,
        before + i64::from(filler) + 3,
        "the counts kept to be written once there is space",
    )
    .await;
    crate::domain::revocation::revoke_key(
        &*w.store,
        &keymint_jwks::ApiKeyId::new(view.key_id.as_str()).unwrap(),
        UnixTime::now(),
        Duration::from_secs(3600),
        "t",
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_database_locked_by_another_process_fails_writes_after_the_busy_timeout_then_recovers() {
    use sqlx::Connection as _;
    let w = world("locked", false).await;
    let (_, key) = keys::create(&*w.store, &w.hasher, &new_key("acme"), UnixTime::now(), "t")
        .await
        .unwrap();
    issue(&w, key.expose()).await.unwrap();
    wait_for_records(&w, 1, "the first issuance count").await;

    // Another process takes the write lock and keeps it past keymint's 5 s busy timeout.
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", w.path.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let started = Instant::now();
    let refused = keys::create(
        &*w.store,
        &w.hasher,
        &new_key("locked"),
        UnixTime::now(),
        "t",
    )
    .await;
    assert!(
        matches!(refused, Err(DomainError::Unavailable(_))),
        "{refused:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "it waited for the lock first"
    );
    // Reads go on under the lock (WAL): the key still trades for tokens.
    issue(&w, key.expose()).await.unwrap();
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    drop(other);

    assert!(
        w.store
            .keys(Some(&tenant_of("locked")))
            .await
            .unwrap()
            .is_empty()
    );
    keys::create(
        &*w.store,
        &w.hasher,
        &new_key("locked"),
        UnixTime::now(),
        "t",
    )
    .await
    .unwrap();
    wait_for_records(&w, 2, "the issuance made under the lock to be recorded").await;
}

/// A key created while a request for it was reading the database: the read found nothing, the
/// change watcher then told the service about the new key, and only after that did the request
/// remember the ID as unknown. It must not stay remembered: the key works on the next request
/// (it was refused on this replica until the unknown-ID cache evicted it, and each refusal counted
/// against its client as a failed authentication).
#[tokio::test]
async fn a_key_created_during_the_read_that_missed_it_is_not_remembered_as_unknown() {
    let w = world("created-during-read", false).await;
    // The key's record and printable form, made elsewhere so the request can present it before
    // the key exists in this database.
    let scratch_dir = w.dir.join("scratch");
    std::fs::create_dir_all(&scratch_dir).unwrap();
    let scratch = SqliteStore::open(&scratch_dir.join("db")).await.unwrap();
    let (view, key) = keys::create(
        &scratch,
        &w.hasher,
        &new_key("acme"),
        UnixTime::now(),
        "test",
    )
    .await
    .unwrap();
    let id = keymint_jwks::ApiKeyId::new(view.key_id.clone()).unwrap();
    let record = scratch.key(&id).await.unwrap().unwrap();

    w.store.set_hold(Some("key"));
    let w = Arc::new(w);
    let asking = {
        let (w, key) = (Arc::clone(&w), key.expose().to_owned());
        tokio::spawn(async move { issue(&w, &key).await })
    };
    // The request's read has found nothing. Now the key is created, and the watcher reads the
    // change and invalidates the ID, all before the read returns.
    w.store.reached().await;
    w.store.set_hold(None);
    w.store
        .insert_key(&record, &crate::store::AuditRecord::default())
        .await
        .unwrap();
    w.tokens.invalidate(id.as_str());
    w.store.release();
    assert!(matches!(
        asking.await.unwrap(),
        Err(DomainError::InvalidClient {
            reason: crate::domain::ClientFailure::UnknownKey
        })
    ));
    issue(&w, key.expose())
        .await
        .expect("the key works once the read that missed it is over");
}
