//! The incident question, answered in one call: where was this key used from, how often, and
//! what was refused.

use std::time::Duration;

use keymint_jwks::{ApiKeyId, UnixTime};

use super::tally::BUCKET;
use crate::domain::refusal::Missing;
use crate::domain::{DomainError, unix};
use crate::store::{Store, UsageLine};

/// How far back a report looks when not told.
pub const DEFAULT_SINCE: Duration = Duration::from_secs(7 * 24 * 3600);
/// The most lines a report holds (the largest counts first).
pub const MAX_LINES: i64 = 1_000;
/// The most lines read to count the totals. A key keeps at most
/// [`PER_KEY_KINDS`](super::PER_KEY_KINDS) kinds apart an hour, so this covers a month of a key
/// used from a different set of clients every hour; beyond it the totals are lower bounds.
const MAX_COUNTED: i64 = 50_000;

/// A key's usage over a period.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct KeyUsage {
    /// The key.
    #[schema(value_type = String)]
    pub key_id: ApiKeyId,
    /// The start of the period (Unix seconds): the start of the hour the asked time falls in,
    /// since usage is counted per hour.
    pub since: i64,
    /// Tokens issued in the period.
    pub granted: i64,
    /// Requests refused in the period.
    pub refused: i64,
    /// Per client network, origin, action, outcome and reason, the largest counts first. A
    /// client `other` holds the uses beyond the key's share of distinct clients in an hour.
    pub lines: Vec<UsageLine>,
    /// Whether there were more lines than [`MAX_LINES`]; the totals count those too.
    pub truncated: bool,
}

/// `key_id`'s usage from `since` on. [`DomainError::NotFound`] for a key that does not exist.
pub async fn key_usage<S: Store>(
    store: &S,
    key_id: &ApiKeyId,
    since: UnixTime,
) -> Result<KeyUsage, DomainError> {
    if store.key(key_id).await?.is_none() {
        return Err(DomainError::NotFound(Missing::Key(key_id.clone())));
    }
    let since = unix(since);
    let since = since - since.rem_euclid(BUCKET);
    let mut lines = store.usage(key_id.as_str(), since, MAX_COUNTED).await?;
    let total = |outcome: &str| -> i64 {
        lines
            .iter()
            .filter(|l| l.outcome == outcome)
            .map(|l| l.count)
            .sum()
    };
    let (granted, refused) = (total("granted"), total("refused"));
    let truncated = i64::try_from(lines.len()).unwrap_or(i64::MAX) > MAX_LINES;
    lines.truncate(usize::try_from(MAX_LINES).unwrap_or(usize::MAX));
    Ok(KeyUsage {
        key_id: key_id.clone(),
        since,
        granted,
        refused,
        lines,
        truncated,
    })
}
