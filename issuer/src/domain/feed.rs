//! The change feed's retention. Every admin change adds a row that running servers read within a
//! second or so; after that a row is only needed by a server that was cut off from the database
//! (or a stored revocation list that was signed before it), and both notice a pruned gap and read
//! everything again (`Store::changes_since`, `Store::list_changed_since`). Without pruning the
//! table would grow by a row per admin change for as long as the database lives.

use std::time::Duration;

use keymint_jwks::UnixTime;

use crate::domain::usage::{PRUNE_BATCH, in_batches};
use crate::domain::{DomainError, unix};
use crate::store::Store;

/// How long a change stays in the feed: a day, far beyond any reader that is still connected
/// (they read within a second), so only a server cut off for a day reloads everything.
pub const FEED_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// Deletes the changes made before `now - FEED_RETENTION`, oldest first, in batches, never the
/// newest change; how many went.
pub async fn prune<S: Store>(store: &S, now: UnixTime) -> Result<u64, DomainError> {
    let cutoff =
        unix(now).saturating_sub(i64::try_from(FEED_RETENTION.as_secs()).unwrap_or(i64::MAX));
    in_batches(PRUNE_BATCH, || store.prune_changes(cutoff, PRUNE_BATCH)).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::{AuditRecord, SqliteStore, Visibility};

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 24 * 3600;

    #[tokio::test]
    async fn changes_older_than_a_day_are_pruned_and_the_newest_always_stays() {
        let dir = std::env::temp_dir().join(format!("keymint-feed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let s = SqliteStore::open(&dir.join("db")).await.unwrap();
        // A day and a second old, exactly a day old, and an hour old.
        for (n, at) in [NOW - DAY - 1, NOW - DAY, NOW - 3600]
            .into_iter()
            .enumerate()
        {
            let audit = AuditRecord {
                at,
                action: "scope.put".into(),
                outcome: "ok".into(),
                ..AuditRecord::default()
            };
            let scope = keymint_jwks::Scope::new(format!("s{n}")).unwrap();
            s.put_scope(&scope, Visibility::Private, &audit)
                .await
                .unwrap();
        }
        assert_eq!(prune(&s, UnixTime(NOW.unsigned_abs())).await.unwrap(), 1);
        assert_eq!(s.changes_since(0).await.unwrap().changes.len(), 2);
        // A year on, everything is past the retention but the newest change stays.
        assert_eq!(
            prune(&s, UnixTime((NOW + 365 * DAY).unsigned_abs()))
                .await
                .unwrap(),
            1
        );
        let left = s.changes_since(0).await.unwrap();
        assert_eq!(left.changes.len(), 1);
        assert_eq!(left.changes[0].id, s.last_change().await.unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
