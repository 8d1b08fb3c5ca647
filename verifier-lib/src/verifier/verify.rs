//! The verification path: structure, header, signature, claims, time and revocation, with the
//! verified-token cache in front. Reads the verifier's state, never writes it (but for the cache).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use keymint_jwks::jws::{Compact, JwsError, TYP_ACCESS_TOKEN, typ_matches};
use keymint_jwks::strict_json::JsonError;
use keymint_jwks::{Algorithm, Claims, ClaimsError, PublicKey, UnixTime};

use super::Verifier;
use crate::cache::Entry;
use crate::{VerifiedToken, VerifyError};

fn cut(s: &str) -> String {
    s.chars().take(64).collect()
}

fn from_jws(e: JwsError) -> VerifyError {
    match e {
        JwsError::Oversize { len, max } => VerifyError::Oversize { len, max },
        JwsError::ForbiddenHeader(name) => VerifyError::ForbiddenHeader(name),
        JwsError::UnknownCritical => VerifyError::UnknownCritical,
        JwsError::Header(JsonError::DuplicateMember { member }) => {
            VerifyError::DuplicateMember { member }
        }
        JwsError::SignatureLength { .. } => VerifyError::BadSignature,
        other => VerifyError::Malformed(other.to_string()),
    }
}

fn from_claims(e: ClaimsError) -> VerifyError {
    match e {
        ClaimsError::Missing(claim) => VerifyError::MissingClaim(claim),
        ClaimsError::Invalid { claim, reason } => VerifyError::InvalidClaim { claim, reason },
        ClaimsError::AudienceCount(n) => VerifyError::InvalidClaim {
            claim: "aud",
            reason: format!("{n} audiences, exactly one is allowed"),
        },
        ClaimsError::Json(JsonError::DuplicateMember { member }) => {
            VerifyError::DuplicateMember { member }
        }
        ClaimsError::Json(e) => VerifyError::Malformed(format!("payload: {e}")),
        other => VerifyError::Malformed(other.to_string()),
    }
}

impl Verifier {
    /// Verifies `token` at the configured clock's current time. No I/O.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        self.verify_at(token, self.0.clock.now())
    }

    /// Verifies `token` as of `now`, presented as a bearer token. No I/O. A DPoP-bound token is
    /// refused here ([`VerifyError::SenderConstrained`]): use [`verify_dpop_at`](Self::verify_dpop_at).
    ///
    /// A token verified before is answered from the cache without parsing or a signature check,
    /// but its expiry, its revocation and its key's presence in the key set are checked on every
    /// call.
    pub fn verify_at(&self, token: &str, now: UnixTime) -> Result<VerifiedToken, VerifyError> {
        let result = self.verify_any(token, now).and_then(|verified| {
            if verified.claims().cnf.is_some() {
                // The bearer path; a sender-constrained token needs its key's proof.
                return Err(VerifyError::SenderConstrained);
            }
            Ok(verified)
        });
        crate::telemetry::outcome(&result);
        result
    }

    /// Verifies a DPoP-bound token with its proof for this very request (RFC 9449 §7): `method`
    /// and `url` as the client used them (behind a proxy, the external URL). The token must be
    /// bound (`cnf.jkt`) to the proof's key, the proof must carry the token's hash, be fresh, be
    /// seen for the first time, and carry a current nonce when nonces are required.
    pub fn verify_dpop(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        url: &str,
    ) -> Result<VerifiedToken, VerifyError> {
        self.verify_dpop_at(token, proof, method, url, self.0.clock.now())
    }

    /// [`verify_dpop`](Self::verify_dpop) as of `now`.
    pub fn verify_dpop_at(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        url: &str,
        now: UnixTime,
    ) -> Result<VerifiedToken, VerifyError> {
        let verified = self.verify_any(token, now)?;
        let jkt = verified
            .claims()
            .cnf
            .as_ref()
            .map(|c| &c.jkt)
            .ok_or_else(|| {
                VerifyError::InvalidDpopProof("the token is not bound to a DPoP key".into())
            })?;
        let d = &self.0.config.dpop;
        let req = crate::dpop::ProofRequirements {
            method,
            url,
            access_token: Some(token),
            bound_jkt: Some(jkt),
        };
        let map = |e| match e {
            crate::dpop::ProofError::Invalid(m) => VerifyError::InvalidDpopProof(m),
            crate::dpop::ProofError::UseNonce(nonce) => VerifyError::UseDpopNonce { nonce },
            crate::dpop::ProofError::OverQuota {
                retry_after_secs, ..
            } => VerifyError::DpopProofQuota { retry_after_secs },
            crate::dpop::ProofError::CacheFull => VerifyError::DpopReplayCacheFull,
        };
        let p = crate::dpop::check_proof(proof, &req, d.nonces.as_ref(), d.window_secs, now)
            .map_err(map)?;
        // Last, once everything else passed: only a request that would be served takes room in
        // the replay cache, and each key (`sub`) only its own share of it.
        d.replay
            .record(verified.claims().sub.as_str(), &p, d.window_secs, now)
            .map_err(map)?;
        Ok(verified)
    }

    /// The external base URL DPoP proofs are checked against (`htu`), if configured.
    pub fn dpop_base_url(&self) -> Option<&str> {
        self.0.config.dpop.base_url.as_deref()
    }

    /// Whether the application chose, through
    /// [`dangerous`](crate::dangerous::DangerousBuilder::dpop_htu_from_host_header), to take a
    /// proof's `htu` base from the request's `Host` header when no base URL is configured.
    pub fn dpop_htu_from_host(&self) -> bool {
        self.0.config.dpop.htu_from_host
    }

    /// A fresh server nonce, when this verifier requires them.
    pub fn dpop_nonce(&self) -> Option<String> {
        self.0
            .config
            .dpop
            .nonces
            .as_ref()
            .map(|n| n.current(self.0.clock.now()))
    }

    fn verify_any(&self, token: &str, now: UnixTime) -> Result<VerifiedToken, VerifyError> {
        let cfg = &self.0.config;
        if token.len() > cfg.max_token_len {
            return Err(VerifyError::Oversize {
                len: token.len(),
                max: cfg.max_token_len,
            });
        }
        if let Some(live) = &self.0.live {
            use std::sync::atomic::Ordering;
            let ok_at = live.keys_ok_at.load(Ordering::Relaxed);
            if ok_at == 0 {
                return Err(VerifyError::SourcesUnavailable { last_refresh: None });
            }
            if now.0.saturating_sub(ok_at) > live.max_stale_secs {
                return Err(VerifyError::SourcesUnavailable {
                    last_refresh: Some(UnixTime(ok_at)),
                });
            }
        }
        if let Some(hit) = self.0.cache.get(token) {
            if self
                .0
                .keys
                .load()
                .still_has(hit.token.kid().as_str(), &hit.key)
            {
                crate::telemetry::cache_hit();
                if let Err(e) = self.check_time(hit.token.claims(), now) {
                    // An expired token can never pass again: it leaves the cache now rather than
                    // being kept fresh by its holder, uncounted once its time is past.
                    if matches!(e, VerifyError::Expired { .. }) {
                        self.0.cache.remove(token);
                    }
                    return Err(e);
                }
                self.check_revocation(&hit.token, now, Some(&hit.unrevoked_in))?;
                return Ok(hit.token.clone());
            }
            self.0.cache.remove(token);
        }
        let (verified, key) = self.verify_uncached(token).inspect_err(|e| {
            if matches!(e, VerifyError::UnknownKid { .. }) {
                self.kid_missed();
            }
        })?;
        self.check_time(verified.claims(), now)?;
        let generation = self.check_revocation(&verified, now, None)?;
        let until = UnixTime(verified.claims().exp.0.saturating_add(cfg.leeway_secs));
        self.0.cache.insert(
            token,
            Entry {
                token: verified.clone(),
                key,
                unrevoked_in: AtomicU64::new(generation),
                share: None,
            },
            until,
            now,
        );
        Ok(verified)
    }

    /// Structure, header, signature, claims, issuer and audience: everything that does not depend
    /// on the time or the revocation list.
    fn verify_uncached(&self, token: &str) -> Result<(VerifiedToken, Arc<PublicKey>), VerifyError> {
        let cfg = &self.0.config;
        let compact = Compact::split(token, cfg.max_token_len).map_err(from_jws)?;
        let header = compact.decode_header().map_err(from_jws)?;
        match header.typ.as_deref() {
            Some(typ) if typ_matches(typ, TYP_ACCESS_TOKEN) => {}
            other => {
                return Err(VerifyError::WrongType {
                    found: other.map(cut),
                });
            }
        }
        let kid = header.kid.as_deref().ok_or(VerifyError::MissingKid)?;
        let keys = self.0.keys.load();
        let (kid, key) = keys
            .get(kid)
            .ok_or_else(|| VerifyError::UnknownKid { kid: cut(kid) })?;
        // The key pins the algorithm; the header can only agree with it.
        if !key.algorithm().matches_header(&header.alg) {
            return Err(match Algorithm::from_name(&header.alg) {
                Some(_) => VerifyError::AlgorithmMismatch {
                    alg: cut(&header.alg),
                    expected: key.algorithm(),
                },
                None => VerifyError::UnsupportedAlgorithm {
                    alg: cut(&header.alg),
                },
            });
        }
        let signature = compact.decode_signature64().map_err(from_jws)?;
        key.verify(compact.signing_input.as_bytes(), &signature)
            .map_err(|_| VerifyError::BadSignature)?;
        let payload = compact.decode_payload().map_err(from_jws)?;
        let claims = Claims::from_json(&payload).map_err(from_claims)?;
        if claims.iss != cfg.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if !cfg.audiences.contains(&claims.aud) {
            return Err(VerifyError::WrongAudience);
        }
        Ok((
            VerifiedToken::new(claims, kid.clone(), key.algorithm()),
            Arc::clone(key),
        ))
    }

    fn check_time(&self, claims: &Claims, now: UnixTime) -> Result<(), VerifyError> {
        let leeway = self.0.config.leeway_secs;
        // RFC 7519 §4.1.4: the token must not be accepted on or after `exp`.
        if now.0 >= claims.exp.0.saturating_add(leeway) {
            return Err(VerifyError::Expired {
                exp: claims.exp,
                now,
            });
        }
        if let Some(nbf) = claims.nbf
            && now.0.saturating_add(leeway) < nbf.0
        {
            return Err(VerifyError::NotYetValid { nbf, now });
        }
        if claims.iat.0 > now.0.saturating_add(leeway) {
            return Err(VerifyError::IssuedInFuture {
                iat: claims.iat,
                now,
            });
        }
        Ok(())
    }

    /// Checks the list in force: it must not have expired, and must not revoke the token. Returns
    /// the list's generation (0 when revocation checks are off). `memo` is a cached token's record
    /// of the generation it was last found unrevoked in: when that is the list in force, the
    /// lookups are skipped (their answer depends only on the token and the list), and after a
    /// lookup it is brought up to date.
    fn check_revocation(
        &self,
        token: &VerifiedToken,
        now: UnixTime,
        memo: Option<&AtomicU64>,
    ) -> Result<u64, VerifyError> {
        if !self.0.config.check_revocation {
            return Ok(0);
        }
        let state = self.0.revocations.load();
        let state = state.as_ref().ok_or(VerifyError::NoRevocationList)?;
        let exp = state.signed.list().exp;
        // Fail closed: an expired list no longer proves that nothing new was revoked.
        if now >= exp {
            return Err(VerifyError::RevocationListExpired { exp, now });
        }
        // Relaxed is enough: the generation only names a list, and a stale read only costs a
        // lookup (a value is stored only after its lookup found nothing).
        if memo.is_some_and(|m| m.load(Ordering::Relaxed) == state.generation) {
            return Ok(state.generation);
        }
        state
            .index
            .check(token.claims(), token.kid())
            .map_err(VerifyError::Revoked)?;
        if let Some(m) = memo {
            m.store(state.generation, Ordering::Relaxed);
        }
        Ok(state.generation)
    }

    /// Tells live sources that a token named a `kid` we do not have. Never blocks: the key-set
    /// thread decides whether its cooldown allows a refetch.
    pub(crate) fn kid_missed(&self) {
        if let Some(live) = &self.0.live {
            let _ = live.wake.try_send(());
        }
    }
}
