//! The domain's one error enum. The HTTP layer maps it to statuses in one place.

use std::time::Duration;

use super::refusal::{
    AdminAuthRefusal, ClientRefusal, ConflictReason, DpopRefusal, InvalidInput, Missing,
    RequestRefusal, ScanRefusal, ScopeRefusal, TargetRefusal,
};
use crate::store::StoreError;

/// What went wrong in a domain operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// Unknown, malformed, wrong, revoked or expired key: one answer for all, so that a caller
    /// learns nothing about which (RFC 6749 `invalid_client`).
    #[error("client authentication failed")]
    InvalidClient {
        /// The real reason, for the audit log and metrics only.
        reason: ClientFailure,
    },
    /// Scopes beyond the key's, or not public for a publishable key (`invalid_scope`).
    #[error(transparent)]
    InvalidScope(ScopeRefusal),
    /// An audience the key does not have, or none named for a key with several (`invalid_target`).
    #[error(transparent)]
    InvalidTarget(TargetRefusal),
    /// A malformed request (`invalid_request`).
    #[error(transparent)]
    InvalidRequest(RequestRefusal),
    /// The DPoP proof is bad, stale, replayed or does not match (`invalid_dpop_proof`, RFC 9449 §5).
    #[error(transparent)]
    InvalidDpopProof(DpopRefusal),
    /// The client IP or origin is not allowed for this key (`unauthorized_client`).
    #[error(transparent)]
    UnauthorizedClient(ClientRefusal),
    /// Over a rate limit.
    #[error("rate limit exceeded")]
    RateLimited {
        /// When to try again.
        retry_after: Duration,
    },
    /// An admin API call without a valid admin token (401).
    #[error("admin authentication required: {0}")]
    AdminUnauthenticated(AdminAuthRefusal),
    /// A valid admin token without the scope the call needs (403).
    #[error("this call needs the {needed} scope")]
    AdminForbidden {
        /// The scope needed.
        needed: &'static str,
    },
    /// A secret-scanning report refused before anything in it was looked at (401; 404 when
    /// reports are not enabled).
    #[error(transparent)]
    ReportRefused(ScanRefusal),
    /// An admin command named something that does not exist.
    #[error("{0} not found")]
    NotFound(Missing),
    /// An admin command with an invalid argument.
    #[error(transparent)]
    Invalid(InvalidInput),
    /// A conflicting state (e.g. a rotation already in progress).
    #[error(transparent)]
    Conflict(ConflictReason),
    /// The database is unavailable: try again.
    #[error("the database is unavailable")]
    Unavailable(#[source] StoreError),
    /// The issuer's own revocation list is past its `exp`: it could not be re-signed, which takes
    /// the database. Admin tokens are checked against it, so admin calls wait: try again.
    #[error(
        "the issuer's own revocation list is past its time: it is re-signed once the database \
         answers"
    )]
    OwnListExpired,
    /// Stored data that does not decode (the store's error, with its cause, underneath).
    #[error(transparent)]
    Corrupt(StoreError),
    /// Something that should not happen (a crypto failure, a broken invariant).
    #[error("internal error: {0}")]
    Internal(Fault),
}

/// What failed inside the issuer, and the error under it when there is one (kept whole as the
/// `source()`, so the log line carries the chain). A client only ever reads "internal error".
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct Fault {
    what: std::borrow::Cow<'static, str>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Fault {
    /// A broken invariant, said in words.
    pub fn new(what: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Self {
            what: what.into(),
            source: None,
        }
    }

    /// `what` failed, because of `source`.
    pub fn because(
        what: impl Into<std::borrow::Cow<'static, str>>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            what: what.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// An error with every cause under it, `outer: inner: …`, for a log line or a command's last
/// word (a 5xx body never carries it). A cause the message already ends with (many errors, ours
/// and our dependencies', say their source in their own message too) is not repeated.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut line = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(c) = cause {
            let said = c.to_string();
            if !line.ends_with(&said) {
                line.push_str(": ");
                line.push_str(&said);
            }
            cause = c.source();
        }
        f.write_str(&line)
    }
}

#[cfg(test)]
mod chain_tests {
    use super::Chain;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct Says {
        path: &'static str,
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot start")]
    struct Wraps(#[source] Says);

    #[test]
    fn a_cause_the_message_already_states_is_not_repeated_but_others_are_added() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let says = Says {
            path: "/data",
            source: io(),
        };
        assert_eq!(Chain(&says).to_string(), "/data: no such file");
        let wraps = Wraps(Says {
            path: "/data",
            source: io(),
        });
        assert_eq!(
            Chain(&wraps).to_string(),
            "cannot start: /data: no such file"
        );
    }
}

/// Why client authentication failed. The client always hears only `invalid_client`; the audit
/// log and the refusal metrics get the real reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientFailure {
    /// No key in any accepted place.
    NoCredentials,
    /// HTTP Basic credentials that do not decode.
    MalformedBasic,
    /// `client_id` is not the key ID inside the presented key.
    ClientIdMismatch,
    /// Not a keymint key at all.
    MalformedKey,
    /// The key's CRC32 does not match: mistyped or made up.
    ChecksumMismatch,
    /// No such key ID.
    UnknownKey,
    /// The key ID exists, the secret is wrong.
    WrongSecret,
    /// A secret key presented as publishable (or live as test), or the other way round.
    KindOrEnvMismatch,
    /// The key is revoked.
    RevokedKey,
    /// The key has expired (or has no lifetime left for a token).
    ExpiredKey,
}

impl ClientFailure {
    /// The reason as the audit log words it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoCredentials => "no credentials",
            Self::MalformedBasic => "malformed Basic credentials",
            Self::ClientIdMismatch => "client_id does not match the key",
            Self::MalformedKey => "malformed key",
            Self::ChecksumMismatch => "checksum mismatch",
            Self::UnknownKey => "unknown key",
            Self::WrongSecret => "wrong secret",
            Self::KindOrEnvMismatch => "kind or environment mismatch",
            Self::RevokedKey => "revoked key",
            Self::ExpiredKey => "expired key",
        }
    }

    /// The `reason` label of `keymint_tokens_refused_total`: a small, fixed set.
    pub fn metric_code(self) -> &'static str {
        match self {
            Self::MalformedKey => "malformed_key",
            Self::ChecksumMismatch => "checksum_mismatch",
            Self::UnknownKey => "unknown_key",
            Self::WrongSecret => "wrong_secret",
            Self::RevokedKey => "revoked_key",
            Self::ExpiredKey => "expired_key",
            Self::NoCredentials
            | Self::MalformedBasic
            | Self::ClientIdMismatch
            | Self::KindOrEnvMismatch => "invalid_client",
        }
    }
}

impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        metrics::counter!("keymint_database_errors_total").increment(1);
        match e {
            corrupt @ StoreError::Corrupt(_) => Self::Corrupt(corrupt),
            other => Self::Unavailable(other),
        }
    }
}
