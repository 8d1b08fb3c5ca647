//! The copy on real SQLite stores; the fixtures serve the command's tests too.

use crate::store::tests::{kid_of, scope_of, target_of};
use crate::store::{Applied, Visibility};
use std::path::PathBuf;

use zeroize::Zeroizing;

use super::*;
use crate::domain::signing::secret_box::EncryptionKey;
use crate::store::{
    FlakyStore, KeyRecord, RevocationRecord, SigningKeyRecord, SigningKeyState, SqliteStore,
};

pub(crate) struct Db {
    pub(crate) store: SqliteStore,
    dir: PathBuf,
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) async fn db(name: &str) -> Db {
    let dir = std::env::temp_dir().join(format!("keymint-migrate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqliteStore::open(&dir.join("keymint.db")).await.unwrap();
    Db { store, dir }
}

pub(crate) fn migration<S: Store>(source: &S) -> Migration<'_, S> {
    Migration::new(source, "old.db", "postgres://db/new", "cli:test", 2000)
}

pub(crate) fn audit(action: &str, at: i64) -> AuditRecord {
    AuditRecord {
        at,
        action: action.into(),
        outcome: "ok".into(),
        ..AuditRecord::default()
    }
}

pub(crate) fn key(id: &str, revoked_at: Option<i64>) -> KeyRecord {
    KeyRecord {
        key_id: id.into(),
        kind: "sk".into(),
        env: "live".into(),
        tenant: "acme".into(),
        secret_hash: vec![1; 32],
        scopes: "a".into(),
        audiences: "https://api.example".into(),
        default_ttl: 600,
        max_ttl: 3600,
        expires_at: 2_000_000_000,
        allow_ips: String::new(),
        allow_origins: String::new(),
        rate_limit: None,
        label: None,
        owner: None,
        is_admin: false,
        created_at: 1_700_000_000,
        last_used_at: Some(1_700_000_100),
        revoked_at,
        rotated_to: None,
    }
}

fn signing_key(kid: &str, encrypted_pkcs8: Vec<u8>) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid_of(kid),
        alg: "EdDSA".into(),
        encrypted_pkcs8,
        public_jwk: "{}".into(),
        state: SigningKeyState::Retired,
        created_at: 900,
        activate_at: 900,
        retired_at: Some(1000),
        remove_after: Some(5000),
        revoked_at: None,
    }
}

fn encryption_key(byte: u8) -> EncryptionKey {
    EncryptionKey::new(&Zeroizing::new([byte; 32])).unwrap()
}

async fn everything(s: &SqliteStore) -> Vec<AuditRecord> {
    let mut all = s
        .audit(&AuditQuery {
            limit: 10_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    all.reverse();
    all.into_iter().map(|e| e.record).collect()
}

#[tokio::test]
async fn copies_every_row_and_the_audit_history_oldest_first_across_pages() {
    let src = db("src").await;
    let dst = db("dst").await;
    let s = &src.store;
    let history: Vec<AuditRecord> = (0..23).map(|i| audit("token.issue", 1000 + i)).collect();
    s.insert_audit(&history).await.unwrap();
    s.insert_keys(
        &[key("k1", None), key("k2", Some(1_700_000_500))],
        &audit("key.create_many", 1100),
    )
    .await
    .unwrap();
    let sk = signing_key("kid-1", vec![9; 40]);
    s.insert_signing_key(&sk, None).await.unwrap();
    let entry = RevocationRecord {
        target: target_of("jti", "j1"),
        revoked_at: 1200,
        drop_after: 9_000_000_000,
    };
    assert_eq!(
        s.add_revocation(&entry, &audit("token.revoke", 1200))
            .await
            .unwrap(),
        Applied::Changed
    );
    s.put_scope(
        &scope_of("catalog:read"),
        Visibility::Public,
        &audit("scope.put", 1300),
    )
    .await
    .unwrap();
    s.set_setting("issuer", "http://keymint.test")
        .await
        .unwrap();
    let list = StoredList {
        serial: 7,
        jws: "a.b.c".into(),
        iat: 1400,
        exp: 90_000,
        as_of: 55,
    };
    s.insert_list(&list, None).await.unwrap();
    // Twelve usage rows: three pages of 5.
    let usage: Vec<crate::store::UsageCount> = (0..12)
        .map(|n| crate::store::UsageCount {
            key_id: "k1".into(),
            bucket: 3600,
            action: "token.issue".into(),
            outcome: "granted".into(),
            reason: String::new(),
            client: format!("192.0.2.{n}"),
            origin: String::new(),
            count: n + 1,
            first_seen: 3600 + n,
            last_seen: 3700 + n,
        })
        .collect();
    s.add_usage(&usage).await.unwrap();
    let policy = crate::store::TenantPolicyRecord {
        tenant: "acme".into(),
        on_leak: "flag".into(),
        updated_at: 1500,
        webhook_url: Some("https://hooks.example/k".into()),
        webhook_secret: Some(vec![1, 2, 3]),
    };
    s.put_tenant_policy(&policy, None).await.unwrap();
    let before = everything(s).await;

    // Pages of 5: the 26 records make six pages.
    let mut m = migration(s).with_audit_batch(5);
    let snap = m.read().await.unwrap();
    let empty = m.check_target(&dst.store).await.unwrap();
    let copied = m.copy(&snap, empty).await.unwrap();
    assert_eq!(
        copied,
        Copied {
            audit: 26,
            usage: 12,
            signing_keys: 1,
            keys: 2,
            revoked_keys: 1,
            revocations: 1,
            scopes: 1,
            settings: 1,
            serial: Some(7),
        }
    );

    let d = &dst.store;
    let counts = |rows: Vec<crate::store::UsageEntry>| -> Vec<_> {
        rows.into_iter().map(|r| r.count).collect()
    };
    assert_eq!(counts(d.usage_rows(0, 100).await.unwrap()), usage);
    assert_eq!(d.keys(None).await.unwrap(), s.keys(None).await.unwrap());
    assert_eq!(d.tenant_policies().await.unwrap(), vec![policy]);
    assert_eq!(d.signing_keys().await.unwrap(), vec![sk]);
    assert_eq!(d.revocations(2000).await.unwrap(), vec![entry]);
    assert_eq!(
        d.scopes().await.unwrap(),
        vec![crate::store::ScopeRecord {
            name: scope_of("catalog:read"),
            visibility: Visibility::Public
        }]
    );
    assert_eq!(
        d.setting("issuer").await.unwrap().as_deref(),
        Some("http://keymint.test")
    );
    // Same list, but re-signed by the first replica: its position in the old feed is void.
    assert_eq!(
        d.latest_list().await.unwrap(),
        Some(StoredList { as_of: 0, ..list })
    );
    // The history first, in its order, then one record per copied item.
    let after = everything(d).await;
    assert_eq!(after.get(..before.len()), Some(&before[..]));
    let own: Vec<&str> = after[before.len()..]
        .iter()
        .map(|r| r.detail.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(
        own,
        [
            "copied signing key kid-1 (retired)",
            "copied 2 API keys",
            "copied revocation entry jti j1",
            "copied scope, public=true",
            "copied tenant policy, on_leak=flag",
        ]
    );
    assert!(after[before.len()..].iter().all(|r| r.action == ACTION));

    // The summary record goes to both databases, last.
    let finished = m.finish(d, &copied).await.unwrap();
    assert!(finished.source_unrecorded.is_none());
    let summary = format!("from old.db to postgres://db/new: {copied}");
    for store in [s, d] {
        let last = everything(store).await.pop().unwrap();
        assert_eq!(last.action, ACTION);
        assert_eq!(last.actor.as_deref(), Some("cli:test"));
        assert_eq!(last.detail.as_deref(), Some(summary.as_str()));
    }

    // The target now refuses a second copy.
    let refused = migration(s).check_target(d).await.unwrap_err();
    assert!(matches!(refused, DomainError::Conflict(_)));
    assert!(refused.to_string().contains("2 API keys"), "{refused}");
}

#[tokio::test]
async fn a_source_written_during_the_copy_fails_it() {
    let src = db("moving").await;
    let dst = db("moving-dst").await;
    let s = &src.store;
    s.insert_keys(&[key("k1", None)], &audit("key.create_many", 1100))
        .await
        .unwrap();
    let mut m = migration(s).with_audit_batch(100);
    let snap = m.read().await.unwrap();
    s.insert_key(&key("k2", None), &audit("key.create", 1500))
        .await
        .unwrap();
    let empty = m.check_target(&dst.store).await.unwrap();
    let err = m.copy(&snap, empty).await.unwrap_err();
    assert!(matches!(err, DomainError::Conflict(_)));
    assert!(
        err.to_string()
            .contains("changed while it was being copied")
    );
    assert_eq!(m.step(), Step::Rereading);
}

#[tokio::test]
async fn a_source_with_no_keys_is_refused() {
    let src = db("empty").await;
    let err = migration(&src.store).read().await.unwrap_err();
    assert!(matches!(err, DomainError::Invalid(_)));
    assert_eq!(
        err.to_string(),
        "nothing to migrate: old.db has no API keys and no signing keys"
    );
}

#[tokio::test]
async fn an_encryption_key_that_does_not_open_a_signing_key_is_refused() {
    let src = db("sealed").await;
    let s = &src.store;
    let right = encryption_key(1);
    let sealed = right.seal("kid-1", b"pkcs8").unwrap();
    s.insert_signing_key(&signing_key("kid-1", sealed), None)
        .await
        .unwrap();
    // Removed keys have no private key left to open.
    s.insert_signing_key(&signing_key("kid-0", Vec::new()), None)
        .await
        .unwrap();
    let snap = migration(s).read().await.unwrap();
    snap.check_encryption_key(&right, &"KEY_FILE=/right")
        .unwrap();
    let err = snap
        .check_encryption_key(&encryption_key(2), &"KEY_FILE=/wrong")
        .unwrap_err();
    assert!(matches!(err, DomainError::Invalid(_)));
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "the encryption key in use (KEY_FILE=/wrong) does not open signing key kid-1"
        ),
        "{msg}"
    );
}

#[tokio::test]
async fn a_target_that_goes_down_is_unavailable_and_the_migration_says_during_what() {
    let src = db("down").await;
    let dst = db("down-dst").await;
    let s = &src.store;
    s.insert_keys(&[key("k1", None)], &audit("key.create_many", 1100))
        .await
        .unwrap();
    let target = FlakyStore::new(dst.store.clone());
    let mut m = migration(s);
    let snap = m.read().await.unwrap();
    let empty = m.check_target(&target).await.unwrap();
    target.set_down(true);
    let err = m.copy(&snap, empty).await.unwrap_err();
    assert!(matches!(err, DomainError::Unavailable(_)), "{err}");
    assert_eq!(m.step(), Step::Writing(Part::AuditRecords));
    assert_eq!(m.doing(), "writing the audit records to the target");

    // Nothing was written: the target is still empty, and a second attempt gets as far as the
    // migration's own record.
    target.set_down(false);
    let mut m = migration(s);
    let snap = m.read().await.unwrap();
    let empty = m.check_target(&target).await.unwrap();
    let copied = m.copy(&snap, empty).await.unwrap();
    target.set_down(true);
    let err = m.finish(&target, &copied).await.unwrap_err();
    assert!(matches!(err, DomainError::Unavailable(_)), "{err}");
    assert_eq!(m.doing(), "writing the audit record to postgres://db/new");
}

#[test]
fn the_summary_counts_in_words() {
    let c = Copied {
        audit: 5,
        usage: 7,
        signing_keys: 1,
        keys: 3,
        revoked_keys: 1,
        revocations: 2,
        scopes: 1,
        settings: 3,
        serial: Some(4),
    };
    assert_eq!(
        c.to_string(),
        "1 signing key, 3 API keys (1 revoked), 2 revocation entries, 1 scope, 3 settings, \
         the revocation list at serial 4, 5 audit records, 7 usage rows"
    );
}
