//! Signing-key lifecycle and revocation-list refresh at pinned instants, on a real SQLite store.

use crate::store::tests::{id_of, tenant_of};

use std::time::Duration;

use keymint_jwks::{Algorithm, Issuer, UnixTime};
use zeroize::Zeroizing;

use crate::domain::revocation;
use crate::domain::signing;
use crate::domain::signing::secret_box::EncryptionKey;
use crate::store::{AuditQuery, SigningKeyState, SqliteStore, Store};

struct Db {
    store: SqliteStore,
    dir: std::path::PathBuf,
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn db(name: &str) -> Db {
    let dir = std::env::temp_dir().join(format!("keymint-domain-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Db {
        store: SqliteStore::open(&dir.join("db")).await.unwrap(),
        dir,
    }
}

fn enc() -> EncryptionKey {
    EncryptionKey::new(&Zeroizing::new([9; 32])).unwrap()
}

/// The first start's signing key, made at `t0`: its `kid`.
async fn first_active(store: &SqliteStore, enc: &EncryptionKey, t0: UnixTime) -> keymint_jwks::Kid {
    signing::ensure_active(store, enc, t0).await.unwrap();
    signing::load(store, enc)
        .await
        .unwrap()
        .active
        .key()
        .kid()
        .clone()
}

async fn state_of(store: &SqliteStore, kid: &keymint_jwks::Kid) -> Option<SigningKeyState> {
    store
        .signing_keys()
        .await
        .unwrap()
        .iter()
        .find(|k| k.kid == *kid)
        .map(|k| k.state)
}

#[tokio::test]
async fn next_activates_exactly_after_the_cache_period_and_margin_and_retired_goes_after_its_tokens()
 {
    let db = db("lifecycle").await;
    let (store, enc) = (&db.store, enc());
    let t0 = UnixTime(1_800_000_000);
    let first = first_active(store, &enc, t0).await;
    let max_age = Duration::from_secs(300);
    let next = signing::rotate(store, &enc, Algorithm::EdDsa, t0, max_age, "test")
        .await
        .unwrap();
    // Published but not signing.
    let set = signing::load(store, &enc).await.unwrap();
    assert_eq!(*set.active.key().kid(), first);
    assert!(set.published.get(next.kid.as_str()).is_some());
    // A retired key stays for the token lifetime (3,600 s), the propagation bound (5 s) and the
    // verifiers' leeway (300 s).
    let ttl = Duration::from_secs(3600);
    let retire_for = Duration::from_secs(3905);
    // The cache period (300 s) plus the margin for whole seconds and feed propagation (2 s).
    assert_eq!(signing::ACTIVATION_MARGIN, Duration::from_secs(2));
    assert!(
        !signing::maintain(store, &enc, UnixTime(t0.0 + 301), ttl)
            .await
            .unwrap()
    );
    assert_eq!(
        state_of(store, &next.kid).await,
        Some(SigningKeyState::Next)
    );
    assert!(
        signing::maintain(store, &enc, UnixTime(t0.0 + 302), ttl)
            .await
            .unwrap()
    );
    assert_eq!(
        state_of(store, &next.kid).await,
        Some(SigningKeyState::Active)
    );
    assert_eq!(
        state_of(store, &first).await,
        Some(SigningKeyState::Retired)
    );
    let set = signing::load(store, &enc).await.unwrap();
    assert_eq!(*set.active.key().kid(), next.kid);
    assert!(
        set.published.get(first.as_str()).is_some(),
        "retired keys stay published"
    );
    // Removed only once every token it signed has expired.
    let removal = t0.0 + 302 + retire_for.as_secs();
    assert!(
        !signing::maintain(store, &enc, UnixTime(removal - 1), ttl)
            .await
            .unwrap()
    );
    assert!(
        signing::maintain(store, &enc, UnixTime(removal), ttl)
            .await
            .unwrap()
    );
    assert_eq!(
        state_of(store, &first).await,
        None,
        "removed keys are no longer listed"
    );
    let set = signing::load(store, &enc).await.unwrap();
    assert!(set.published.get(first.as_str()).is_none());
    // A second concurrent rotation is refused while one is pending.
    signing::rotate(
        store,
        &enc,
        Algorithm::Es256,
        UnixTime(removal),
        max_age,
        "test",
    )
    .await
    .unwrap();
    assert!(
        signing::rotate(
            store,
            &enc,
            Algorithm::EdDsa,
            UnixTime(removal),
            max_age,
            "test"
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn a_wrong_encryption_key_is_a_clear_error() {
    let db = db("wrongkey").await;
    signing::ensure_active(&db.store, &enc(), UnixTime(1_800_000_000))
        .await
        .unwrap();
    let other = EncryptionKey::new(&Zeroizing::new([1; 32])).unwrap();
    let err = signing::load(&db.store, &other).await.unwrap_err();
    assert!(err.to_string().contains("KEYMINT_ENCRYPTION_KEY"), "{err}");
}

#[tokio::test]
async fn the_list_is_resigned_every_third_of_its_validity_and_on_every_revocation() {
    let db = db("list").await;
    let (store, enc) = (&db.store, enc());
    let t0 = UnixTime(1_800_000_000);
    signing::ensure_active(store, &enc, t0).await.unwrap();
    let signer = signing::load(store, &enc).await.unwrap().active;
    let iss = Issuer::new("https://issuer.test").unwrap();
    let validity = Duration::from_secs(3000);
    let first = revocation::current_list(store, &signer, &iss, t0, validity)
        .await
        .unwrap();
    let same = revocation::current_list(store, &signer, &iss, UnixTime(t0.0 + 999), validity)
        .await
        .unwrap();
    assert_eq!(same, first, "re-signed before a third of the validity");
    let renewed = revocation::current_list(store, &signer, &iss, UnixTime(t0.0 + 1000), validity)
        .await
        .unwrap();
    // Serials follow the signing time in milliseconds (see `revocation::next_serial`).
    assert_eq!(first.serial, t0.0 as i64 * 1000);
    assert_eq!(renewed.serial, (t0.0 as i64 + 1000) * 1000);
    assert_eq!(renewed.exp, t0.0 as i64 + 1000 + 3000);
    // A revocation makes the next call sign a new list at once.
    let jti = keymint_jwks::Jti::new("t1").unwrap();
    revocation::revoke_token(
        store,
        &jti,
        UnixTime(t0.0 + 1001),
        Duration::from_secs(600),
        "test",
    )
    .await
    .unwrap();
    let after = revocation::current_list(store, &signer, &iss, UnixTime(t0.0 + 1001), validity)
        .await
        .unwrap();
    assert_eq!(after.serial, (t0.0 as i64 + 1001) * 1000);
    assert!(after.jws.len() > renewed.jws.len());
    // Entries past drop_after (t0 + 1001 + 5 + 600 + 300) leave the list at its next re-signing.
    let later = UnixTime(t0.0 + 1001 + 1000);
    let dropped = revocation::current_list(store, &signer, &iss, later, validity)
        .await
        .unwrap();
    let payload =
        keymint_jwks::jws::decode_segment(dropped.jws.split('.').nth(1).unwrap(), "p").unwrap();
    let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(v["entries"], serde_json::json!([]));
}

fn signed_by(list: &crate::store::StoredList) -> String {
    keymint_jwks::jws::Compact::split(&list.jws, usize::MAX)
        .unwrap()
        .decode_header()
        .unwrap()
        .kid
        .unwrap()
}

/// Found by schemathesis (`scripts/schemathesis`): a task that still held the active signing key
/// when an admin revoked it signed the next list with the revoked key. The revoked key is out of
/// the JWKS, so no verifier (the admin gate included) could apply that list: the emergency
/// revocation itself did not propagate until the list was signed again. A signer that is no
/// longer in force now leaves the stored list as it is, and the key in force signs at once.
#[tokio::test]
async fn a_key_that_no_longer_signs_never_signs_the_list() {
    let db = db("list-signer").await;
    let (store, enc) = (&db.store, enc());
    let t0 = UnixTime(1_800_000_000);
    signing::ensure_active(store, &enc, t0).await.unwrap();
    let stale = signing::load(store, &enc).await.unwrap().active;
    let revoked = stale.key().kid().clone();
    let iss = Issuer::new("https://issuer.test").unwrap();
    let validity = Duration::from_secs(3000);
    let before = revocation::current_list(store, &stale, &iss, t0, validity)
        .await
        .unwrap();
    let t1 = UnixTime(t0.0 + 10);
    signing::revoke(store, &enc, &revoked, t1, Duration::from_secs(600), "test")
        .await
        .unwrap();
    // The race: a signer loaded before the revocation is asked for the list that lists it.
    let by_stale = revocation::current_list(store, &stale, &iss, t1, validity)
        .await
        .unwrap();
    assert_eq!(by_stale, before, "a revoked key signed a new list");
    let signer = signing::load(store, &enc).await.unwrap().active;
    assert_ne!(*signer.key().kid(), revoked);
    let list = revocation::current_list(store, &signer, &iss, UnixTime(t1.0 + 1), validity)
        .await
        .unwrap();
    assert_eq!(signed_by(&list), signer.key().kid().as_str());
    assert!(list.serial > before.serial);
    assert_eq!(list.serial, (t1.0 as i64 + 1) * 1000);
    let same = revocation::current_list(store, &signer, &iss, UnixTime(t1.0 + 2), validity)
        .await
        .unwrap();
    assert_eq!(
        same, list,
        "signed again although its signer is the one in force"
    );
}

#[tokio::test]
async fn last_used_times_are_written_in_batches_and_never_go_backwards() {
    use crate::domain::keys::key_hash::{KeyHasher, Pepper};
    use crate::domain::keys::{self, NewKey};
    let db = db("touch").await;
    let hasher = KeyHasher::new(&Pepper::new([2; 32]));
    let template = NewKey::for_tests();
    let mut ids = Vec::new();
    keys::create_many(
        &db.store,
        &hasher,
        &template,
        1000,
        UnixTime(1_800_000_000),
        "test",
        |_, id, _| ids.push(id.to_string()),
    )
    .await
    .unwrap();
    assert_eq!(
        db.store.keys(Some(&tenant_of("acme"))).await.unwrap().len(),
        1000
    );
    let used: Vec<(keymint_jwks::ApiKeyId, i64)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id_of(id), 1_800_000_100 + i as i64))
        .collect();
    db.store.touch_keys(&used).await.unwrap();
    db.store.touch_keys(&[(id_of(&ids[999]), 5)]).await.unwrap();
    let k0 = db.store.key(&id_of(&ids[0])).await.unwrap().unwrap();
    let k999 = db.store.key(&id_of(&ids[999])).await.unwrap().unwrap();
    assert_eq!(k0.last_used_at, Some(1_800_000_100));
    assert_eq!(k999.last_used_at, Some(1_800_001_099));
}

#[tokio::test]
async fn audit_batches_round_trip_every_field() {
    use crate::store::AuditRecord;
    let db = db("audit").await;
    let full = AuditRecord {
        at: 1_800_000_000,
        action: "token.issue".into(),
        outcome: "refused".into(),
        reason: Some("wrong secret".into()),
        actor: None,
        key_id: Some("K1".into()),
        tenant: Some("acme \"quoted\" ü".into()),
        scopes: Some("a b".into()),
        client_ip: Some("::1".into()),
        origin: Some("https://app.example".into()),
        detail: Some("jti=x".into()),
    };
    let sparse = AuditRecord {
        at: 1_800_000_001,
        action: "token.issue".into(),
        outcome: "granted".into(),
        ..AuditRecord::default()
    };
    let many: Vec<AuditRecord> = (0..2500)
        .map(|i| AuditRecord {
            at: i,
            ..sparse.clone()
        })
        .collect();
    db.store
        .insert_audit(&[full.clone(), sparse.clone()])
        .await
        .unwrap();
    db.store.insert_audit(&many).await.unwrap();
    let back = db
        .store
        .audit(&AuditQuery {
            limit: 2502,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(back.len(), 2502);
    assert_eq!(back[2501].record, full);
    assert_eq!(back[2500].record, sparse);
    assert_eq!(back[0].record.at, 2499);
}

/// Found in review: nothing stopped a customer key from being created with the admin audience as
/// its own; once a server has recorded its issuer URL, creation refuses it (and the token endpoint
/// never grants it to a customer key in any case: `grant` tests).
#[tokio::test]
async fn a_customer_key_cannot_be_created_with_the_admin_audience() {
    use crate::domain::keys::key_hash::{KeyHasher, Pepper};
    use crate::domain::keys::{self, NewKey};
    use keymint_jwks::Audience;
    let db = db("admin-aud").await;
    let hasher = KeyHasher::new(&Pepper::new([2; 32]));
    let with = |aud: &str| NewKey {
        audiences: vec![
            Audience::new("https://api.test").unwrap(),
            Audience::new(aud).unwrap(),
        ],
        ..NewKey::for_tests()
    };
    let now = UnixTime(1_800_000_000);
    db.store
        .set_setting("issuer", "https://issuer.test")
        .await
        .unwrap();
    let refused = keys::create(
        &db.store,
        &hasher,
        &with("https://issuer.test/v1/admin"),
        now,
        "test",
    )
    .await;
    assert!(
        matches!(refused, Err(crate::domain::DomainError::Invalid(_))),
        "{refused:?}"
    );
    let refused = keys::create_many(
        &db.store,
        &hasher,
        &with("https://issuer.test/v1/admin"),
        2,
        now,
        "test",
        |_, _, _| {},
    )
    .await;
    assert!(matches!(
        refused,
        Err(crate::domain::DomainError::Invalid(_))
    ));
    assert!(db.store.keys(None).await.unwrap().is_empty());
    keys::create(
        &db.store,
        &hasher,
        &with("https://other.test/v1/admin"),
        now,
        "test",
    )
    .await
    .unwrap();
}

async fn next_keys(store: &SqliteStore) -> Vec<crate::store::SigningKeyRecord> {
    store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.state == SigningKeyState::Next)
        .collect()
}

/// Issue 13, point 2: an emergency revocation of the active key with no *next* key generated a
/// fresh key that signed at once, which no verifier had: the list revoking the compromised key was
/// refused everywhere. A *next* key is now always published, takes over, and is replaced.
#[tokio::test]
async fn a_next_key_is_always_published_and_an_emergency_hands_signing_to_it() {
    let db = db("standby").await;
    let (store, enc) = (&db.store, enc());
    let t0 = UnixTime(1_800_000_000);
    signing::ensure_active(store, &enc, t0).await.unwrap();
    let set = signing::load(store, &enc).await.unwrap();
    let standby = next_keys(store).await;
    assert_eq!(standby.len(), 1, "no next key published on first start");
    let standby = standby[0].kid.clone();
    assert!(set.published.get(standby.as_str()).is_some());
    assert_eq!(next_keys(store).await[0].activate_at, signing::STANDBY);
    // The clock never promotes it.
    let ttl = Duration::from_secs(3600);
    assert!(
        !signing::maintain(store, &enc, UnixTime(t0.0 + 10 * 86_400), ttl)
            .await
            .unwrap()
    );
    assert_eq!(state_of(store, &standby).await, Some(SigningKeyState::Next));
    // A rotation schedules a key of its own; the standby stays behind for emergencies.
    let rotated = signing::rotate(
        store,
        &enc,
        Algorithm::EdDsa,
        t0,
        Duration::from_secs(300),
        "t",
    )
    .await
    .unwrap();
    assert_ne!(rotated.kid, standby);
    assert!(
        signing::maintain(store, &enc, UnixTime(t0.0 + 302), ttl)
            .await
            .unwrap()
    );
    assert_eq!(
        state_of(store, &rotated.kid).await,
        Some(SigningKeyState::Active)
    );
    assert_eq!(state_of(store, &standby).await, Some(SigningKeyState::Next));
    // Emergency: the key every verifier already holds signs at once...
    let t1 = UnixTime(t0.0 + 400);
    signing::revoke(
        store,
        &enc,
        &rotated.kid,
        t1,
        Duration::from_secs(600),
        "test",
    )
    .await
    .unwrap();
    let set = signing::load(store, &enc).await.unwrap();
    assert_eq!(*set.active.key().kid(), standby);
    // ...and a new standby is published behind it, with the same algorithm.
    let next = next_keys(store).await;
    assert_eq!(next.len(), 1, "{next:?}");
    assert_ne!(next[0].kid, standby);
    assert_eq!(next[0].activate_at, signing::STANDBY);
    assert!(set.published.get(next[0].kid.as_str()).is_some());
    // Should the standby go missing (revoked itself), maintenance publishes another.
    let lost = next[0].kid.clone();
    signing::revoke(store, &enc, &lost, t1, Duration::from_secs(600), "test")
        .await
        .unwrap();
    let next = next_keys(store).await;
    assert_eq!(next.len(), 1);
    assert_ne!(next[0].kid, lost);
}

/// `settings set max-token-ttl` lowered from a day to ten minutes: tokens minted under the day
/// are still alive, so a key retired now stays published until the longest of them expires.
#[tokio::test]
async fn a_key_retired_after_the_token_lifetime_was_lowered_stays_for_the_longest_tokens() {
    let db = db("lifecycle-ttl-lowered").await;
    let (store, enc) = (&db.store, enc());
    let t0 = UnixTime(1_800_000_000);
    let first = first_active(store, &enc, t0).await;
    let day = Duration::from_secs(86_400);
    crate::domain::revocation::note_token_ttl(store, day)
        .await
        .unwrap();
    signing::rotate(
        store,
        &enc,
        Algorithm::EdDsa,
        t0,
        Duration::from_secs(300),
        "test",
    )
    .await
    .unwrap();
    let now_ttl = Duration::from_secs(600);
    assert!(
        signing::maintain(store, &enc, UnixTime(t0.0 + 302), now_ttl)
            .await
            .unwrap()
    );
    let retired = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid == first)
        .unwrap();
    assert_eq!(retired.state, SigningKeyState::Retired);
    // The day, the propagation bound (5 s) and the verifiers' leeway (300 s); not 600 s.
    assert_eq!(
        retired.remove_after,
        Some(crate::domain::unix(UnixTime(t0.0 + 302 + 86_400 + 5 + 300)))
    );
}
