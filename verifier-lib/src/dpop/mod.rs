//! Checking DPoP proofs against the request (RFC 9449 §4.3, §7): method, URL, time window, token
//! hash, key binding, server nonces, and a bounded replay cache that refuses new proofs when full
//! rather than forgetting live ones.

mod error;
mod nonce;
mod replay;
#[cfg(test)]
mod tests;

pub use error::ProofError;
pub use nonce::NonceSource;
pub use replay::{
    DEFAULT_JKT_SHARE_DIVISOR, DEFAULT_REPLAY_CAPACITY, DEFAULT_REPLAY_SHARE_PERCENT, ReplayCache,
    ReplayLimits, proof_id, replay_until,
};

use keymint_jwks::UnixTime;
use keymint_jwks::dpop::{DpopProof, access_token_hash, normalize_htu, parse_proof};

/// How far in the past a proof's `iat` may be.
pub const DEFAULT_PROOF_WINDOW_SECS: u64 = 60;
/// How far ahead of the verifier's clock a proof's `iat` may be: a few seconds of client clock
/// skew, no more (a proof dated far ahead would have to be remembered that much longer).
pub const MAX_PROOF_FUTURE_SECS: u64 = 5;

/// What a proof must match.
#[derive(Debug)]
pub struct ProofRequirements<'a> {
    /// The request method.
    pub method: &'a str,
    /// The request URL as the client saw it.
    pub url: &'a str,
    /// For a resource request, the access token (its hash must be in `ath`).
    pub access_token: Option<&'a str>,
    /// When set, `cnf.jkt` of the token: the proof must be made with that key.
    pub bound_jkt: Option<&'a keymint_jwks::Jkt>,
}

/// Checks a proof against a request: method, URL, time (at most `window_secs` old, at most
/// [`MAX_PROOF_FUTURE_SECS`] ahead), token hash, key binding and nonce. It records nothing: once
/// every other check of the request has passed, claim the proof's ID with
/// [`ReplayCache::record`].
pub fn check_proof(
    proof: &str,
    req: &ProofRequirements<'_>,
    nonces: Option<&NonceSource>,
    window_secs: u64,
    now: UnixTime,
) -> Result<DpopProof, ProofError> {
    let p = parse_proof(proof).map_err(|e| ProofError::Invalid(e.to_string()))?;
    if p.htm != req.method {
        return Err(ProofError::Invalid(
            "DPoP proof htm does not match the request method".into(),
        ));
    }
    if normalize_htu(&p.htu) != normalize_htu(req.url) {
        return Err(ProofError::Invalid(
            "DPoP proof htu does not match the request URL".into(),
        ));
    }
    if p.iat.0 > now.0.saturating_add(MAX_PROOF_FUTURE_SECS) {
        return Err(ProofError::Invalid(
            "DPoP proof iat is too far in the future".into(),
        ));
    }
    if now.0.saturating_sub(p.iat.0) > window_secs {
        return Err(ProofError::Invalid(
            "DPoP proof iat is outside the accepted window".into(),
        ));
    }
    if let Some(token) = req.access_token
        && p.ath.as_deref() != Some(access_token_hash(token).as_str())
    {
        return Err(ProofError::Invalid(
            "DPoP proof ath does not match the access token".into(),
        ));
    }
    if let Some(jkt) = req.bound_jkt
        && p.jkt != *jkt
    {
        return Err(ProofError::Invalid(
            "DPoP proof key is not the key the token is bound to".into(),
        ));
    }
    if let Some(n) = nonces
        && !p.nonce.as_deref().is_some_and(|v| n.accepts(v, now))
    {
        return Err(ProofError::UseNonce(n.current(now)));
    }
    Ok(p)
}
