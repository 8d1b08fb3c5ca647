//! Sender-constraining a token at issuance (RFC 9449): to the key of a `DPoP` proof sent with the
//! request, or to a thumbprint a backend names for its browser (`dpop_jkt`, §10), or both when
//! they agree.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keymint_jwks::dpop::DpopProof;
use keymint_jwks::{Confirmation, Issuer, Jkt, UnixTime};
use keymint_verifier::dpop::{self, ProofError, ProofRequirements, ReplayCache};

use super::request::{Asked, TokenRequest};
use crate::domain::DomainError;
use crate::domain::refusal::{DpopRefusal, RequestRefusal};
use crate::store::{Claim, Store};

/// What a request asks to be bound to, checked but not yet claimed: the proof's ID is claimed by
/// [`Binding::claim`] only once every other check of the request has passed, so that a request
/// refused for its scope or audience takes no room in the replay caches.
#[derive(Debug, Default)]
pub(super) struct Binding {
    jkt: Option<Jkt>,
    proof: Option<DpopProof>,
}

impl Binding {
    /// Claims the proof's ID for `holder` (the API key ID), in this process's cache (its share of
    /// it) and then in the store every replica shares; the `cnf` claim for the token.
    pub(super) async fn claim<S: Store>(
        self,
        store: &S,
        replay: &ReplayCache,
        holder: &str,
        now: UnixTime,
    ) -> Result<Option<Confirmation>, DomainError> {
        if let Some(p) = &self.proof {
            let window = dpop::DEFAULT_PROOF_WINDOW_SECS;
            replay.record(holder, p, window, now).map_err(|e| match e {
                ProofError::OverQuota {
                    retry_after_secs, ..
                } => DomainError::RateLimited {
                    retry_after: std::time::Duration::from_secs(retry_after_secs),
                },
                ProofError::CacheFull => DomainError::RateLimited {
                    retry_after: std::time::Duration::from_secs(1),
                },
                other => DomainError::InvalidDpopProof(DpopRefusal::Proof(other)),
            })?;
            // A proof replayed against another replica: only the shared store knows.
            let id = dpop::proof_id(p.jkt.as_str(), &p.jti);
            // Same rule as the local cache: remembered for as long as the proof could be accepted.
            let until = dpop::replay_until(p.iat, now, window).0;
            let fresh = match store
                .claim_dpop_proof(
                    &URL_SAFE_NO_PAD.encode(id),
                    i64::try_from(until).unwrap_or(i64::MAX),
                    i64::try_from(now.0).unwrap_or(i64::MAX),
                )
                .await
            {
                Ok(fresh) => fresh,
                Err(e) => {
                    // Not the client's fault: its retry with this proof must not read as a
                    // replay, nor the failed request keep room in its share.
                    replay.release(p);
                    return Err(e.into());
                }
            };
            if fresh == Claim::Replay {
                return Err(DomainError::InvalidDpopProof(DpopRefusal::Replayed));
            }
        }
        Ok(self.jkt.map(|jkt| Confirmation { jkt }))
    }
}

/// What `request` asks to be bound to, if anything: the proof (if any) checked against
/// `POST <issuer><path>`, the named thumbprint (if any) well formed and equal to the proof's key.
pub(super) fn binding(
    issuer: &Issuer,
    request: &TokenRequest,
    now: UnixTime,
) -> Result<Binding, DomainError> {
    let requested = match &request.dpop_jkt {
        None => None,
        Some(Asked::Valid(jkt)) => Some(jkt.clone()),
        Some(Asked::Malformed(_)) => {
            return Err(DomainError::InvalidRequest(RequestRefusal::MalformedJkt));
        }
    };
    let proof = match request.dpop_proof.as_deref() {
        None => None,
        Some(proof) => Some(check_proof(issuer, proof, &request.path, now)?),
    };
    let jkt = match (proof.as_ref().map(|p| p.jkt.clone()), requested) {
        (Some(a), Some(b)) if a != b => {
            return Err(DomainError::InvalidDpopProof(DpopRefusal::JktMismatch));
        }
        (Some(jkt), _) | (None, Some(jkt)) => Some(jkt),
        (None, None) => None,
    };
    Ok(Binding { jkt, proof })
}

/// Checks a proof made for `POST <issuer><path>`, without claiming its ID.
fn check_proof(
    issuer: &Issuer,
    proof: &str,
    path: &str,
    now: UnixTime,
) -> Result<DpopProof, DomainError> {
    let url = format!("{}{path}", issuer.as_str().trim_end_matches('/'));
    let req = ProofRequirements {
        method: "POST",
        url: &url,
        access_token: None,
        bound_jkt: None,
    };
    dpop::check_proof(proof, &req, None, dpop::DEFAULT_PROOF_WINDOW_SECS, now)
        .map_err(|e| DomainError::InvalidDpopProof(DpopRefusal::Proof(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;
    use keymint_jwks::dpop::make_proof;
    use keymint_jwks::{Algorithm, SigningKey};

    const NOW: UnixTime = UnixTime(1_800_000_000);

    #[tokio::test]
    async fn a_future_dated_proof_replayed_at_another_replica_after_now_plus_window_is_refused() {
        let dir = std::env::temp_dir().join(format!("keymint-dpop-ahead-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(&dir.join("db")).await.unwrap();
        let issuer = Issuer::new("https://issuer.test").unwrap();
        let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let window = dpop::DEFAULT_PROOF_WINDOW_SECS;
        let ahead = dpop::MAX_PROOF_FUTURE_SECS;
        // A client clock as far ahead as allowed: the proof is acceptable until iat + window.
        let proof = make_proof(
            &key,
            "POST",
            "https://issuer.test/v1/token",
            UnixTime(NOW.0 + ahead),
            "ahead",
            None,
            None,
        )
        .unwrap();
        let claim = |cache: ReplayCache, now: UnixTime| {
            let request = TokenRequest {
                dpop_proof: Some(proof.clone()),
                path: "/v1/token".into(),
                ..TokenRequest::default()
            };
            let store = &store;
            let issuer = &issuer;
            async move {
                binding(issuer, &request, now)?
                    .claim(store, &cache, "k1", now)
                    .await
            }
        };
        claim(ReplayCache::new(1000), NOW).await.unwrap();
        // Another replica (its own empty cache) sees the same proof, still inside its window.
        let later = UnixTime(NOW.0 + ahead + window);
        let replay = claim(ReplayCache::new(1000), later).await;
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            matches!(
                &replay,
                Err(DomainError::InvalidDpopProof(DpopRefusal::Replayed))
            ),
            "{replay:?}"
        );
    }
}
