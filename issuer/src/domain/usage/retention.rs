//! `--audit-retention`: stored audit rows and usage rollups older than the retention go, and so do
//! keys revoked or expired longer ago than it once no usage row names them (otherwise the key
//! table would grow with every rotation for as long as the server runs; a dead key that clients
//! still present keeps its rollups of refusals, and is kept for `keys usage` and leak reports).
//! In small batches, so the database never holds the write lock for long (SQLite has one writer
//! at a time: a long delete would stall every admin change and every usage flush behind it).

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
/// Keys deleted per statement: a key row is in five indexes, and 1,000 of them spread over a large
/// table took about 50 ms on SQLite (with 300,000 keys, half of them dead), 250 take a quarter.
pub const KEY_PRUNE_BATCH: i64 = 250;
/// The pause between two batches, in which other writers take the lock.
const BETWEEN_BATCHES: Duration = Duration::from_millis(20);

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Audit rows.
    pub audit: u64,
    /// Usage rollup rows.
    pub usage: u64,
    /// Keys revoked or expired before the retention.
    pub keys: u64,
}

/// Deletes audit rows from before `now - retention`, the usage rows of hours that ended before it
/// and the keys revoked or expired before it (no usage row naming them), [`PRUNE_BATCH`] rows
/// ([`KEY_PRUNE_BATCH`] keys) at a time, until none is left.
pub async fn prune<S: Store>(
    store: &S,
    now: UnixTime,
    retention: Duration,
) -> Result<Pruned, DomainError> {
    let cutoff = unix(now).saturating_sub(i64::try_from(retention.as_secs()).unwrap_or(i64::MAX));
    // An hour is kept while any second of it is within the retention.
    let bucket_cutoff = cutoff - cutoff.rem_euclid(BUCKET);
    Ok(Pruned {
        audit: in_batches(PRUNE_BATCH, || store.prune_audit(cutoff, PRUNE_BATCH)).await?,
        usage: in_batches(PRUNE_BATCH, || {
            store.prune_usage(bucket_cutoff, PRUNE_BATCH)
        })
        .await?,
        keys: in_batches(KEY_PRUNE_BATCH, || {
            store.prune_keys(cutoff, KEY_PRUNE_BATCH)
        })
        .await?,
    })
}

/// Runs `batch` (a delete of at most `size` rows that says how many went) until a batch comes
/// back short, pausing between batches; the total deleted.
pub(crate) async fn in_batches<F, Fut>(size: i64, mut batch: F) -> Result<u64, DomainError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::store::StoreResult<u64>>,
{
    let mut total = 0;
    loop {
        let n = batch().await?;
        total += n;
        if n < size.unsigned_abs() {
            return Ok(total);
        }
        tokio::time::sleep(BETWEEN_BATCHES).await;
    }
}
