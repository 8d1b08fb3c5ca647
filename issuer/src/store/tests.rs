//! The storage layer's test suite, run against SQLite and against Postgres.
//!
//! Postgres comes from `KEYMINT_TEST_DATABASE_URL` (a server where the user may create
//! databases), which `scripts/test` sets after starting a throwaway cluster; each test gets a
//! fresh database. Without it the Postgres tests fail, loudly, rather than skip.

use keymint_jwks::{ApiKeyId, Kid, RevocationTarget, Scope, TenantId};

use super::{
    Applied, AuditQuery, AuditRecord, KeyRecord, PgStore, RevocationRecord, SigningKeyRecord,
    SigningKeyState, SqliteStore, Store, StoreError, StoredList, Successor, TenantPolicyRecord,
    Visibility, WebhookDelivery,
};

/// A signing key ID for a test.
pub(crate) fn kid_of(s: &str) -> Kid {
    Kid::new(s).unwrap()
}

/// An API key ID for a test.
pub(crate) fn id_of(s: &str) -> ApiKeyId {
    ApiKeyId::new(s).unwrap()
}

/// A tenant for a test.
pub(crate) fn tenant_of(s: &str) -> TenantId {
    TenantId::new(s).unwrap()
}

/// A scope for a test.
pub(crate) fn scope_of(s: &str) -> Scope {
    Scope::new(s).unwrap()
}

/// What an entry of `kind` (`key`, `jti`, `tenant`, `kid`) revokes.
pub(crate) fn target_of(kind: &str, id: &str) -> RevocationTarget {
    match kind {
        "key" => RevocationTarget::Key(id_of(id)),
        "jti" => RevocationTarget::Jti(keymint_jwks::Jti::new(id).unwrap()),
        "tenant" => RevocationTarget::Tenant(tenant_of(id)),
        "kid" => RevocationTarget::Kid(kid_of(id)),
        other => panic!("no revocation kind {other}"),
    }
}

/// A fresh, empty Postgres database on the test server; returns its URL.
pub(crate) async fn fresh_pg_database() -> String {
    use sqlx::Connection as _;
    let base = std::env::var("KEYMINT_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "KEYMINT_TEST_DATABASE_URL is not set: the Postgres tests need a server. \
             Run the suite with scripts/test, which starts a throwaway cluster."
        )
    });
    let mut bytes = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
    let name = format!("km_{}", u64::from_le_bytes(bytes));
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{name}")
}

/// A SQLite store in a directory removed on drop.
struct Sqlite {
    store: SqliteStore,
    dir: std::path::PathBuf,
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn sqlite(name: &str) -> Sqlite {
    let dir = std::env::temp_dir().join(format!("keymint-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqliteStore::open(&dir.join("db")).await.unwrap();
    Sqlite { store, dir }
}

async fn postgres() -> PgStore {
    PgStore::connect(&fresh_pg_database().await).await.unwrap()
}

/// Declares one test per backend for a suite function taking `&impl Store`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test]
            async fn $name() {
                let db = super::sqlite(stringify!($name)).await;
                super::$name(&db.store).await;
            })*
        }
        mod on_postgres {
            $(#[tokio::test]
            async fn $name() {
                super::$name(&super::postgres().await).await;
            })*
        }
    };
}

both_backends!(
    keys_round_trip_and_list_by_tenant,
    keys_page_through_in_the_lists_order,
    revoking_a_key_happens_once_and_records_its_entry,
    rotation_cuts_the_old_expiry_and_inserts_the_successor_atomically,
    revoking_a_tenant_revokes_each_key_and_lists_them,
    revocations_leave_the_list_after_drop_after,
    one_list_per_serial_and_the_newest_wins,
    signing_keys_move_only_from_the_expected_state_and_lose_private_keys,
    scopes_upsert_and_publishable_origins_skip_dead_keys,
    a_dpop_proof_id_is_claimed_once,
    the_change_feed_is_ordered_and_resumable,
    audit_filters_and_pages_newest_first,
    usage_counts_add_up_and_prune_in_batches,
    audit_rows_prune_by_time_in_batches,
    keys_dead_before_the_cutoff_prune_in_batches,
    last_used_only_moves_forward,
    settings_upsert,
    a_list_change_behind_more_than_a_page_of_other_changes_is_seen,
    the_change_feed_prunes_a_prefix_and_its_readers_see_the_gap,
    an_active_key_is_revoked_and_replaced_in_one_transaction,
    leak_reports_are_remembered_within_a_bound_and_policies_upsert,
    a_webhook_call_is_claimed_once_and_finished_calls_are_bounded,
);

/// Found in review: the emergency revocation promoted (or inserted) the successor and revoked
/// the key in two transactions, so a failure between them left two active keys.
async fn an_active_key_is_revoked_and_replaced_in_one_transaction(s: &impl Store) {
    use SigningKeyState::{Active, Next, Revoked};
    let state = |v: Vec<SigningKeyRecord>, kid: &str| {
        v.into_iter()
            .find(|k| k.kid.as_str() == kid)
            .map(|k| k.state)
    };
    s.insert_signing_key(&signing_key("a", Active), None)
        .await
        .unwrap();
    s.insert_signing_key(&signing_key("n", Next), None)
        .await
        .unwrap();
    // A successor that is not (or no longer) next: nothing at all happens.
    assert!(
        !s.revoke_signing_key(
            &kid_of("a"),
            Some(Successor::Promote(&kid_of("a"))),
            &entry("kid", "a", 10, 900),
            &audit("signing_key.revoke", 10)
        )
        .await
        .unwrap()
        .changed()
    );
    let keys = s.signing_keys().await.unwrap();
    assert_eq!(
        (state(keys.clone(), "a"), state(keys, "n")),
        (Some(Active), Some(Next))
    );
    assert!(s.revocations(0).await.unwrap().is_empty());
    assert!(
        s.revoke_signing_key(
            &kid_of("a"),
            Some(Successor::Promote(&kid_of("n"))),
            &entry("kid", "a", 11, 900),
            &audit("signing_key.revoke", 11)
        )
        .await
        .unwrap()
        .changed()
    );
    let keys = s.signing_keys().await.unwrap();
    assert_eq!(
        (state(keys.clone(), "a"), state(keys, "n")),
        (Some(Revoked), Some(Active))
    );
    let fresh = signing_key("f", Active);
    assert!(
        s.revoke_signing_key(
            &kid_of("n"),
            Some(Successor::Insert(&fresh)),
            &entry("kid", "n", 12, 900),
            &audit("signing_key.revoke", 12)
        )
        .await
        .unwrap()
        .changed()
    );
    let keys = s.signing_keys().await.unwrap();
    assert_eq!(
        (state(keys.clone(), "n"), state(keys, "f")),
        (Some(Revoked), Some(Active))
    );
}

/// Found in review: the issuer decided whether to re-sign the list by reading one page of the
/// feed after the list's `as_of`; behind more than a page of key and scope changes a revocation
/// went unseen, and the list was re-signed only by its timer, hours later.
async fn a_list_change_behind_more_than_a_page_of_other_changes_is_seen(s: &impl Store) {
    let start = s.last_change().await.unwrap();
    for n in 0..=super::FEED_PAGE {
        s.put_scope(
            &scope_of(&format!("scope-{n}")),
            Visibility::Private,
            &audit("scope.put", 1),
        )
        .await
        .unwrap();
    }
    assert!(!s.list_changed_since(start).await.unwrap(), "scopes only");
    let entry = RevocationRecord {
        target: target_of("jti", "behind-the-page"),
        revoked_at: 1,
        drop_after: i64::MAX,
    };
    assert!(
        s.add_revocation(&entry, &audit("revoke", 1))
            .await
            .unwrap()
            .changed()
    );
    assert!(s.list_changed_since(start).await.unwrap());
    let page = s.changes_since(start).await.unwrap().changes;
    assert_eq!(
        i64::try_from(page.len()).unwrap(),
        super::FEED_PAGE,
        "one page at most"
    );
    assert!(page.iter().all(|c| c.kind != "revocation"));
    let last = s.last_change().await.unwrap();
    assert!(!s.list_changed_since(last).await.unwrap());
}

/// The change feed is pruned oldest first, a batch at a time, never its newest row; a reader
/// (the change watcher, or a stored list's `as_of`) from before the pruned changes is told so
/// instead of being told "nothing changed".
async fn the_change_feed_prunes_a_prefix_and_its_readers_see_the_gap(s: &impl Store) {
    let start = s.last_change().await.unwrap();
    for (n, at) in [10, 20, 30, 40, 50].into_iter().enumerate() {
        s.put_scope(
            &scope_of(&format!("feed-{n}")),
            Visibility::Private,
            &audit("scope.put", at),
        )
        .await
        .unwrap();
    }
    let all = s.changes_since(start).await.unwrap();
    assert!(!all.pruned_past);
    let ids: Vec<i64> = all.changes.iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), 5);
    let reader_at = ids[0];
    assert!(
        !s.list_changed_since(reader_at).await.unwrap(),
        "scopes only"
    );

    // Before 35: the changes at 10, 20, 30; two per batch.
    assert_eq!(s.prune_changes(35, 2).await.unwrap(), 2);
    assert_eq!(s.prune_changes(35, 2).await.unwrap(), 1);
    assert_eq!(s.prune_changes(35, 2).await.unwrap(), 0);
    let left = s.changes_since(start).await.unwrap();
    assert_eq!(
        left.changes.iter().map(|c| c.id).collect::<Vec<_>>(),
        ids[3..]
    );
    assert!(left.pruned_past, "changes after {start} were pruned");
    // A reader that had read the first change missed the second and third.
    let behind = s.changes_since(reader_at).await.unwrap();
    assert!(behind.pruned_past);
    assert!(
        s.list_changed_since(reader_at).await.unwrap(),
        "a list as of a pruned change must be re-signed"
    );
    // A reader that had read the third missed nothing.
    let caught_up = s.changes_since(ids[2]).await.unwrap();
    assert!(!caught_up.pruned_past);
    assert_eq!(caught_up.changes.len(), 2);
    assert!(!s.list_changed_since(ids[2]).await.unwrap());

    // However old, the newest change stays: its ID is the feed's position.
    assert_eq!(s.prune_changes(i64::MAX, 100).await.unwrap(), 1);
    assert_eq!(s.prune_changes(i64::MAX, 100).await.unwrap(), 0);
    assert_eq!(s.last_change().await.unwrap(), ids[4]);
    let newest = s.changes_since(ids[4]).await.unwrap();
    assert!(newest.changes.is_empty() && !newest.pruned_past);
}

/// On Postgres a change written by another process wakes a waiting change watcher at once
/// (`NOTIFY` from the trigger of migration 0002, `LISTEN` in the store) instead of at its next
/// poll. Without a notification the wait below would last its full two minutes.
#[tokio::test]
async fn postgres_wakes_a_waiting_watcher_when_another_process_writes_a_change() {
    use std::time::{Duration, Instant};
    let url = fresh_pg_database().await;
    let watcher = PgStore::connect(&url).await.unwrap();
    let writer = PgStore::connect(&url).await.unwrap();
    let long = Duration::from_secs(120);
    let wait = tokio::spawn(async move {
        let started = Instant::now();
        watcher.change_hint(long).await;
        started.elapsed()
    });
    // The listener subscribes in the background: keep writing, a change a poll, until the
    // watcher wakes.
    let mut n = 0;
    keymint_testkit::wait_until_async("the watcher to wake", long / 4, || {
        n += 1;
        let entry = RevocationRecord {
            target: target_of("jti", &format!("jti-{n}")),
            revoked_at: 1,
            drop_after: i64::MAX,
        };
        let (writer, wait) = (&writer, &wait);
        async move {
            if wait.is_finished() {
                return Some(());
            }
            assert!(
                writer
                    .add_revocation(&entry, &AuditRecord::default())
                    .await
                    .unwrap()
                    .changed()
            );
            None
        }
    })
    .await;
    let waited = wait.await.unwrap();
    assert!(
        waited < long / 4,
        "the watcher woke only after {waited:?}: no notification arrived"
    );
}

fn key(id: &str, tenant: &str) -> KeyRecord {
    KeyRecord {
        key_id: id.into(),
        kind: "sk".into(),
        env: "test".into(),
        tenant: tenant.into(),
        secret_hash: vec![7; 32],
        scopes: "read write".into(),
        audiences: "https://api.example".into(),
        default_ttl: 600,
        max_ttl: 3600,
        expires_at: 2_000_000_000,
        allow_ips: String::new(),
        allow_origins: String::new(),
        rate_limit: Some("10/s".into()),
        label: Some("ci".into()),
        owner: None,
        is_admin: false,
        created_at: 1_700_000_000,
        last_used_at: None,
        revoked_at: None,
        rotated_to: None,
    }
}

fn audit(action: &str, at: i64) -> AuditRecord {
    AuditRecord {
        at,
        action: action.into(),
        outcome: "ok".into(),
        actor: Some("test".into()),
        ..AuditRecord::default()
    }
}

fn entry(kind: &str, target: &str, at: i64, drop_after: i64) -> RevocationRecord {
    RevocationRecord {
        target: target_of(kind, target),
        revoked_at: at,
        drop_after,
    }
}

async fn keys_round_trip_and_list_by_tenant(s: &impl Store) {
    let a = key("a1", "acme");
    let mut b = key("b1", "beta");
    b.created_at += 10;
    b.is_admin = false;
    b.allow_origins = "https://app.beta.example".into();
    s.insert_key(&a, &audit("key.create", 1)).await.unwrap();
    s.insert_key(&b, &audit("key.create", 2)).await.unwrap();
    assert_eq!(s.key(&id_of("a1")).await.unwrap(), Some(a.clone()));
    assert_eq!(s.key(&id_of("nope")).await.unwrap(), None);
    assert!(matches!(
        s.insert_key(&a, &audit("key.create", 3)).await,
        Err(StoreError::Conflict)
    ));
    let all = s.keys(None).await.unwrap();
    assert_eq!(
        all.iter().map(|k| k.key_id.as_str()).collect::<Vec<_>>(),
        ["b1", "a1"]
    );
    assert_eq!(s.keys(Some(&tenant_of("acme"))).await.unwrap(), vec![a]);
    let tenants = s.tenants(1_800_000_000).await.unwrap();
    assert_eq!(
        tenants
            .iter()
            .map(|t| (t.tenant.as_str(), t.keys, t.active_keys))
            .collect::<Vec<_>>(),
        [("acme", 1, 1), ("beta", 1, 1)]
    );
}

/// Keys a page at a time, in the list's order (newest first, then by ID), each key once, with a
/// tenant filter, whatever the page size.
async fn keys_page_through_in_the_lists_order(s: &impl Store) {
    // Two keys share a creation time: the ID decides between them.
    for (id, tenant, at) in [
        ("k1", "acme", 10),
        ("k2", "beta", 20),
        ("k3", "acme", 20),
        ("k4", "acme", 30),
        ("k5", "beta", 40),
    ] {
        let mut k = key(id, tenant);
        k.created_at = at;
        s.insert_key(&k, &audit("key.create", at)).await.unwrap();
    }
    let ids = |v: &[KeyRecord]| v.iter().map(|k| k.key_id.clone()).collect::<Vec<_>>();
    let all = ids(&s.keys(None).await.unwrap());
    assert_eq!(all, ["k5", "k4", "k2", "k3", "k1"]);
    for size in 1..=6 {
        let mut seen = Vec::new();
        let mut after: Option<(i64, String)> = None;
        loop {
            let page = s
                .keys_page(None, after.as_ref().map(|(c, k)| (*c, k.as_str())), size)
                .await
                .unwrap();
            seen.extend(ids(&page));
            match page.last() {
                Some(last) if page.len() == usize::try_from(size).unwrap() => {
                    after = Some((last.created_at, last.key_id.clone()));
                }
                _ => break,
            }
        }
        assert_eq!(seen, all, "pages of {size}");
    }
    let acme = s
        .keys_page(Some(&tenant_of("acme")), Some((30, "k4")), 10)
        .await
        .unwrap();
    assert_eq!(ids(&acme), ["k3", "k1"]);
}

async fn revoking_a_key_happens_once_and_records_its_entry(s: &impl Store) {
    s.insert_key(&key("k1", "acme"), &audit("key.create", 1))
        .await
        .unwrap();
    let e = entry("key", "k1", 100, 5000);
    assert!(
        s.revoke_key(&id_of("k1"), &e, &audit("key.revoke", 100))
            .await
            .unwrap()
            .changed()
    );
    assert!(
        !s.revoke_key(&id_of("k1"), &e, &audit("key.revoke", 101))
            .await
            .unwrap()
            .changed()
    );
    assert!(
        !s.revoke_key(&id_of("zz"), &e, &audit("key.revoke", 102))
            .await
            .unwrap()
            .changed()
    );
    assert_eq!(
        s.key(&id_of("k1")).await.unwrap().unwrap().revoked_at,
        Some(100)
    );
    assert_eq!(s.revocations(0).await.unwrap(), vec![e]);
    assert_eq!(s.tenants(0).await.unwrap()[0].active_keys, 0);
}

async fn rotation_cuts_the_old_expiry_and_inserts_the_successor_atomically(s: &impl Store) {
    s.insert_key(&key("old", "acme"), &audit("key.create", 1))
        .await
        .unwrap();
    let next = key("new", "acme");
    assert!(
        s.rotate_key(&id_of("old"), 1_900_000_000, &next, &audit("key.rotate", 2))
            .await
            .unwrap()
            .changed()
    );
    let old = s.key(&id_of("old")).await.unwrap().unwrap();
    assert_eq!(
        (old.expires_at, old.rotated_to.as_deref()),
        (1_900_000_000, Some("new"))
    );
    // A second rotation of the same key is refused, and a grace longer than the remaining
    // lifetime never extends a key.
    assert!(
        !s.rotate_key(
            &id_of("old"),
            1_950_000_000,
            &key("x", "acme"),
            &audit("key.rotate", 3)
        )
        .await
        .unwrap()
        .changed()
    );
    assert_eq!(s.key(&id_of("x")).await.unwrap(), None);
    assert!(
        s.rotate_key(
            &id_of("new"),
            2_100_000_000,
            &key("newer", "acme"),
            &audit("key.rotate", 4)
        )
        .await
        .unwrap()
        .changed()
    );
    assert_eq!(
        s.key(&id_of("new")).await.unwrap().unwrap().expires_at,
        2_000_000_000
    );
    // A failed insert of the successor (its ID exists) leaves the old key untouched.
    assert!(
        s.rotate_key(
            &id_of("newer"),
            1,
            &key("old", "acme"),
            &audit("key.rotate", 5)
        )
        .await
        .is_err()
    );
    assert_eq!(
        s.key(&id_of("newer")).await.unwrap().unwrap().rotated_to,
        None
    );
}

async fn revoking_a_tenant_revokes_each_key_and_lists_them(s: &impl Store) {
    for id in ["t1", "t2"] {
        s.insert_key(&key(id, "acme"), &audit("key.create", 1))
            .await
            .unwrap();
    }
    s.insert_key(&key("o1", "other"), &audit("key.create", 1))
        .await
        .unwrap();
    let n = s
        .revoke_tenant(
            &tenant_of("acme"),
            &entry("tenant", "acme", 50, 900),
            &audit("tenant.revoke", 50),
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    let listed: Vec<(String, String)> = s
        .revocations(0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.target.kind().to_owned(), e.target.id().to_owned()))
        .collect();
    assert_eq!(
        listed,
        [
            ("key".to_owned(), "t1".to_owned()),
            ("key".to_owned(), "t2".to_owned()),
            ("tenant".to_owned(), "acme".to_owned())
        ]
    );
    assert_eq!(s.key(&id_of("o1")).await.unwrap().unwrap().revoked_at, None);
}

async fn revocations_leave_the_list_after_drop_after(s: &impl Store) {
    assert!(
        s.add_revocation(&entry("jti", "j1", 10, 100), &audit("token.revoke", 10))
            .await
            .unwrap()
            .changed()
    );
    // Revoking again never shortens the entry's life.
    assert_eq!(
        s.add_revocation(&entry("jti", "j1", 20, 50), &audit("token.revoke", 20))
            .await
            .unwrap(),
        Applied::Changed
    );
    assert_eq!(
        s.add_revocation(&entry("jti", "j1", 30, 300), &audit("token.revoke", 30))
            .await
            .unwrap(),
        Applied::Changed
    );
    assert_eq!(s.revocations(299).await.unwrap().len(), 1);
    assert_eq!(s.revocations(299).await.unwrap()[0].drop_after, 300);
    assert!(s.revocations(300).await.unwrap().is_empty());
    // Pruning takes entries dropped before the cutoff, at most a batch at a time.
    for (n, drop_after) in [(2, 150), (3, 160), (4, 400)] {
        let _ = s
            .add_revocation(
                &entry("jti", &format!("j{n}"), 40, drop_after),
                &audit("token.revoke", 40),
            )
            .await
            .unwrap();
    }
    assert_eq!(s.prune_revocations(301, 2).await.unwrap(), 2);
    assert_eq!(s.prune_revocations(301, 2).await.unwrap(), 1);
    assert_eq!(s.prune_revocations(301, 2).await.unwrap(), 0);
    let left = s.revocations(0).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].drop_after, 400);
}

async fn one_list_per_serial_and_the_newest_wins(s: &impl Store) {
    let list = |serial: i64, jws: &str| StoredList {
        serial,
        jws: jws.into(),
        iat: serial * 10,
        exp: serial * 10 + 100,
        as_of: serial,
    };
    assert_eq!(s.latest_list().await.unwrap(), None);
    s.insert_list(&list(1, "first")).await.unwrap();
    // Another replica signing the same serial loses, and its bytes are never stored.
    assert!(matches!(
        s.insert_list(&list(1, "other replica")).await,
        Err(StoreError::Conflict)
    ));
    s.insert_list(&list(2, "second")).await.unwrap();
    assert_eq!(s.latest_list().await.unwrap(), Some(list(2, "second")));
}

fn signing_key(kid: &str, state: SigningKeyState) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid_of(kid),
        alg: "EdDSA".into(),
        encrypted_pkcs8: vec![1, 2, 3],
        public_jwk: "{}".into(),
        state,
        created_at: 1,
        activate_at: 1,
        retired_at: None,
        remove_after: None,
        revoked_at: None,
    }
}

async fn signing_keys_move_only_from_the_expected_state_and_lose_private_keys(s: &impl Store) {
    use SigningKeyState::{Active, Next, Removed, Retired, Revoked};
    s.insert_signing_key(&signing_key("a", Active), None)
        .await
        .unwrap();
    s.insert_signing_key(
        &signing_key("n", Next),
        Some(&audit("signing_key.create", 1)),
    )
    .await
    .unwrap();
    assert!(
        s.transition_signing_key(&kid_of("n"), Next, Active, 20, None, None)
            .await
            .unwrap()
            .changed()
    );
    assert!(
        !s.transition_signing_key(&kid_of("n"), Next, Active, 21, None, None)
            .await
            .unwrap()
            .changed()
    );
    assert!(
        s.transition_signing_key(&kid_of("a"), Active, Retired, 20, Some(500), None)
            .await
            .unwrap()
            .changed()
    );
    let by_kid =
        |v: Vec<SigningKeyRecord>, kid: &str| v.into_iter().find(|k| k.kid.as_str() == kid);
    let a = by_kid(s.signing_keys().await.unwrap(), "a").unwrap();
    assert_eq!(
        (
            a.state,
            a.retired_at,
            a.remove_after,
            a.encrypted_pkcs8.len()
        ),
        (Retired, Some(20), Some(500), 3)
    );
    assert!(
        s.transition_signing_key(&kid_of("a"), Retired, Removed, 600, None, None)
            .await
            .unwrap()
            .changed()
    );
    assert_eq!(by_kid(s.signing_keys().await.unwrap(), "a"), None);
    assert!(
        s.revoke_signing_key(
            &kid_of("n"),
            None,
            &entry("kid", "n", 30, 900),
            &audit("signing_key.revoke", 30)
        )
        .await
        .unwrap()
        .changed()
    );
    let n = by_kid(s.signing_keys().await.unwrap(), "n").unwrap();
    assert_eq!((n.state, n.encrypted_pkcs8.len()), (Revoked, 0));
    assert!(
        !s.revoke_signing_key(
            &kid_of("n"),
            None,
            &entry("kid", "n", 31, 900),
            &audit("signing_key.revoke", 31)
        )
        .await
        .unwrap()
        .changed()
    );
}

async fn scopes_upsert_and_publishable_origins_skip_dead_keys(s: &impl Store) {
    s.put_scope(
        &scope_of("read"),
        Visibility::Private,
        &audit("scope.put", 1),
    )
    .await
    .unwrap();
    s.put_scope(
        &scope_of("read"),
        Visibility::Public,
        &audit("scope.put", 2),
    )
    .await
    .unwrap();
    s.put_scope(
        &scope_of("admin-only"),
        Visibility::Private,
        &audit("scope.put", 3),
    )
    .await
    .unwrap();
    assert_eq!(
        s.scopes()
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.name.to_string(), r.visibility))
            .collect::<Vec<_>>(),
        [
            ("admin-only".to_owned(), Visibility::Private),
            ("read".to_owned(), Visibility::Public)
        ]
    );
    let mut live = key("p1", "acme");
    live.kind = "pk".into();
    live.allow_origins = "https://b.example https://a.example".into();
    let mut expired = live.clone();
    expired.key_id = "p2".into();
    expired.expires_at = 10;
    expired.allow_origins = "https://gone.example".into();
    for k in [&live, &expired] {
        s.insert_key(k, &audit("key.create", 1)).await.unwrap();
    }
    assert_eq!(
        s.publishable_origins(100).await.unwrap(),
        ["https://a.example", "https://b.example"]
    );
}

async fn a_dpop_proof_id_is_claimed_once(s: &impl Store) {
    assert!(s.claim_dpop_proof("p1", 100, 10).await.unwrap().is_first());
    assert!(!s.claim_dpop_proof("p1", 100, 11).await.unwrap().is_first());
    assert!(s.claim_dpop_proof("p2", 100, 11).await.unwrap().is_first());
    // Long after its window the ID is forgotten (no proof that old is accepted anyway).
    assert!(
        s.claim_dpop_proof("p3", 1000, 500)
            .await
            .unwrap()
            .is_first()
    );
    assert!(
        s.claim_dpop_proof("p1", 1000, 500)
            .await
            .unwrap()
            .is_first()
    );
}

async fn the_change_feed_is_ordered_and_resumable(s: &impl Store) {
    let start = s.last_change().await.unwrap();
    s.insert_key(&key("c1", "acme"), &audit("key.create", 1))
        .await
        .unwrap();
    assert_eq!(
        s.revoke_key(
            &id_of("c1"),
            &entry("key", "c1", 2, 9),
            &audit("key.revoke", 2)
        )
        .await
        .unwrap(),
        Applied::Changed
    );
    let changes = s.changes_since(start).await.unwrap().changes;
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.kind.as_str(), c.target.as_str()))
            .collect::<Vec<_>>(),
        [("key", "c1"), ("key", "c1"), ("revocation", "c1")]
    );
    assert!(changes.windows(2).all(|w| w[0].id < w[1].id));
    let last = s.last_change().await.unwrap();
    assert_eq!(last, changes[2].id);
    assert!(s.changes_since(last).await.unwrap().changes.is_empty());
    assert_eq!(
        s.changes_since(changes[0].id).await.unwrap().changes.len(),
        2
    );
}

async fn audit_filters_and_pages_newest_first(s: &impl Store) {
    let records: Vec<AuditRecord> = (0..25)
        .map(|i| AuditRecord {
            at: 1000 + i,
            action: if i % 5 == 0 {
                "key.revoke"
            } else {
                "token.issue"
            }
            .into(),
            outcome: if i % 2 == 0 { "granted" } else { "refused" }.into(),
            key_id: Some(format!("k{}", i % 3)),
            tenant: Some("acme".into()),
            reason: (i % 2 == 1).then(|| "invalid_scope".into()),
            ..AuditRecord::default()
        })
        .collect();
    s.insert_audit(&records).await.unwrap();
    let page = |q: AuditQuery| async move { s.audit(&q).await.unwrap() };
    let first = page(AuditQuery {
        limit: 10,
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(first.len(), 10);
    assert_eq!(first[0].record, records[24]);
    let second = page(AuditQuery {
        limit: 10,
        before: Some(first[9].id),
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(second[0].record, records[14]);
    let revokes = page(AuditQuery {
        limit: 100,
        action: Some("key.revoke".into()),
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(revokes.len(), 5);
    let k1_refused_window = page(AuditQuery {
        limit: 100,
        key_id: Some("k1".into()),
        outcome: Some("refused".into()),
        since: Some(1005),
        until: Some(1020),
        tenant: Some("acme".into()),
        ..AuditQuery::default()
    })
    .await;
    let ats: Vec<i64> = k1_refused_window.iter().map(|e| e.record.at).collect();
    assert_eq!(ats, [1019, 1013, 1007]);
}

async fn last_used_only_moves_forward(s: &impl Store) {
    s.insert_key(&key("u1", "acme"), &audit("key.create", 1))
        .await
        .unwrap();
    s.touch_keys(&[(id_of("u1"), 500), (id_of("missing"), 1)])
        .await
        .unwrap();
    s.touch_keys(&[(id_of("u1"), 400)]).await.unwrap();
    assert_eq!(
        s.key(&id_of("u1")).await.unwrap().unwrap().last_used_at,
        Some(500)
    );
}

async fn settings_upsert(s: &impl Store) {
    assert_eq!(s.setting("max_token_ttl").await.unwrap(), None);
    s.set_setting("max_token_ttl", "3600").await.unwrap();
    s.set_setting("max_token_ttl", "600").await.unwrap();
    assert_eq!(
        s.setting("max_token_ttl").await.unwrap().as_deref(),
        Some("600")
    );
}

async fn usage_counts_add_up_and_prune_in_batches(s: &impl Store) {
    let count = |key: &str, bucket: i64, client: &str, n: i64, first: i64, last: i64| {
        crate::store::UsageCount {
            key_id: key.into(),
            bucket,
            action: "token.issue".into(),
            outcome: "granted".into(),
            reason: String::new(),
            client: client.into(),
            origin: String::new(),
            count: n,
            first_seen: first,
            last_seen: last,
        }
    };
    s.add_usage(&[count("k1", 3600, "192.0.2.1", 3, 3700, 3710)])
        .await
        .unwrap();
    s.add_usage(&[
        count("k1", 3600, "192.0.2.1", 2, 3650, 3705),
        count("k1", 3600, "192.0.2.2", 1, 3800, 3800),
        count("k1", 7200, "192.0.2.1", 4, 7300, 7400),
        count("k2", 7200, "192.0.2.9", 9, 7300, 7300),
    ])
    .await
    .unwrap();
    // Summed over the hours, per client: the same row added to, never a row per addition.
    let lines = s.usage("k1", 0, 100).await.unwrap();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!((lines[0].client.as_str(), lines[0].count), ("192.0.2.1", 9));
    assert_eq!((lines[0].first_seen, lines[0].last_seen), (3650, 7400));
    assert_eq!((lines[1].client.as_str(), lines[1].count), ("192.0.2.2", 1));
    assert_eq!(s.usage_rows(0, 100).await.unwrap().len(), 4);
    // From an hour on.
    let later = s.usage("k1", 7200, 100).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].count, 4);
    // Pruning takes at most a batch, oldest hours only.
    assert_eq!(s.prune_usage(7200, 1).await.unwrap(), 1);
    assert_eq!(s.prune_usage(7200, 10).await.unwrap(), 1);
    assert_eq!(s.prune_usage(7200, 10).await.unwrap(), 0);
    assert_eq!(s.usage_rows(0, 100).await.unwrap().len(), 2);
}

/// Keys revoked or expired before the cutoff go, a batch at a time; keys alive at the cutoff,
/// revoked or expired after it, or still named by usage rows (a dead key clients still present),
/// stay.
async fn keys_dead_before_the_cutoff_prune_in_batches(s: &impl Store) {
    let with = |id: &str, expires_at: i64, revoked_at: Option<i64>| KeyRecord {
        expires_at,
        revoked_at,
        ..key(id, "acme")
    };
    for k in [
        with("expired-long-ago", 100, None),
        with("revoked-long-ago", 5_000, Some(200)),
        with("both-long-ago", 300, Some(250)),
        with("expired-at-cutoff", 1_000, None),
        with("revoked-after", 5_000, Some(1_500)),
        with("expired-after", 2_000, None),
        with("alive", 5_000, None),
        with("revoked-still-tried", 5_000, Some(300)),
    ] {
        s.insert_key(&k, &audit("key.create", 1)).await.unwrap();
    }
    s.add_usage(&[crate::store::UsageCount {
        key_id: "revoked-still-tried".into(),
        bucket: 3600,
        action: "token.issue".into(),
        outcome: "refused".into(),
        reason: "revoked_key".into(),
        client: "192.0.2.1".into(),
        origin: String::new(),
        count: 1,
        first_seen: 3601,
        last_seen: 3601,
    }])
    .await
    .unwrap();
    assert_eq!(s.prune_keys(1_000, 2).await.unwrap(), 2);
    assert_eq!(s.prune_keys(1_000, 2).await.unwrap(), 1);
    assert_eq!(s.prune_keys(1_000, 2).await.unwrap(), 0);
    let mut left: Vec<String> = s
        .keys(None)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.key_id)
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "alive",
            "expired-after",
            "expired-at-cutoff",
            "revoked-after",
            "revoked-still-tried"
        ]
    );
}

async fn audit_rows_prune_by_time_in_batches(s: &impl Store) {
    let rec = |at: i64| AuditRecord {
        at,
        action: "key.create".into(),
        outcome: "ok".into(),
        ..AuditRecord::default()
    };
    s.insert_audit(&[rec(10), rec(20), rec(30), rec(40)])
        .await
        .unwrap();
    assert_eq!(s.prune_audit(35, 2).await.unwrap(), 2);
    assert_eq!(s.prune_audit(35, 2).await.unwrap(), 1);
    assert_eq!(s.prune_audit(35, 2).await.unwrap(), 0);
    let left = s
        .audit(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].record.at, 40);
}

async fn leak_reports_are_remembered_within_a_bound_and_policies_upsert(s: &impl Store) {
    for i in 0..5 {
        let first = s
            .record_leak_report(&format!("d{i}"), i, &format!("[{i}]"), 3)
            .await
            .unwrap();
        assert_eq!(first, Applied::Changed);
    }
    // The same report again: not recorded twice, the first answer stays.
    assert_eq!(
        s.record_leak_report("d4", 9, "[other]", 3).await.unwrap(),
        Applied::Unchanged
    );
    assert_eq!(s.leak_report("d4").await.unwrap().as_deref(), Some("[4]"));
    assert_eq!(s.leak_report("d2").await.unwrap().as_deref(), Some("[2]"));
    // Only the newest three are kept.
    assert_eq!(s.leak_report("d1").await.unwrap(), None);
    assert_eq!(s.leak_report("d0").await.unwrap(), None);

    assert_eq!(s.tenant_policy("acme").await.unwrap(), None);
    let mut p = TenantPolicyRecord {
        tenant: "acme".into(),
        on_leak: "flag".into(),
        updated_at: 10,
        webhook_url: None,
        webhook_secret: None,
    };
    s.put_tenant_policy(&p, None).await.unwrap();
    p.on_leak = "revoke".into();
    p.updated_at = 20;
    s.put_tenant_policy(&p, None).await.unwrap();
    assert_eq!(s.tenant_policy("acme").await.unwrap(), Some(p.clone()));
    assert_eq!(s.tenant_policies().await.unwrap(), vec![p]);
}

async fn a_webhook_call_is_claimed_once_and_finished_calls_are_bounded(s: &impl Store) {
    let call = |n: i64| WebhookDelivery {
        id: 0,
        tenant: "acme".into(),
        url: "https://hooks.example/h".into(),
        body: format!("{{\"n\":{n}}}"),
        state: "pending".into(),
        attempts: 0,
        next_at: 100 + n,
        created_at: 100,
        last_error: None,
    };
    for n in 0..4 {
        s.enqueue_webhook(&call(n)).await.unwrap();
    }
    assert!(s.due_webhooks(99, 10).await.unwrap().is_empty());
    let due = s.due_webhooks(101, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|d| d.next_at).collect::<Vec<_>>(),
        [100, 101]
    );
    let first = due[0].clone();
    // Two replicas race for it: one wins.
    assert_eq!(
        s.claim_webhook(first.id, 100, 160).await.unwrap(),
        Applied::Changed
    );
    assert_eq!(
        s.claim_webhook(first.id, 100, 160).await.unwrap(),
        Applied::Unchanged
    );
    assert_eq!(
        s.due_webhooks(101, 10).await.unwrap().len(),
        1,
        "held by its lease"
    );
    // Every call finishes (finishing also trims finished calls to the newest `keep`); none is due again.
    for mut d in s
        .due_webhooks(1000, 10)
        .await
        .unwrap()
        .into_iter()
        .chain([first])
    {
        d.state = "delivered".into();
        d.attempts = 1;
        s.finish_webhook(&d, 2).await.unwrap();
    }
    assert!(s.due_webhooks(10_000, 10).await.unwrap().is_empty());
}
