//! The change feed on both backends: order, paging past other changes, pruning, and Postgres waking a waiting watcher.

use super::*;

both_backends!(
    the_change_feed_is_ordered_and_resumable,
    a_list_change_behind_more_than_a_page_of_other_changes_is_seen,
    the_change_feed_prunes_a_prefix_and_its_readers_see_the_gap,
);

/// Found in review: the issuer decided whether to re-sign the list by reading one page of the
/// feed after the list's `as_of`; behind more than a page of key and scope changes a revocation
/// went unseen, and the list was re-signed only by its timer, hours later.
async fn a_list_change_behind_more_than_a_page_of_other_changes_is_seen(s: &impl Store) {
    let start = s.last_change().await.unwrap();
    for n in 0..=crate::store::FEED_PAGE {
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
        crate::store::FEED_PAGE,
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

/// A client that hung (or died) inside a transaction holding the change lock: without session
/// limits every write in the cluster waited for it until its TCP connection was declared dead,
/// hours with the OS defaults. Now a write gives up after the lock timeout (5 s) with
/// `Unavailable`, and writes work again once the holder is gone.
#[tokio::test]
async fn a_write_behind_a_stuck_holder_of_the_change_lock_fails_within_seconds_on_postgres() {
    use sqlx::Connection as _;
    use std::time::Duration;
    let url = fresh_pg_database().await;
    let store = PgStore::connect(&url).await.unwrap();
    let mut stuck = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut stuck).await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(super::super::postgres::CHANGES_LOCK)
        .execute(&mut stuck)
        .await
        .unwrap();
    let (scope, first) = (scope_of("behind-a-stuck-lock"), audit("scope.put", 1));
    let write = store.put_scope(&scope, Visibility::Private, &first);
    let answer = tokio::time::timeout(Duration::from_secs(60), write)
        .await
        .expect("the write waited on the stuck holder for a minute");
    assert!(
        matches!(answer, Err(crate::store::StoreError::Unavailable(_))),
        "{answer:?}"
    );
    drop(stuck);
    store
        .put_scope(
            &scope_of("behind-a-stuck-lock"),
            Visibility::Private,
            &audit("scope.put", 2),
        )
        .await
        .expect("writes work again once the holder is gone");
}
