//! How far this server's clock is from the database server's, on Postgres: checked at start and
//! every ten minutes, published as `keymint_clock_offset_seconds` and warned about past the
//! signing-key activation margin. Replicas promote a *next* signing key when their own clock
//! reaches its activation time, and `signing-keys rotate` sets that time from the clock of the
//! host it runs on: a clock a few seconds ahead starts signing with a key verifiers may not have
//! fetched yet (an unknown `kid` during a planned rotation), and tokens it dates ahead are refused
//! as issued in the future. Nothing else would show it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::domain::signing::ACTIVATION_MARGIN;
use crate::store::Store;

/// How often the offset is measured again.
pub(super) const CHECK_EVERY: Duration = Duration::from_secs(600);

/// Measures the offset (the database's clock minus this server's, in seconds: positive when this
/// server is behind), publishes it and warns when it is too large. `None` on SQLite (one clock)
/// or when the database does not answer.
pub(super) async fn check<S: Store>(store: &S) -> Option<f64> {
    // The database read its clock somewhere within the round trip: compare with its middle, from
    // the quickest of a few round trips (the first may include opening a connection, or waiting
    // for one from a busy pool).
    let mut best: Option<(f64, f64)> = None;
    for _ in 0..3 {
        let before = local_now();
        let db = match store.database_clock().await {
            Ok(Some(db)) => db,
            Ok(None) => return None,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the database's clock");
                return None;
            }
        };
        let after = local_now();
        let sample = (after - before, db - (before + after) / 2.0);
        if best.is_none_or(|(trip, _)| sample.0 < trip) {
            best = Some(sample);
        }
    }
    let (_, offset) = best?;
    metrics::gauge!("keymint_clock_offset_seconds").set(offset);
    if let Some(why) = judge(offset) {
        tracing::warn!(offset_seconds = offset, "{why}");
    }
    Some(offset)
}

/// What is wrong with an offset this large, if anything.
pub(super) fn judge(offset: f64) -> Option<&'static str> {
    if offset.abs() <= ACTIVATION_MARGIN.as_secs_f64() {
        return None;
    }
    Some(if offset > 0.0 {
        "this server's clock is behind the database's by more than the signing-key activation \
         margin: keys it rotates activate late, and verifiers may refuse the tokens of faster \
         replicas as issued in the future; fix time synchronisation (NTP) on this host"
    } else {
        "this server's clock is ahead of the database's by more than the signing-key activation \
         margin: it starts signing with a new key before verifiers may have fetched it, and \
         verifiers may refuse its tokens as issued in the future; fix time synchronisation (NTP) \
         on this host"
    })
}

fn local_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_offset_within_the_activation_margin_is_fine_and_beyond_it_is_named() {
        assert_eq!(judge(0.0), None);
        assert_eq!(judge(2.0), None);
        assert_eq!(judge(-2.0), None);
        assert!(judge(2.5).is_some_and(|w| w.contains("behind")));
        assert!(judge(-2.5).is_some_and(|w| w.contains("ahead")));
    }

    #[tokio::test]
    async fn sqlite_has_no_other_clock() {
        let dir = std::env::temp_dir().join(format!("keymint-clock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = crate::store::SqliteStore::open(&dir.join("db"))
            .await
            .unwrap();
        assert_eq!(check(&store).await, None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn postgres_on_this_machine_shares_its_clock() {
        let url = crate::store::tests::fresh_pg_database().await;
        let store = crate::store::PgStore::connect(&url).await.unwrap();
        let offset = check(&store).await.expect("Postgres tells its clock");
        assert!(judge(offset).is_none(), "offset {offset} s on one machine");
    }
}
