//! # keymint-jwks
//!
//! The formats keymint's issuer and verifiers share, and the ring key code behind them. No I/O, no
//! async runtime, no HTTP: everything here is a pure function of its inputs (plus the system
//! random number generator when a key is generated or an ECDSA signature is made).
//!
//! - [`SigningKey`] / [`Signer`]: Ed25519 (`EdDSA`, the default) and P-256 (`ES256`) keys from
//!   ring, PKCS#8 at rest, compact JWS out.
//! - [`Jwk`] / [`Jwks`]: public keys per RFC 8037 (`OKP`) and RFC 7518 (`EC`); `kid` is the RFC 7638
//!   thumbprint. Parsing refuses what cannot be used safely, with typed errors.
//! - [`Claims`]: the RFC 9068 access-token claims keymint mints.
//! - [`RevocationList`] / [`SignedRevocationList`]: the signed revocation list.
//!
//! ```
//! use keymint_jwks::{Algorithm, Jwks, Signer, SigningKey};
//!
//! let key = SigningKey::generate(Algorithm::EdDsa)?;
//! let jwks = Jwks::new(vec![key.public_jwk()])?;
//! let published = jwks.to_json();
//! assert_eq!(Jwks::from_json(published.as_bytes())?, jwks);
//! let _signer = Signer::new(key);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What it does not do
//!
//! It does not verify access tokens: that is `keymint-verifier`'s job, which adds the policy
//! (issuer, audience, time, revocation) and the caches.

mod alg;
mod claims;
pub mod dpop;
mod ids;
mod jwk;
mod jwks;
pub mod jws;
mod revocation;
mod scope;
mod signing_key;
pub mod strict_json;
mod thumbprint;
mod unix_time;
mod weak_points;

#[cfg(feature = "jsonwebtoken")]
pub mod jwt_provider;

pub use alg::Algorithm;
pub use claims::{Claims, ClaimsError, Confirmation};
pub use ids::{ApiKeyId, Audience, ClientId, IdError, Issuer, Jkt, Jti, Kid, TenantId};
pub use jwk::{BadSignature, Jwk, JwkError, PublicKey};
pub use jwks::{Jwks, JwksError};
pub use revocation::{
    LIST_VERSION, MAX_LIST_VALIDITY, PROPAGATION_BOUND, RevocationEntry, RevocationList,
    RevocationListError, RevocationTarget, SignedRevocationList,
};
pub use scope::{Scope, ScopeError, ScopeSet};
pub use signing_key::{KeyError, Signer, SigningKey};
pub use thumbprint::thumbprint;
pub use unix_time::UnixTime;
