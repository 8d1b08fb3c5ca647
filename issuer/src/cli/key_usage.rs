//! `keymint keys usage`: where and how a key was used, from its usage rollups.

use std::time::Duration;

use keymint_jwks::UnixTime;

use super::{duration, print_json};
use crate::domain::usage;

/// `--since`: a duration back from now, or a Unix time.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Since {
    /// This long before now.
    Ago(Duration),
    /// This Unix time.
    At(UnixTime),
}

impl Since {
    pub(super) fn at(self, now: UnixTime) -> UnixTime {
        match self {
            Self::Ago(d) => UnixTime(now.as_secs().saturating_sub(d.as_secs())),
            Self::At(t) => t,
        }
    }
}

pub(super) fn since(s: &str) -> Result<Since, String> {
    match s.parse::<u64>() {
        Ok(t) => Ok(Since::At(UnixTime(t))),
        Err(_) => duration(s).map(Since::Ago),
    }
}

pub(super) fn print_usage(r: &usage::KeyUsage, json: bool) {
    if json {
        print_json(&serde_json::to_value(r).unwrap_or_default());
        return;
    }
    say!(
        "key {} since {}: {} granted, {} refused",
        r.key_id,
        super::when::when(r.since),
        r.granted,
        r.refused
    );
    say!(
        "{:<40} {:<30} {:<12} {:<8} {:<20} {:>10}  LAST SEEN",
        "CLIENT",
        "ORIGIN",
        "ACTION",
        "OUTCOME",
        "REASON",
        "COUNT"
    );
    for l in &r.lines {
        say!(
            "{:<40} {:<30} {:<12} {:<8} {:<20} {:>10}  {}",
            l.client,
            if l.origin.is_empty() { "-" } else { &l.origin },
            l.action,
            l.outcome,
            if l.reason.is_empty() { "-" } else { &l.reason },
            l.count,
            super::when::when(l.last_seen)
        );
    }
    if r.truncated {
        say!("(only the {} largest lines are shown)", usage::MAX_LINES);
    }
}
