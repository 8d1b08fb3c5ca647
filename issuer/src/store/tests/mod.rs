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
    revocations_leave_the_list_after_drop_after,
    one_list_per_serial_and_the_newest_wins,
    signing_keys_move_only_from_the_expected_state_and_lose_private_keys,
    a_dpop_proof_id_is_claimed_once,
    settings_upsert,
    an_active_key_is_revoked_and_replaced_in_one_transaction,
    leak_reports_are_remembered_within_a_bound_and_policies_upsert,
    a_webhook_call_is_claimed_once_and_finished_calls_are_bounded,
);

/// The change feed: order, paging, pruning, Postgres notifications.
mod feed;
/// Audit rows, usage rollups, last-used times and what retention prunes.
mod history;
/// API keys and scopes: round trips, paging, revocation, rotation.
mod keys;

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

/// The IDs of every key `s` holds, sorted (for other modules' tests too).
pub(crate) async fn key_ids(s: &impl Store) -> Vec<String> {
    let mut ids: Vec<String> = s
        .keys(None)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.key_id)
        .collect();
    ids.sort();
    ids
}

/// A secret key row of `tenant`, alive (for other modules' tests too).
pub(crate) fn key(id: &str, tenant: &str) -> KeyRecord {
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
    s.insert_list(&list(1, "first"), None).await.unwrap();
    // Another replica signing the same serial loses, and its bytes are never stored.
    assert!(matches!(
        s.insert_list(&list(1, "other replica"), None).await,
        Err(StoreError::Conflict)
    ));
    s.insert_list(&list(2, "second"), Some(1)).await.unwrap();
    assert_eq!(s.latest_list().await.unwrap(), Some(list(2, "second")));
    // A replica that also read list 1 and, its clock ahead, signed serial 5 loses too: list 2
    // came first. Otherwise both were stored, and verifiers behind a load balancer saw 5, then
    // 2 as a rollback.
    assert!(matches!(
        s.insert_list(&list(5, "clock ahead"), Some(1)).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.latest_list().await.unwrap(), Some(list(2, "second")));
    // Old lists are deleted by count, as serials jump with the clock (the statement runs on both
    // backends); the newest stays the newest.
    for serial in 3..=40 {
        s.insert_list(
            &list(serial * 1000, "later"),
            s.latest_list().await.unwrap().map(|l| l.serial),
        )
        .await
        .unwrap();
    }
    assert_eq!(s.latest_list().await.unwrap().unwrap().serial, 40_000);
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

async fn settings_upsert(s: &impl Store) {
    assert_eq!(s.setting("max_token_ttl").await.unwrap(), None);
    s.set_setting("max_token_ttl", "3600").await.unwrap();
    s.set_setting("max_token_ttl", "600").await.unwrap();
    assert_eq!(
        s.setting("max_token_ttl").await.unwrap().as_deref(),
        Some("600")
    );
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
    assert!(s.due_webhooks(99, 10, 10).await.unwrap().is_empty());
    let due = s.due_webhooks(101, 10, 10).await.unwrap();
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
        s.due_webhooks(101, 10, 10).await.unwrap().len(),
        1,
        "held by its lease"
    );
    // Every call finishes (finishing also trims finished calls to the newest `keep`); none is due again.
    for mut d in s
        .due_webhooks(1000, 10, 10)
        .await
        .unwrap()
        .into_iter()
        .chain([first])
    {
        d.state = "delivered".into();
        d.attempts = 1;
        s.finish_webhook(&d, 2).await.unwrap();
    }
    assert!(s.due_webhooks(10_000, 10, 10).await.unwrap().is_empty());
    // One tenant's backlog does not fill a round: at most `per_tenant` of each, oldest first.
    for n in 0..5 {
        s.enqueue_webhook(&call(n)).await.unwrap();
    }
    s.enqueue_webhook(&WebhookDelivery {
        tenant: "globex".into(),
        next_at: 110,
        ..call(0)
    })
    .await
    .unwrap();
    let due = s.due_webhooks(1000, 10, 2).await.unwrap();
    assert_eq!(
        due.iter()
            .map(|d| (d.tenant.as_str(), d.next_at))
            .collect::<Vec<_>>(),
        [("acme", 100), ("acme", 101), ("globex", 110)]
    );
    assert_eq!(s.due_webhooks(1000, 1, 2).await.unwrap().len(), 1);
}
