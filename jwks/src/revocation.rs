//! The signed revocation list (SPEC "Revocation"), documented for other languages in
//! `docs/revocation-list.md`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::jws::{Compact, JwsError, TYP_REVOCATION_LIST, typ_matches};
use crate::strict_json::{self, JsonError};
use crate::{ApiKeyId, Issuer, Jti, Jwks, Kid, TenantId, UnixTime};

/// How long an issuer replica may keep minting tokens after a revocation was committed, before it
/// has learnt of it. A `tenant` entry covers tokens issued before `revoked_at + PROPAGATION_BOUND`.
/// This is part of the list format: verifiers in every language use the same value.
pub const PROPAGATION_BOUND: Duration = Duration::from_secs(5);

/// The only list format version this crate reads and writes.
pub const LIST_VERSION: u32 = 1;

/// The longest validity (`exp - iat`) a list may have: 7 days. keymint's issuer refuses to sign a
/// longer one, and verifiers refuse it by default (they may be configured tighter). Without a cap,
/// one list signed with a far `exp` by a key that is later stolen or retired would vouch for years.
/// Part of the list format: verifiers in every language use the same value.
pub const MAX_LIST_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);

/// What one entry revokes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RevocationTarget {
    /// Every token minted with this API key (`sub`), whatever its `iat`.
    Key(ApiKeyId),
    /// The one token with this `jti`.
    Jti(Jti),
    /// Every token of this tenant issued before `revoked_at + PROPAGATION_BOUND`.
    Tenant(TenantId),
    /// Every token signed by this signing key.
    Kid(Kid),
}

impl RevocationTarget {
    /// The `kind` member: `key`, `jti`, `tenant` or `kid`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Key(_) => "key",
            Self::Jti(_) => "jti",
            Self::Tenant(_) => "tenant",
            Self::Kid(_) => "kid",
        }
    }

    /// The `id` member.
    pub fn id(&self) -> &str {
        match self {
            Self::Key(id) => id.as_str(),
            Self::Jti(id) => id.as_str(),
            Self::Tenant(id) => id.as_str(),
            Self::Kid(id) => id.as_str(),
        }
    }
}

/// One entry of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawEntry", into = "RawEntry")]
pub struct RevocationEntry {
    /// What is revoked.
    pub target: RevocationTarget,
    /// When the revocation was committed.
    pub revoked_at: UnixTime,
    /// After this instant no token the entry covers can still be alive, so the issuer drops it.
    pub drop_after: UnixTime,
}

#[derive(Serialize, Deserialize)]
struct RawEntry {
    kind: String,
    id: String,
    revoked_at: UnixTime,
    drop_after: UnixTime,
}

impl TryFrom<RawEntry> for RevocationEntry {
    type Error = String;
    fn try_from(raw: RawEntry) -> Result<Self, String> {
        let target = match raw.kind.as_str() {
            "key" => ApiKeyId::new(raw.id).map(RevocationTarget::Key),
            "jti" => Jti::new(raw.id).map(RevocationTarget::Jti),
            "tenant" => TenantId::new(raw.id).map(RevocationTarget::Tenant),
            "kid" => Kid::new(raw.id).map(RevocationTarget::Kid),
            // An unknown kind could revoke something this verifier would then fail to enforce:
            // refusing the list fails closed.
            _ => return Err("unknown revocation kind".into()),
        }
        .map_err(|e| e.to_string())?;
        Ok(Self {
            target,
            revoked_at: raw.revoked_at,
            drop_after: raw.drop_after,
        })
    }
}

impl From<RevocationEntry> for RawEntry {
    fn from(e: RevocationEntry) -> Self {
        Self {
            kind: e.target.kind().to_owned(),
            id: e.target.id().to_owned(),
            revoked_at: e.revoked_at,
            drop_after: e.drop_after,
        }
    }
}

/// The revocation list payload: `{v, iss, serial, iat, exp, entries}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationList {
    /// Format version, [`LIST_VERSION`].
    pub v: u32,
    /// The issuer that signed the list.
    pub iss: Issuer,
    /// Grows with every new list; verifiers refuse one that goes backwards.
    pub serial: u64,
    /// When the list was signed; freshness is measured from here, not from when it was fetched.
    pub iat: UnixTime,
    /// After this instant the list vouches for nothing and verifiers fail closed.
    pub exp: UnixTime,
    /// The revocations in force.
    pub entries: Vec<RevocationEntry>,
}

/// Why a signed revocation list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationListError {
    /// Not a compact JWS, or a bad header.
    #[error("revocation list: {0}")]
    Jws(#[from] JwsError),
    /// The `typ` header is not `keymint-revocations+jwt`.
    #[error("revocation list has the wrong `typ`")]
    WrongType,
    /// No key in the key set has the list's `kid`.
    #[error("revocation list is signed by unknown key {0}")]
    UnknownKid(String),
    /// The header's `alg` is not the algorithm of the key named by `kid`.
    #[error("revocation list `alg` does not match its key")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("revocation list signature does not verify")]
    BadSignature,
    /// The payload is not a valid list.
    #[error("revocation list payload: {0}")]
    Payload(JsonError),
    /// `v` is not a version this verifier reads.
    #[error("revocation list version {0} is not supported")]
    UnsupportedVersion(u32),
    /// The list was signed by another issuer.
    #[error("revocation list issuer {found:?} is not the expected issuer")]
    WrongIssuer {
        /// The `iss` of the list.
        found: String,
    },
    /// `exp` is not after `iat`.
    #[error("revocation list expires ({exp}) before it was issued ({iat})")]
    BadValidity {
        /// `iat`.
        iat: UnixTime,
        /// `exp`.
        exp: UnixTime,
    },
}

/// A revocation list together with the exact JWS bytes it came in, so it can be served again
/// byte for byte (equal serials must carry equal bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRevocationList {
    jws: Arc<str>,
    list: Arc<RevocationList>,
    kid: Kid,
}

impl SignedRevocationList {
    pub(crate) fn from_parts(jws: String, list: RevocationList, kid: Kid) -> Self {
        Self {
            jws: jws.into(),
            list: Arc::new(list),
            kid,
        }
    }

    /// Checks a signed list: size, `typ`, the signature against `keys` (algorithm pinned by the
    /// key), version, issuer and validity window. It does not judge freshness or serial order;
    /// those depend on the caller's clock and on the list it already holds.
    pub fn verify(
        jws: &str,
        keys: &Jwks,
        issuer: &Issuer,
        max_len: usize,
    ) -> Result<Self, RevocationListError> {
        let compact = Compact::split(jws, max_len)?;
        let header = compact.decode_header()?;
        match header.typ.as_deref() {
            Some(typ) if typ_matches(typ, TYP_REVOCATION_LIST) => {}
            _ => return Err(RevocationListError::WrongType),
        }
        let kid = header.kid.ok_or(JwsError::MissingHeader("kid"))?;
        let jwk = keys
            .get(&kid)
            .ok_or_else(|| RevocationListError::UnknownKid(kid.chars().take(64).collect()))?;
        if !jwk.key().algorithm().matches_header(&header.alg) {
            return Err(RevocationListError::AlgorithmMismatch);
        }
        let signature = compact.decode_signature64()?;
        jwk.key()
            .verify(compact.signing_input.as_bytes(), &signature)
            .map_err(|_| RevocationListError::BadSignature)?;
        let payload = compact.decode_payload()?;
        let list: RevocationList =
            strict_json::from_slice(&payload).map_err(RevocationListError::Payload)?;
        if list.v != LIST_VERSION {
            return Err(RevocationListError::UnsupportedVersion(list.v));
        }
        if &list.iss != issuer {
            return Err(RevocationListError::WrongIssuer {
                found: list.iss.as_str().chars().take(256).collect(),
            });
        }
        if list.exp <= list.iat {
            return Err(RevocationListError::BadValidity {
                iat: list.iat,
                exp: list.exp,
            });
        }
        Ok(Self::from_parts(jws.to_owned(), list, jwk.kid().clone()))
    }

    /// The `serial` a list claims, read **without** checking anything (not the signature, not the
    /// issuer, not even that the rest of the payload is a list). Only for bookkeeping that must
    /// not trust it, such as limiting how often a list signed by an unknown key may make a
    /// verifier refetch its key set. `None` if there is no readable serial.
    pub fn unverified_serial(jws: &str, max_len: usize) -> Option<u64> {
        #[derive(Deserialize)]
        struct Serial {
            serial: u64,
        }
        let payload = Compact::split(jws, max_len).ok()?.decode_payload().ok()?;
        serde_json::from_slice::<Serial>(&payload)
            .ok()
            .map(|s| s.serial)
    }

    /// The JWS exactly as signed.
    pub fn jws(&self) -> &str {
        &self.jws
    }

    /// The verified payload.
    pub fn list(&self) -> &RevocationList {
        &self.list
    }

    /// The signing key that signed it.
    pub fn kid(&self) -> &Kid {
        &self.kid
    }
}
