//! Why a DPoP proof was refused.

/// Why a proof does not fit the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The proof itself is invalid, or does not match this request or token.
    #[error("{0}")]
    Invalid(String),
    /// The server requires a nonce and the proof lacks a current one: retry with this one.
    #[error("a DPoP nonce is required")]
    UseNonce(String),
    /// This holder or DPoP key already has its whole share of the replay cache in live proofs:
    /// it is sending proofs faster than anyone needs to, and is refused alone.
    #[error("too many live DPoP proofs for this {who}; retry in {retry_after_secs} s")]
    OverQuota {
        /// `key` (the holder) or `jkt` (the DPoP key).
        who: &'static str,
        /// When the oldest live proof in the cache falls due (a hint, at least 1).
        retry_after_secs: u64,
    },
    /// The replay cache is full of live proof IDs: refusing rather than forgetting.
    #[error("DPoP replay cache is full")]
    CacheFull,
}
