//! What a migration is doing, in steps that name the part of the database they touch: a store
//! error says what failed, the step says during what.

use std::fmt;

/// A part of the database, as a [`Step`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The change feed's position.
    ChangeFeed,
    /// The audit history.
    AuditRecords,
    /// The usage rollups.
    UsageRollups,
    /// The API keys.
    ApiKeys,
    /// The signing keys.
    SigningKeys,
    /// The revocation entries in force.
    Revocations,
    /// The scopes.
    Scopes,
    /// The tenants' policies.
    TenantPolicies,
    /// The server settings.
    Settings,
    /// The newest signed revocation list.
    RevocationList,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ChangeFeed => "the change feed",
            Self::AuditRecords => "the audit records",
            Self::UsageRollups => "the usage rollups",
            Self::ApiKeys => "the API keys",
            Self::SigningKeys => "the signing keys",
            Self::Revocations => "the revocations",
            Self::Scopes => "the scopes",
            Self::TenantPolicies => "the tenant policies",
            Self::Settings => "the settings",
            Self::RevocationList => "the revocation list",
        })
    }
}

/// What a [`Migration`](super::Migration) is doing, kept up to date so that a failure can be told with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing yet.
    Starting,
    /// Reading a part of the source.
    Reading(Part),
    /// Checking that the target holds nothing.
    CheckingTarget,
    /// Writing a part to the target.
    Writing(Part),
    /// Comparing the source with the snapshot, to tell whether it changed during the copy.
    Rereading,
    /// Writing the migration's own audit record to the target.
    Recording,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Starting => f.write_str("starting"),
            Self::Reading(part) => write!(f, "reading {part} from the source"),
            Self::CheckingTarget => f.write_str("checking that the target is empty"),
            Self::Writing(Part::Revocations) => {
                f.write_str("writing the revocation entries to the target")
            }
            Self::Writing(part) => write!(f, "writing {part} to the target"),
            Self::Rereading => f.write_str("re-reading the source"),
            Self::Recording => f.write_str("writing the audit record to the target"),
        }
    }
}
