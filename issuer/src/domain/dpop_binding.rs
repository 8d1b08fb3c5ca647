//! Sender-constraining a token at issuance (RFC 9449): to the key of a `DPoP` proof sent with the
//! request, or to a thumbprint a backend names for its browser (`dpop_jkt`, §10), or both when
//! they agree.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keymint_jwks::{Confirmation, Issuer, UnixTime};
use keymint_verifier::dpop::{self, ProofError, ProofRequirements, ReplayCache};

use super::DomainError;
use super::token::TokenRequest;
use crate::store::Store;

/// The `cnf` claim for `request`, if it asks for a bound token. Call only after the client has
/// authenticated, so that anonymous garbage cannot fill the replay cache.
pub(super) async fn confirmation<S: Store>(
    store: &S,
    replay: &ReplayCache,
    issuer: &Issuer,
    request: &TokenRequest,
    now: UnixTime,
) -> Result<Option<Confirmation>, DomainError> {
    let requested = match request.dpop_jkt.as_deref() {
        None => None,
        Some(jkt) if is_thumbprint(jkt) => Some(jkt.to_owned()),
        Some(_) => {
            return Err(DomainError::InvalidRequest(
                "dpop_jkt must be the base64url SHA-256 JWK thumbprint (43 characters) of the DPoP key".into(),
            ));
        }
    };
    let proven = match request.dpop_proof.as_deref() {
        None => None,
        Some(proof) => Some(check_proof(store, replay, issuer, proof, &request.path, now).await?),
    };
    match (proven, requested) {
        (Some(a), Some(b)) if a != b => Err(DomainError::InvalidDpopProof(
            "dpop_jkt does not match the key of the DPoP proof".into(),
        )),
        (Some(jkt), _) | (None, Some(jkt)) => Ok(Some(Confirmation { jkt })),
        (None, None) => Ok(None),
    }
}

/// Checks a proof made for `POST <issuer><path>` and claims its ID, here and in the store every
/// replica shares; returns its key's thumbprint.
async fn check_proof<S: Store>(
    store: &S,
    replay: &ReplayCache,
    issuer: &Issuer,
    proof: &str,
    path: &str,
    now: UnixTime,
) -> Result<String, DomainError> {
    let url = format!("{}{path}", issuer.as_str().trim_end_matches('/'));
    let req = ProofRequirements {
        method: "POST",
        url: &url,
        access_token: None,
        bound_jkt: None,
    };
    let p = dpop::check_proof(
        proof,
        &req,
        replay,
        None,
        dpop::DEFAULT_PROOF_WINDOW_SECS,
        now,
    )
    .map_err(|e| match e {
        ProofError::CacheFull => DomainError::RateLimited {
            retry_after: std::time::Duration::from_secs(1),
        },
        other => DomainError::InvalidDpopProof(other.to_string()),
    })?;
    // A proof replayed against another replica: only the shared store knows.
    let id = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{}:{}", p.jkt, p.jti).as_bytes(),
    );
    // Same rule as the local cache: remembered for as long as the proof could be accepted.
    let until = dpop::replay_until(p.iat, now, dpop::DEFAULT_PROOF_WINDOW_SECS).0;
    let fresh = store
        .claim_dpop_proof(
            &URL_SAFE_NO_PAD.encode(id.as_ref()),
            i64::try_from(until).unwrap_or(i64::MAX),
            i64::try_from(now.0).unwrap_or(i64::MAX),
        )
        .await?;
    if !fresh {
        return Err(DomainError::InvalidDpopProof(
            "DPoP proof replayed (jti seen before)".into(),
        ));
    }
    Ok(p.jkt)
}

fn is_thumbprint(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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
        // A client clock a full window ahead: the proof is acceptable until iat + window.
        let proof = make_proof(
            &key,
            "POST",
            "https://issuer.test/v1/token",
            UnixTime(NOW.0 + window),
            "ahead",
            None,
            None,
        )
        .unwrap();
        let here = ReplayCache::new(10);
        check_proof(&store, &here, &issuer, &proof, "/v1/token", NOW)
            .await
            .unwrap();
        // Another replica (its own empty cache) sees the same proof, still inside its window.
        let there = ReplayCache::new(10);
        let later = UnixTime(NOW.0 + window + 2);
        let replay = check_proof(&store, &there, &issuer, &proof, "/v1/token", later).await;
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            matches!(&replay, Err(DomainError::InvalidDpopProof(m)) if m.contains("replayed")),
            "{replay:?}"
        );
    }
}
