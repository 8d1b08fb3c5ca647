//! Why a request was refused, typed: each reason is a variant, so a caller (the HTTP error table,
//! metrics, tests) can tell them apart without reading prose, and the words a client sees are
//! written once, here.

use std::time::Duration;

use keymint_jwks::{ApiKeyId, Audience, Kid, Scope};

use crate::domain::reserved::{ADMIN_TENANT, READ, WRITE};

/// What an admin call named that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Missing {
    /// An API key.
    #[error("key {0}")]
    Key(ApiKeyId),
    /// A signing key still published or revoked.
    #[error("signing key {0}")]
    SigningKey(Kid),
}

/// Why the scopes of a token request were refused (`invalid_scope`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeRefusal {
    /// The `scope` parameter does not parse (the parser's words, never the client's text).
    #[error("{0}")]
    Malformed(String),
    /// A scope the key does not hold.
    #[error("the requested scope exceeds the key's scopes")]
    BeyondTheKey,
    /// A publishable key asked by name for a scope that is not public (any more).
    #[error("scope {0} is not public: publishable keys may only mint public scopes")]
    NotPublic(Scope),
    /// None of a publishable key's scopes is public any more.
    #[error("none of this publishable key's scopes is public any more")]
    NonePublic,
}

/// Why the audience of a token request was refused (`invalid_target`, RFC 8707).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetRefusal {
    /// An audience the key does not have (or one that does not parse).
    #[error("the requested audience is not one of the key's")]
    NotTheKeys,
    /// No audience named for a key with several.
    #[error("this key has several audiences: name one with `audience`")]
    NoneNamed,
    /// An admin key asked for another audience than the admin API's.
    #[error("an admin key's tokens are only for the admin API")]
    AdminKeyElsewhere,
    /// A customer key would get the admin audience.
    #[error("the admin audience is reserved for admin keys")]
    AdminAudience,
}

/// Why a key may not be used from where the request came (`unauthorized_client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientRefusal {
    /// The client address is outside the key's allowed networks.
    #[error("this key may not be used from this client address")]
    Address,
    /// A publishable key without an `Origin` header.
    #[error(
        "a publishable key must be used from one of its allowed browser origins (no Origin header came)"
    )]
    NoOrigin,
    /// A publishable key from an origin it does not allow.
    #[error("this origin is not allowed for this publishable key")]
    Origin,
    /// A secret key from a browser.
    #[error(
        "a secret key must not be used from a browser: have your backend exchange its secret key for a narrower, shorter-lived token (backend delegation, optionally bound with dpop_jkt) and give that token to the page, or use a publishable key"
    )]
    SecretKeyInBrowser,
}

/// Why the DPoP side of a token request was refused (`invalid_dpop_proof`, RFC 9449 §5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopRefusal {
    /// The proof failed the verifier's check (its words: what was wrong with it).
    #[error(transparent)]
    Proof(keymint_verifier::dpop::ProofError),
    /// The proof's ID was seen before, by this replica or another.
    #[error("DPoP proof replayed (jti seen before)")]
    Replayed,
    /// `dpop_jkt` names another key than the proof's.
    #[error("dpop_jkt does not match the key of the DPoP proof")]
    JktMismatch,
}

/// Why an admin API call was not authenticated (401).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminAuthRefusal {
    /// No token came at all (RFC 6750 §3.1: the challenge then carries no error code).
    #[error("send an admin token: Authorization: Bearer <token from an admin key>")]
    NoToken,
    /// The token was refused by the admin API's own verifier (its words; never the token).
    #[error(transparent)]
    Token(keymint_verifier::VerifyError),
}

impl AdminAuthRefusal {
    /// Whether a token was presented.
    pub fn presented(&self) -> bool {
        matches!(self, Self::Token(_))
    }
}

/// Why a secret-scanning report was refused before anything in it was looked at. The answer is
/// the same whatever the report names: only a report the scanner signed learns whether a string
/// is a real key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScanRefusal {
    /// This issuer was started without `--secret-scanning-keys`.
    #[error("secret-scanning reports are not enabled on this issuer")]
    NotEnabled,
    /// No signature or no key identifier header.
    #[error(
        "the report is not signed (Github-Public-Key-Identifier and Github-Public-Key-Signature)"
    )]
    Unsigned,
    /// A key identifier the scanner's public-key document does not list.
    #[error("the report is signed by a key the scanner does not publish")]
    UnknownScannerKey,
    /// The signature does not verify over the body.
    #[error("the report's signature does not verify")]
    BadSignature,
}

impl ScanRefusal {
    /// The reason code of the audit line and the refusal metrics.
    pub fn code(self) -> &'static str {
        match self {
            Self::NotEnabled => "scanning_not_enabled",
            Self::Unsigned => "unsigned_report",
            Self::UnknownScannerKey => "unknown_scanner_key",
            Self::BadSignature => "bad_report_signature",
        }
    }
}

/// Why a request was malformed (`invalid_request`). On the token endpoints these words also go to
/// the audit log, so they never echo what the client sent beyond a parameter name keymint knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestRefusal {
    /// A trusted proxy saw it over plain HTTP.
    #[error(
        "the request reached the proxy over plain HTTP: API keys must only be sent over HTTPS (rotate this key if it crossed a network)"
    )]
    InClear,
    /// An admin token a trusted proxy saw over plain HTTP.
    #[error(
        "the request reached the proxy over plain HTTP: admin tokens must only be sent over HTTPS"
    )]
    AdminTokenInClear,
    /// A part of an admin API request that does not parse: which, and the parser's words.
    #[error("{name}: {why}")]
    Unreadable {
        /// `request body`, `query`, `path` or the field.
        name: &'static str,
        /// What the parser said.
        why: String,
    },
    /// A query string on the token endpoint (where a key would end up in access logs).
    #[error("the token endpoint takes no query parameters; send the API key in a header")]
    QueryParameters,
    /// The body could not be read.
    #[error("could not read the request body")]
    UnreadableBody,
    /// The key in both `Authorization` and `X-API-Key`.
    #[error("send the API key once, not in two headers")]
    KeyTwice,
    /// A body on `/v1/token` that is not declared JSON.
    #[error("the body must be JSON (Content-Type: application/json)")]
    NotJson,
    /// A JSON body of the wrong shape.
    #[error(
        "the body must be a JSON object with optional scope (string), audience (string), ttl (seconds) and dpop_jkt (string)"
    )]
    JsonShape,
    /// A body on `/oauth2/token` that is not a form.
    #[error("the body must be application/x-www-form-urlencoded")]
    NotForm,
    /// A form that does not decode.
    #[error("the form body is malformed")]
    MalformedForm,
    /// A form parameter sent twice (RFC 6749 §3.2); its name when it is one keymint reads.
    #[error("parameter {0} is repeated")]
    Repeated(&'static str),
    /// No `grant_type`.
    #[error("grant_type is required")]
    NoGrantType,
    /// HTTP Basic and form credentials at once.
    #[error("use one client authentication method, not two")]
    TwoAuthMethods,
    /// Both `audience` and `resource`.
    #[error("send audience or resource, not both")]
    AudienceAndResource,
    /// A `dpop_jkt` that is not a thumbprint.
    #[error(
        "dpop_jkt must be the base64url SHA-256 JWK thumbprint (43 characters) of the DPoP key"
    )]
    MalformedJkt,
    /// `ttl: 0`.
    #[error("ttl must be positive")]
    ZeroTtl,
}

impl RequestRefusal {
    /// The form parameters `/oauth2/token` reads; any other repeated one is named generically.
    pub fn repeated(name: &str) -> Self {
        const KNOWN: [&str; 7] = [
            "grant_type",
            "client_id",
            "client_secret",
            "scope",
            "audience",
            "resource",
            "dpop_jkt",
        ];
        Self::Repeated(
            KNOWN
                .iter()
                .find(|k| **k == name)
                .copied()
                .unwrap_or("(another)"),
        )
    }
}

/// Why a change conflicts with the state it found (409; exit code 4 on the command line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConflictReason {
    /// A *next* signing key is already scheduled.
    #[error("a rotation is already in progress: {next} becomes active at {activate_at}")]
    RotationInProgress {
        /// The scheduled key.
        next: Kid,
        /// When it starts signing.
        activate_at: i64,
    },
    /// A signing key already revoked or removed.
    #[error("signing key {kid} is already {state}")]
    SigningKeyGone {
        /// The key.
        kid: Kid,
        /// `revoked` or `removed`.
        state: &'static str,
    },
    /// Another process changed the signing key between the read and the write.
    #[error("signing key {0} changed meanwhile; try again")]
    SigningKeyChanged(Kid),
    /// Revoking a key already revoked.
    #[error("key {0} is already revoked")]
    AlreadyRevoked(ApiKeyId),
    /// Rotating a revoked key.
    #[error("key {0} is revoked; create a new key")]
    RotatingRevoked(ApiKeyId),
    /// Rotating a key already rotated.
    #[error("key {key} was already rotated to {to}")]
    AlreadyRotated {
        /// The key.
        key: ApiKeyId,
        /// Its successor, as stored.
        to: String,
    },
    /// Another process changed the key between the read and the write.
    #[error("key {0} changed meanwhile; try again")]
    KeyChanged(ApiKeyId),
    /// `serve` given a shared setting that differs from the stored one.
    #[error("{name} is {stored} in the database, and {given} was given")]
    Setting {
        /// The setting (`issuer-url`, …).
        name: &'static str,
        /// The stored value.
        stored: String,
        /// The value given.
        given: String,
    },
    /// `migrate` into a database that holds data.
    #[error("the target database is not empty ({0})")]
    TargetNotEmpty(String),
    /// `migrate` met a row the target already had.
    #[error("{0}: a row exists already in the target")]
    RowExists(String),
    /// `migrate` found the source changed under it.
    #[error(
        "the source database changed while it was being copied (a keymint process still uses it)"
    )]
    SourceChanged,
}

/// Why an admin command or call was refused for what it asked (400; exit code 2 on the command
/// line). The words name the command-line flags; the admin API's fields have the same names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInput {
    /// A leak policy that is neither `revoke` nor `flag`.
    #[error("on_leak must be revoke or flag")]
    OnLeak,
    /// A webhook URL that is not HTTPS (or HTTP to loopback).
    #[error("the webhook URL must be https:// (http:// only to a loopback host)")]
    WebhookUrl,
    /// A secret-scanning report whose body (signed by the scanner) does not parse: the
    /// parser's words.
    #[error("{0}")]
    Report(String),
    /// The scopes given do not parse.
    #[error("--scope: {0}")]
    Scopes(keymint_jwks::ScopeError),
    /// A key without scopes.
    #[error("a key needs at least one --scope")]
    NoScope,
    /// An admin key without `admin:read` or `admin:write`.
    #[error("an admin key needs --scope {r} or --scope {w}", r = READ, w = WRITE)]
    NoAdminScope,
    /// An admin key with another scope.
    #[error(
        "scope {0} is not an admin scope: admin keys carry {r} and/or {w}",
        r = READ,
        w = WRITE
    )]
    NotAnAdminScope(Scope),
    /// A customer key with an `admin:*` scope.
    #[error("scope {0} is reserved: admin:* scopes are only given to admin keys")]
    ReservedScope(Scope),
    /// `admin:*` declared public.
    #[error("admin:* scopes can never be public")]
    PublicAdminScope,
    /// A key without audiences.
    #[error("a key needs at least one --audience")]
    NoAudience,
    /// A customer key with the admin API's audience.
    #[error("audience {0} is reserved for admin keys (keymint admin-keys create)")]
    ReservedAudience(Audience),
    /// A customer key in the admin keys' tenant.
    #[error(
        "tenant {t} is reserved for admin keys (keymint admin-keys create)",
        t = ADMIN_TENANT
    )]
    ReservedTenant,
    /// Revoking the admin keys' tenant as a whole.
    #[error(
        "tenant {t} holds the admin keys: revoke them one by one with `keymint keys revoke`",
        t = ADMIN_TENANT
    )]
    AdminTenantRevocation,
    /// A publishable key without origins.
    #[error(
        "a publishable key needs at least one --origin (the browser origins allowed to use it)"
    )]
    NoOrigin,
    /// A publishable key with a scope that is not public.
    #[error(
        "scope {0} is not public: publishable keys may only carry scopes declared with `keymint scopes add {0} --public`"
    )]
    NotPublic(Scope),
    /// A publishable key allowed longer tokens than publishable keys get.
    #[error("publishable keys get tokens of at most {}", humantime::format_duration(*.0))]
    PublishableTtl(Duration),
    /// A token lifetime of zero, or above the maximum.
    #[error("--ttl must be positive and at most --max-ttl")]
    Ttl,
    /// A key lifetime of zero, or above the maximum.
    #[error("--expires-in must be between 1s and {}", humantime::format_duration(*.0))]
    KeyLifetime(Duration),
    /// A shared setting's value out of bounds or malformed.
    #[error("{name}: {why}")]
    Setting {
        /// The setting (`issuer-url`, …).
        name: &'static str,
        /// What is wrong with the value.
        why: String,
    },
    /// Rotating an admin key (only `keymint admin-keys create` makes them).
    #[error(
        "key {0} is an admin key: make its successor with `keymint admin-keys create`, then revoke it"
    )]
    RotatingAdminKey(ApiKeyId),
    /// Rotating a publishable key one of whose scopes is no longer public.
    #[error(
        "key {key} is publishable and its scope {scope} is no longer public: mark it public again (`keymint scopes add {scope} --public`) or create a new key with public scopes only"
    )]
    RotatingNoLongerPublic {
        /// The key.
        key: ApiKeyId,
        /// The scope.
        scope: Scope,
    },
    /// `migrate` from a database with nothing in it.
    #[error("nothing to migrate: {0} has no API keys and no signing keys")]
    NothingToMigrate(String),
    /// `migrate` with an encryption key that does not open the stored signing keys.
    #[error(
        "the encryption key in use ({key}) does not open signing key {kid}: it is not the one this database was created with, and replicas given it could not sign"
    )]
    WrongEncryptionKey {
        /// Where the key in use came from.
        key: String,
        /// The signing key it does not open.
        kid: Kid,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reason goes to the client and to the audit log: a repeated parameter is named only when
    /// it is one keymint reads, never in the client's own bytes (which could carry a line break).
    #[test]
    fn a_repeated_parameter_is_named_only_when_keymint_knows_it() {
        assert_eq!(
            RequestRefusal::repeated("scope").to_string(),
            "parameter scope is repeated"
        );
        let odd = RequestRefusal::repeated("x\nFAKE audit line").to_string();
        assert_eq!(odd, "parameter (another) is repeated");
    }
}
