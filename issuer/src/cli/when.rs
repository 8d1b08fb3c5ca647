//! Times as the CLI's tables and messages print them: RFC 3339 in UTC, to the second
//! (`2027-03-01T12:00:00Z`), which an operator reads at a glance and `date -d` parses. `--json`
//! output keeps Unix seconds, as the admin API does.

use std::time::{Duration, UNIX_EPOCH};

/// Unix seconds `t` as RFC 3339 text. A time the format cannot hold (before 1970 or after 9999:
/// only a hand-edited database has one) is printed as the number it is, rather than failing the
/// whole listing.
pub(super) fn when(t: i64) -> String {
    u64::try_from(t)
        .ok()
        .filter(|&s| s <= LAST_SECOND_OF_9999)
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
        .map_or_else(
            || t.to_string(),
            |at| humantime::format_rfc3339_seconds(at).to_string(),
        )
}

/// humantime formats up to the end of year 9999 and returns an error beyond it.
const LAST_SECOND_OF_9999: u64 = 253_402_300_799;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_print_as_rfc3339_utc() {
        assert_eq!(when(0), "1970-01-01T00:00:00Z");
        assert_eq!(when(1_796_000_000), "2026-11-30T00:53:20Z");
        assert_eq!(when(253_402_300_799), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn a_time_the_format_cannot_hold_prints_as_its_number() {
        for t in [-1, 253_402_300_800, i64::MAX, i64::MIN] {
            assert_eq!(when(t), t.to_string());
        }
    }
}
