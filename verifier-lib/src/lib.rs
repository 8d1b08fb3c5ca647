//! # keymint-verifier
//!
//! Checks keymint access tokens **offline**: the signature against a published JWKS, the claims,
//! and a published, signed revocation list. No database and no network call per request: `verify`
//! does no I/O at all, and a token it has seen before costs a hash lookup.
//!
//! ```text
//!  token ──► size ─► 3 segments, base64url ─► header (typ, kid, alg pinned by the key,
//!            no jku/jwk/x5u/x5c/crit) ─► signature (ring) ─► claims (no duplicate members,
//!            iss, aud) ─► exp / nbf / iat ─► revocation (key, jti, tenant, kid) ─► VerifiedToken
//!                        ▲                                                 │
//!                        └──────── verified-token cache (whole token) ◄────┘
//! ```
//!
//! ## Getting started: issue → verify → revoke → reject
//!
//! ```
//! use keymint_jwks::*;
//! use keymint_verifier::{Verifier, VerifyError};
//!
//! // The issuer's side: a signing key, its JWKS, a token and an (empty) revocation list.
//! let signer = Signer::new(SigningKey::generate(Algorithm::EdDsa)?);
//! let jwks = Jwks::new(vec![signer.key().public_jwk()])?;
//! let issuer = Issuer::new("https://issuer.example")?;
//! let now = UnixTime(1_800_000_000);
//! let claims = Claims {
//!     iss: issuer.clone(),
//!     sub: ApiKeyId::new("k7Gx2")?,
//!     aud: Audience::new("https://api.example")?,
//!     exp: UnixTime(now.0 + 600),
//!     iat: now,
//!     nbf: Some(now),
//!     jti: Jti::new("t-1")?,
//!     client_id: ClientId::new("k7Gx2")?,
//!     scope: ScopeSet::parse("orders:read")?,
//!     tenant: TenantId::new("acme")?,
//!     cnf: None,
//! };
//! let token = signer.sign_access_token(&claims)?;
//! let list = |serial, entries| RevocationList {
//!     v: 1, iss: issuer.clone(), serial, iat: now, exp: UnixTime(now.0 + 86_400), entries,
//! };
//! let empty = signer.sign_revocation_list(&list(1, vec![]))?;
//!
//! // The API server's side: built once, shared by every request.
//! let verifier = Verifier::builder(issuer.clone(), Audience::new("https://api.example")?)
//!     .jwks(jwks)
//!     .build()?;
//! verifier.update_revocations_at(empty.jws(), now)?;
//! let verified = verifier.verify_at(&token, now)?;
//! verified.require_scopes([&Scope::new("orders:read")?])?;
//! assert_eq!(verified.claims().tenant.as_str(), "acme");
//!
//! // An admin revokes the key; the next list reaches the verifier and the token is refused,
//! // even though it is cached.
//! let revoked = signer.sign_revocation_list(&list(2, vec![RevocationEntry {
//!     target: RevocationTarget::Key(ApiKeyId::new("k7Gx2")?),
//!     revoked_at: now,
//!     drop_after: UnixTime(now.0 + 3_600),
//! }]))?;
//! verifier.update_revocations_at(revoked.jws(), now)?;
//! assert!(matches!(verifier.verify_at(&token, now), Err(VerifyError::Revoked(_))));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What it does not do
//!
//! - It does not fetch anything. Key sets and revocation lists come in as values or files, and the
//!   caller replaces them (`set_keys`, `update_revocations`); replacing is atomic and never
//!   blocks `verify`.
//! - It never lets a token choose its algorithm or its key: `alg` must agree with the key named by
//!   `kid`, and `jku`, `jwk`, `x5u`, `x5c` are refused, not followed.
//! - It does not use `jsonwebtoken`'s process-wide crypto provider, so it works whatever provider
//!   the application installed, or none.
//!
//! ## Errors
//!
//! [`VerifyError`] says why a token was refused; [`VerifyError::is_unavailable`] marks the cases
//! where the verifier cannot vouch for anything (HTTP 503) rather than the token being bad (401).
//! [`AccessError`] comes from the scope and tenant checks on a verified token (HTTP 403).

mod builder;
mod cache;
pub mod clock;
pub mod dangerous;
pub mod dpop;
mod error;
mod files;
mod keyset;
#[cfg(feature = "axum")]
pub mod layer;
mod list_rules;
#[cfg(feature = "live")]
pub mod live;
mod revocation;
mod telemetry;
mod token;
mod verifier;

pub use builder::{
    DEFAULT_CACHE_BYTES, DEFAULT_LEEWAY, DEFAULT_MAX_LIST_LEN, DEFAULT_MAX_TOKEN_LEN, MAX_LEEWAY,
    VerifierBuilder,
};
pub use cache::DEFAULT_CACHE_SHARE_PERCENT;
pub use error::{AccessError, BuildError, UpdateError, VerifyError};
pub use revocation::RevocationIndex;
pub use token::VerifiedToken;
pub use verifier::Verifier;
pub use verifier::update::RevocationUpdate;

#[cfg(test)]
mod tests;
