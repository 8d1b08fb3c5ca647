//! `--audit-retention`: stored audit rows and usage rollups older than the retention go, in small
//! batches, so the database never holds the write lock for long (SQLite has one writer at a
//! time: a long delete would stall every admin change and every usage flush behind it).

use std::time::Duration;

use keymint_jwks::UnixTime;

use super::tally::BUCKET;
use crate::domain::{DomainError, unix};
use crate::store::Store;

/// The default retention: 90 days, a quarter's worth of incident history.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);
/// Rows deleted per statement. On SQLite one batch of 1,000 holds the write lock for a few
/// milliseconds (measured in docs/operations.md).
pub const PRUNE_BATCH: i64 = 1_000;
/// The pause between two batches, in which other writers take the lock.
const BETWEEN_BATCHES: Duration = Duration::from_millis(20);

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Audit rows.
    pub audit: u64,
    /// Usage rollup rows.
    pub usage: u64,
}

/// Deletes audit rows from before `now - retention` and the usage rows of hours that ended
/// before it, [`PRUNE_BATCH`] rows at a time, until none is left.
pub async fn prune<S: Store>(
    store: &S,
    now: UnixTime,
    retention: Duration,
) -> Result<Pruned, DomainError> {
    let cutoff = unix(now).saturating_sub(i64::try_from(retention.as_secs()).unwrap_or(i64::MAX));
    // An hour is kept while any second of it is within the retention.
    let bucket_cutoff = cutoff - cutoff.rem_euclid(BUCKET);
    Ok(Pruned {
        audit: in_batches(|| store.prune_audit(cutoff, PRUNE_BATCH)).await?,
        usage: in_batches(|| store.prune_usage(bucket_cutoff, PRUNE_BATCH)).await?,
    })
}

/// Runs `batch` (a delete of at most [`PRUNE_BATCH`] rows that says how many went) until a batch
/// comes back short, pausing between batches; the total deleted.
pub(crate) async fn in_batches<F, Fut>(mut batch: F) -> Result<u64, DomainError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::store::StoreResult<u64>>,
{
    let mut total = 0;
    loop {
        let n = batch().await?;
        total += n;
        if n < PRUNE_BATCH.unsigned_abs() {
            return Ok(total);
        }
        tokio::time::sleep(BETWEEN_BATCHES).await;
    }
}
