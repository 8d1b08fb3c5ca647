//! The summary of a copy, for the summary line and the audit record.

use std::fmt;

/// What was copied, for the summary line and the audit record.
#[derive(Debug, PartialEq, Eq)]
pub struct Copied {
    pub(super) audit: u64,
    pub(super) usage: u64,
    pub(super) signing_keys: usize,
    pub(super) keys: usize,
    pub(super) revoked_keys: usize,
    pub(super) revocations: usize,
    pub(super) scopes: usize,
    pub(super) settings: usize,
    pub(super) serial: Option<i64>,
}

impl fmt::Display for Copied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |count: usize, one: &str, many: &str| {
            format!("{count} {}", if count == 1 { one } else { many })
        };
        write!(
            f,
            "{}, {} ({} revoked), {}, {}, {}, ",
            n(self.signing_keys, "signing key", "signing keys"),
            n(self.keys, "API key", "API keys"),
            self.revoked_keys,
            n(self.revocations, "revocation entry", "revocation entries"),
            n(self.scopes, "scope", "scopes"),
            n(self.settings, "setting", "settings"),
        )?;
        match self.serial {
            Some(s) => write!(f, "the revocation list at serial {s}, ")?,
            None => write!(f, "no revocation list yet, ")?,
        }
        write!(f, "{} audit records, {} usage rows", self.audit, self.usage)
    }
}
