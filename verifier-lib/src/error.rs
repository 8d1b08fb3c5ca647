//! The verifier's errors: one enum for "this token is not acceptable", one for access policy, one
//! for building and one for updating the sources.

use std::time::Duration;

use keymint_jwks::{
    Algorithm, IdError, JwksError, Kid, RevocationListError, RevocationTarget, Scope, TenantId,
    UnixTime,
};

/// Why a token was not accepted. Messages never contain the token; values taken from a token
/// (an `alg`, a `typ`, a `kid`) are cut short.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Longer than the configured maximum; refused before any parsing.
    #[error("token is {len} bytes, the limit is {max}")]
    Oversize {
        /// Token length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a compact JWS: wrong segment count, bad base64url, a header or payload that is not a
    /// JSON object.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// A JSON object in the token repeats a member name.
    #[error("token JSON repeats the member {member:?}")]
    DuplicateMember {
        /// The repeated name (cut short).
        member: String,
    },
    /// The header carries a member that would point the verifier at a key (`jku`, `jwk`, `x5u`,
    /// `x5c`); keymint never follows them.
    #[error("token header member `{0}` is not accepted")]
    ForbiddenHeader(&'static str),
    /// The header has a `crit` extension this verifier does not understand.
    #[error("token header has an unsupported critical extension")]
    UnknownCritical,
    /// `typ` is missing or is not `at+jwt` / `application/at+jwt`.
    #[error("token `typ` is {found:?}, `at+jwt` expected")]
    WrongType {
        /// The `typ` header, if any (cut short).
        found: Option<String>,
    },
    /// The header has no `kid`.
    #[error("token header has no `kid`")]
    MissingKid,
    /// No key in the key set has this `kid`.
    #[error("no key with kid {kid:?}")]
    UnknownKid {
        /// The token's `kid` (cut short).
        kid: String,
    },
    /// `alg` names no algorithm keymint accepts (`none`, `HS256`, ...).
    #[error("token `alg` {alg:?} is not accepted")]
    UnsupportedAlgorithm {
        /// The `alg` header (cut short).
        alg: String,
    },
    /// `alg` names an algorithm other than the one the key is pinned to.
    #[error("token `alg` {alg:?} does not match its key ({expected})")]
    AlgorithmMismatch {
        /// The `alg` header.
        alg: String,
        /// The key's algorithm.
        expected: Algorithm,
    },
    /// The signature does not verify.
    #[error("token signature does not verify")]
    BadSignature,
    /// A required claim is missing.
    #[error("token claim `{0}` is missing")]
    MissingClaim(&'static str),
    /// A claim has an unacceptable value.
    #[error("token claim `{claim}` is invalid: {reason}")]
    InvalidClaim {
        /// The claim.
        claim: &'static str,
        /// Why.
        reason: String,
    },
    /// `iss` is not the expected issuer.
    #[error("token issuer is not the expected issuer")]
    WrongIssuer,
    /// `aud` is not one of the accepted audiences.
    #[error("token audience is not accepted here")]
    WrongAudience,
    /// `exp` (plus leeway) has passed.
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: UnixTime,
        /// The verifier's clock.
        now: UnixTime,
    },
    /// `nbf` (minus leeway) has not come yet.
    #[error("token is not valid before {nbf} (now {now})")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: UnixTime,
        /// The verifier's clock.
        now: UnixTime,
    },
    /// `iat` is later than now plus leeway.
    #[error("token claims to be issued at {iat}, in the future (now {now})")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: UnixTime,
        /// The verifier's clock.
        now: UnixTime,
    },
    /// The token is bound to a DPoP key (`cnf.jkt`): presented as a plain bearer token, without a
    /// proof of that key, it is refused (RFC 9449 §7.1), so a token copied out of a browser is
    /// useless.
    #[error("token is bound to a DPoP key and was presented without a proof")]
    SenderConstrained,
    /// The DPoP proof is missing, invalid, replayed, or does not match the request or the token's
    /// key (RFC 9449 §7.1 `invalid_dpop_proof`).
    #[error("invalid DPoP proof: {0}")]
    InvalidDpopProof(String),
    /// This server requires a DPoP nonce; retry with the given one (`use_dpop_nonce`).
    #[error("a DPoP nonce is required")]
    UseDpopNonce {
        /// The nonce to put in the next proof (sent as the `DPoP-Nonce` header).
        nonce: String,
    },
    /// The token's key (`sub`) or its DPoP key already holds its whole share of the replay cache
    /// in live proofs: it alone is refused (HTTP 429 with `Retry-After`).
    #[error("too many live DPoP proofs for this key; retry in {retry_after_secs} s")]
    DpopProofQuota {
        /// Seconds until room is expected.
        retry_after_secs: u64,
    },
    /// The DPoP replay cache is full of live proofs; new proofs are refused rather than risking a
    /// replay (HTTP 503).
    #[error("DPoP replay cache is full")]
    DpopReplayCacheFull,
    /// A revocation list entry covers the token.
    #[error("token is revoked ({} {})", .0.kind(), .0.id())]
    Revoked(RevocationTarget),
    /// The verifier has no revocation list, so it cannot vouch for any token.
    #[error("no revocation list is loaded; refusing every token")]
    NoRevocationList,
    /// The key set is older than the configured maximum without a successful refresh (or was never
    /// loaded), so the verifier cannot vouch for any token.
    #[error("the key set could not be refreshed for too long; refusing every token")]
    SourcesUnavailable {
        /// When the key set was last fetched successfully, if ever.
        last_refresh: Option<UnixTime>,
    },
    /// The newest revocation list has expired, so the verifier cannot vouch for any token.
    #[error("the revocation list expired at {exp} (now {now}); refusing every token")]
    RevocationListExpired {
        /// The list's signed `exp`.
        exp: UnixTime,
        /// The verifier's clock.
        now: UnixTime,
    },
}

impl VerifyError {
    /// True when the verifier itself cannot vouch for anything (no fresh revocation list): the
    /// client's token is not at fault, and an HTTP server answers 503 rather than 401.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::NoRevocationList
                | Self::RevocationListExpired { .. }
                | Self::SourcesUnavailable { .. }
                | Self::DpopReplayCacheFull
        )
    }

    /// A stable machine-readable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Oversize { .. } => "oversize",
            Self::Malformed(_) => "malformed",
            Self::DuplicateMember { .. } => "duplicate_member",
            Self::ForbiddenHeader(_) => "forbidden_header",
            Self::UnknownCritical => "unknown_crit",
            Self::WrongType { .. } => "wrong_typ",
            Self::MissingKid => "missing_kid",
            Self::UnknownKid { .. } => "unknown_kid",
            Self::UnsupportedAlgorithm { .. } => "unsupported_alg",
            Self::AlgorithmMismatch { .. } => "alg_mismatch",
            Self::BadSignature => "bad_signature",
            Self::MissingClaim(_) => "missing_claim",
            Self::InvalidClaim { .. } => "invalid_claim",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::IssuedInFuture { .. } => "iat_in_future",
            Self::SenderConstrained => "dpop_bound",
            Self::InvalidDpopProof(_) => "invalid_dpop_proof",
            Self::UseDpopNonce { .. } => "use_dpop_nonce",
            Self::DpopProofQuota { .. } => "dpop_proof_quota",
            Self::DpopReplayCacheFull => "dpop_replay_cache_full",
            Self::Revoked(_) => "revoked",
            Self::NoRevocationList => "no_revocation_list",
            Self::RevocationListExpired { .. } => "revocation_list_expired",
            Self::SourcesUnavailable { .. } => "sources_unavailable",
        }
    }
}

/// A verified token lacks what a route requires. HTTP: 403 (`insufficient_scope`), not 401: the
/// token is genuine, it just does not grant this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// Required scopes are missing from the token.
    #[error("token lacks the scope(s): {}", missing.iter().map(Scope::as_str).collect::<Vec<_>>().join(" "))]
    InsufficientScope {
        /// The scopes the token lacks.
        missing: Vec<Scope>,
    },
    /// The token belongs to another tenant.
    #[error("token belongs to tenant {found}, not {expected}")]
    WrongTenant {
        /// The tenant required.
        expected: TenantId,
        /// The token's tenant.
        found: TenantId,
    },
}

impl AccessError {
    /// A stable machine-readable code, shared with the Node and Python verifiers.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::WrongTenant { .. } => "wrong_tenant",
        }
    }
}

/// Why a verifier could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No key set was given.
    #[error("a key set is required: call .jwks(...) or .jwks_file(...)")]
    MissingKeys,
    /// The key set could not be read.
    #[error("reading the key set file {path}: {source}")]
    ReadKeys {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key set was refused.
    #[error("key set: {0}")]
    Keys(#[from] JwksError),
    /// The initial revocation list was refused.
    #[error("revocation list: {0}")]
    RevocationList(#[from] UpdateError),
    /// The leeway is larger than [`MAX_LEEWAY`](crate::MAX_LEEWAY).
    #[error("leeway of {0:?} is larger than the maximum of 5 minutes")]
    LeewayTooLarge(Duration),
    /// The revocation list validity cap is zero or above the format's cap,
    /// [`MAX_LIST_VALIDITY`](keymint_jwks::MAX_LIST_VALIDITY) (7 days), which keymint's issuer
    /// never exceeds.
    #[error("a revocation list validity cap of {0:?} is outside (0, 7 days]")]
    ListValidityCap(Duration),
    /// Live sources could not be set up.
    #[cfg(feature = "live")]
    #[error(transparent)]
    Live(#[from] crate::live::LiveError),
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Rng,
    /// The shared DPoP nonce secret is shorter than 32 bytes.
    #[error("the DPoP nonce secret has {len} bytes; at least 32 are needed")]
    NonceSecretTooShort {
        /// Its length.
        len: usize,
    },
    /// An identifier given to the builder was refused.
    #[error("{0}")]
    Id(#[from] IdError),
}

/// Why a new key set or revocation list was not installed. The previous one stays in force.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The list is not a valid signed list for this issuer and key set.
    #[error(transparent)]
    List(#[from] RevocationListError),
    /// The list has already expired.
    #[error("revocation list expired at {exp} (now {now})")]
    Expired {
        /// The list's `exp`.
        exp: UnixTime,
        /// The verifier's clock.
        now: UnixTime,
    },
    /// The list claims to be signed later than the verifier's clock plus the leeway. Accepted, it
    /// would also outlive every genuine list issued meanwhile (a later `iat` is what a newer list
    /// shows when the serial floor is dropped).
    #[error("revocation list claims to be issued at {iat}, later than now ({now}) plus the leeway")]
    IssuedInFuture {
        /// The list's `iat`.
        iat: UnixTime,
        /// The verifier's clock.
        now: UnixTime,
    },
    /// The list's validity (`exp - iat`) is longer than this verifier accepts: one list must not
    /// vouch for longer than the configured cap (7 days by default,
    /// [`MAX_LIST_VALIDITY`](keymint_jwks::MAX_LIST_VALIDITY)).
    #[error(
        "revocation list is valid from {iat} to {exp}, longer than the cap of {}s",
        max.as_secs()
    )]
    ValidityTooLong {
        /// The list's `iat`.
        iat: UnixTime,
        /// The list's `exp`.
        exp: UnixTime,
        /// The cap in force.
        max: Duration,
    },
    /// The key that signed the list in force is gone (out of the key set, or revoked), so its
    /// serial no longer binds; but the offered list was still issued before the one in force
    /// (by more than the leeway): an old list replayed.
    #[error(
        "revocation list issued at {offered_iat} is older than the list in force (issued at {current_iat})"
    )]
    IssuedBeforeInForce {
        /// The offered list's `iat`.
        offered_iat: UnixTime,
        /// The `iat` of the list in force.
        current_iat: UnixTime,
    },
    /// The list's serial is lower than the one in force: a rollback.
    #[error(
        "revocation list serial {offered} is lower than the current {current}: refusing a rollback"
    )]
    Rollback {
        /// The serial in force.
        current: u64,
        /// The serial offered.
        offered: u64,
    },
    /// Same serial as the list in force, different bytes.
    #[error("revocation list serial {serial} is already in force with different content")]
    SerialConflict {
        /// The serial.
        serial: u64,
    },
    /// The list is signed by a key that the list in force revokes: whoever holds a revoked
    /// (perhaps compromised) key must not be able to publish the list that would un-revoke it.
    #[error("revocation list is signed by {kid}, a key the list in force revokes")]
    SignedByRevokedKey {
        /// The `kid` the offered list is signed with.
        kid: Kid,
    },
}

impl UpdateError {
    /// A stable machine-readable code for logs, metrics and the conformance corpus
    /// (`tests/fixtures/conformance/README.md`), shared with the Node and Python verifiers.
    pub fn code(&self) -> &'static str {
        use keymint_jwks::jws::JwsError;
        use keymint_jwks::strict_json::JsonError;
        match self {
            Self::Read { .. } => "list_unreadable",
            Self::List(e) => match e {
                RevocationListError::Jws(j) => match j {
                    JwsError::Header(JsonError::DuplicateMember { .. }) => "list_duplicate_member",
                    JwsError::ForbiddenHeader(_) | JwsError::UnknownCritical => {
                        "list_forbidden_header"
                    }
                    JwsError::SignatureLength { .. } => "list_bad_signature",
                    _ => "list_malformed",
                },
                RevocationListError::Payload(JsonError::DuplicateMember { .. }) => {
                    "list_duplicate_member"
                }
                RevocationListError::Payload(_) => "list_malformed",
                RevocationListError::WrongType => "list_wrong_typ",
                RevocationListError::UnknownKid(_) => "list_unknown_kid",
                RevocationListError::AlgorithmMismatch => "list_alg_mismatch",
                RevocationListError::BadSignature => "list_bad_signature",
                RevocationListError::UnsupportedVersion(_) => "list_unsupported_version",
                RevocationListError::WrongIssuer { .. } => "list_wrong_issuer",
                RevocationListError::BadValidity { .. } => "list_bad_validity",
                _ => "list_malformed",
            },
            Self::Expired { .. } => "list_expired",
            Self::IssuedInFuture { .. } => "list_iat_in_future",
            Self::ValidityTooLong { .. } => "list_validity_too_long",
            Self::IssuedBeforeInForce { .. } => "list_replayed",
            Self::Rollback { .. } => "list_rollback",
            Self::SerialConflict { .. } => "list_serial_conflict",
            Self::SignedByRevokedKey { .. } => "list_signed_by_revoked_key",
        }
    }
}
