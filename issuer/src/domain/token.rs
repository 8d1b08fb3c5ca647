//! Trading an API key for a token: `TokenService::exchange`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keymint_jwks::{Audience, Claims, ClientId, Issuer, Jti, ScopeSet, UnixTime};
use quick_cache::sync::Cache;
use ring::rand::{SecureRandom, SystemRandom};

use super::active_key::{ActiveKey, LAST_USED_PRECISION};
use super::api_key::{self, KeyKind};
use super::audit::AuditSink;
use super::key_hash::KeyHasher;
use super::limits::{self, FailureThrottle};
use super::signing::SigningSet;
use super::{ClientFailure, DomainError, unix};
use crate::store::{AuditRecord, Store};

/// What a client asked for. Every field may only narrow what the key allows.
#[derive(Debug, Default, Clone)]
pub struct TokenRequest {
    /// Space-separated scopes.
    pub scope: Option<String>,
    /// One audience.
    pub audience: Option<String>,
    /// Lifetime in seconds.
    pub ttl: Option<u64>,
    /// Bind the token to this DPoP key thumbprint (RFC 9449 §10): a backend minting a token for
    /// its browser's key.
    pub dpop_jkt: Option<String>,
    /// A `DPoP` proof header (RFC 9449 §5): the token is bound to the proof's key.
    pub dpop_proof: Option<String>,
    /// The path the request was made to, for the proof's `htu`.
    pub path: String,
}

/// Where a request came from.
#[derive(Debug, Clone)]
pub struct ClientContext {
    /// The client IP.
    pub ip: IpAddr,
    /// The `Origin` header.
    pub origin: Option<String>,
}

/// A minted token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The compact JWS. Never logged.
    pub access_token: String,
    /// The real lifetime in seconds.
    pub expires_in: u64,
    /// The granted scopes.
    pub scope: ScopeSet,
    /// `Bearer`, or `DPoP` for a sender-constrained token.
    pub token_type: &'static str,
    /// The browser origin to answer CORS for, when the key allows it.
    pub cors_origin: Option<String>,
}

/// Server-wide token settings.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// `iss`.
    pub issuer: Issuer,
    /// The server's maximum token lifetime (`--max-token-ttl`).
    pub max_token_ttl: Duration,
}

/// The token endpoint's logic. Shared by every request; cheap to clone.
pub struct TokenService<S> {
    store: Arc<S>,
    hasher: KeyHasher,
    signing: Arc<ArcSwap<SigningSet>>,
    settings: TokenSettings,
    /// `<issuer>/v1/admin`, derived once from the issuer rather than on every request.
    admin_audience: Option<Audience>,
    keys: Arc<Cache<String, Arc<ActiveKey>>>,
    throttle: Arc<FailureThrottle>,
    usage: Arc<Mutex<HashMap<String, i64>>>,
    /// Every origin some live publishable key allows: what a CORS preflight may be answered for.
    origins: Arc<ArcSwap<std::collections::HashSet<String>>>,
    /// DPoP proof IDs this process has seen: refuses a local replay without a database round trip.
    /// Every proof is then claimed in the store too, which every replica shares.
    replay: Arc<keymint_verifier::dpop::ReplayCache>,
    audit: AuditSink,
    rng: SystemRandom,
}

impl<S> Clone for TokenService<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            hasher: self.hasher.clone(),
            signing: Arc::clone(&self.signing),
            settings: self.settings.clone(),
            admin_audience: self.admin_audience.clone(),
            keys: Arc::clone(&self.keys),
            throttle: Arc::clone(&self.throttle),
            usage: Arc::clone(&self.usage),
            origins: Arc::clone(&self.origins),
            replay: Arc::clone(&self.replay),
            audit: self.audit.clone(),
            rng: self.rng.clone(),
        }
    }
}

impl<S> std::fmt::Debug for TokenService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<S: Store> TokenService<S> {
    /// A service over `store`, signing with whatever `signing` holds at the time of each request.
    pub fn new(
        store: Arc<S>,
        hasher: KeyHasher,
        signing: Arc<ArcSwap<SigningSet>>,
        settings: TokenSettings,
        audit: AuditSink,
    ) -> Self {
        Self {
            store,
            hasher,
            signing,
            admin_audience: super::admin::admin_audience(&settings.issuer).ok(),
            settings,
            keys: Arc::new(Cache::new(100_000)),
            // 20 failures a minute per IP, then a minute's pause: plenty for a typo, ruinous for a
            // guesser.
            throttle: Arc::new(FailureThrottle::new(
                20,
                Duration::from_secs(60),
                Duration::from_secs(60),
            )),
            usage: Arc::new(Mutex::new(HashMap::new())),
            origins: Arc::new(ArcSwap::from_pointee(std::collections::HashSet::new())),
            replay: Arc::new(keymint_verifier::dpop::ReplayCache::new(
                keymint_verifier::dpop::DEFAULT_REPLAY_CAPACITY,
            )),
            audit,
            rng: SystemRandom::new(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// Forgets a cached key so the next request reads it again (after a change in the database).
    pub fn invalidate(&self, key_id: &str) {
        self.keys.remove(key_id);
    }

    /// Forgets every cached key.
    pub fn invalidate_all(&self) {
        self.keys.clear();
    }

    /// Re-reads the origins of live publishable keys (after a key change).
    pub async fn reload_origins(&self, now: UnixTime) -> Result<(), DomainError> {
        let origins = self.store.publishable_origins(unix(now)).await?;
        self.origins.store(Arc::new(origins.into_iter().collect()));
        Ok(())
    }

    /// Whether some live publishable key allows `origin` (for CORS preflights, which carry no key).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        super::origin::Origin::parse(origin).is_ok_and(|o| self.origins.load().contains(o.as_str()))
    }

    /// Takes the last-used times recorded since the previous call.
    pub fn take_usage(&self) -> Vec<(String, i64)> {
        let mut usage = self
            .usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        usage.drain().collect()
    }

    /// Exchanges a presented key for a token. Every outcome is audited.
    pub async fn exchange(
        &self,
        credential: &str,
        request: &TokenRequest,
        client: &ClientContext,
        now: UnixTime,
    ) -> Result<IssuedToken, DomainError> {
        let mut audit = AuditRecord {
            at: unix(now),
            action: "token.issue".into(),
            client_ip: Some(client.ip.to_string()),
            origin: client.origin.clone(),
            ..AuditRecord::default()
        };
        let result = self
            .exchange_inner(credential, request, client, now, &mut audit)
            .await;
        match &result {
            Ok(t) => {
                audit.outcome = "granted".into();
                audit.scopes = Some(t.scope.to_string());
                metrics::counter!("keymint_tokens_issued_total", "type" => t.token_type)
                    .increment(1);
            }
            Err(e) => {
                metrics::counter!("keymint_tokens_refused_total", "reason" => refusal_code(e))
                    .increment(1);
                audit.outcome = "refused".into();
                audit.reason = Some(match e {
                    DomainError::InvalidClient { reason } => reason.as_str().to_owned(),
                    other => other.to_string(),
                });
                if audit.scopes.is_none() {
                    audit.scopes = request.scope.clone();
                }
            }
        }
        self.audit.record(audit);
        result
    }

    async fn exchange_inner(
        &self,
        credential: &str,
        request: &TokenRequest,
        client: &ClientContext,
        now: UnixTime,
        audit: &mut AuditRecord,
    ) -> Result<IssuedToken, DomainError> {
        let mono = Instant::now();
        if let Some(retry_after) = self.throttle.blocked(client.ip, mono) {
            return Err(DomainError::RateLimited { retry_after });
        }
        let fail = |reason: ClientFailure| {
            self.throttle.failed(client.ip, mono);
            DomainError::InvalidClient { reason }
        };
        let presented = api_key::parse(credential).map_err(|e| match e {
            api_key::KeyFormatError::Checksum => fail(ClientFailure::ChecksumMismatch),
            _ => fail(ClientFailure::MalformedKey),
        })?;
        audit.key_id = Some(presented.key_id.to_string());
        let key = match self.keys.get(presented.key_id.as_str()) {
            Some(k) => k,
            None => {
                let Some(record) = self.store.key(presented.key_id.as_str()).await? else {
                    return Err(fail(ClientFailure::UnknownKey));
                };
                let k = Arc::new(ActiveKey::from_record(record)?);
                self.keys
                    .insert(presented.key_id.to_string(), Arc::clone(&k));
                k
            }
        };
        audit.tenant = Some(key.tenant.to_string());
        if !self.hasher.verify(
            presented.key_id.as_str(),
            presented.secret.expose(),
            &key.record.secret_hash,
        ) {
            return Err(fail(ClientFailure::WrongSecret));
        }
        if key.record.kind != presented.kind.as_str() || key.record.env != presented.env.as_str() {
            return Err(fail(ClientFailure::KindOrEnvMismatch));
        }
        if key.record.revoked_at.is_some() {
            return Err(fail(ClientFailure::RevokedKey));
        }
        let t = unix(now);
        if key.record.expires_at <= t {
            return Err(fail(ClientFailure::ExpiredKey));
        }
        if !key.allow_ips.is_empty() && !key.allow_ips.iter().any(|n| n.contains(&client.ip)) {
            return Err(DomainError::UnauthorizedClient(
                "this key may not be used from this client address".into(),
            ));
        }
        let origin = client.origin.as_deref().map(|o| {
            super::origin::Origin::parse(o)
                .map(|o| o.to_string())
                .unwrap_or_default()
        });
        let origin_allowed = origin
            .as_deref()
            .is_some_and(|o| key.allow_origins.iter().any(|a| a == o));
        let cors_origin = match (presented.kind, origin) {
            (KeyKind::Publishable, None) => {
                return Err(DomainError::UnauthorizedClient(
                    "a publishable key must be used from one of its allowed browser origins (no Origin header came)".into(),
                ));
            }
            (KeyKind::Publishable, Some(_)) if !origin_allowed => {
                return Err(DomainError::UnauthorizedClient(
                    "this origin is not allowed for this publishable key".into(),
                ));
            }
            (KeyKind::Secret, Some(_)) if !origin_allowed => {
                return Err(DomainError::UnauthorizedClient(
                    "a secret key must not be used from a browser: have your backend exchange its secret key \
                     for a narrower, shorter-lived token (backend delegation, optionally bound with dpop_jkt) \
                     and give that token to the page, or use a publishable key"
                        .into(),
                ));
            }
            (_, origin) => origin.filter(|_| origin_allowed),
        };
        if let Some(limiter) = &key.limiter
            && let Some(retry_after) = limits::check(limiter)
        {
            return Err(DomainError::RateLimited { retry_after });
        }
        if let Some(limiter) = &key.ip_limiter
            && let Some(retry_after) = limits::check_keyed(limiter, &client.ip)
        {
            return Err(DomainError::RateLimited { retry_after });
        }
        let requested_jkt = match request.dpop_jkt.as_deref() {
            None => None,
            Some(jkt) if is_thumbprint(jkt) => Some(jkt.to_owned()),
            Some(_) => {
                return Err(DomainError::InvalidRequest(
                    "dpop_jkt must be the base64url SHA-256 JWK thumbprint (43 characters) of the DPoP key".into(),
                ));
            }
        };
        // Checked only now, after the client authenticated, so that anonymous garbage cannot
        // fill the replay cache.
        let proof_jkt = match request.dpop_proof.as_deref() {
            None => None,
            Some(proof) => {
                let url = format!(
                    "{}{}",
                    self.settings.issuer.as_str().trim_end_matches('/'),
                    request.path
                );
                let req = keymint_verifier::dpop::ProofRequirements {
                    method: "POST",
                    url: &url,
                    access_token: None,
                    bound_jkt: None,
                };
                let p = keymint_verifier::dpop::check_proof(
                    proof,
                    &req,
                    &self.replay,
                    None,
                    keymint_verifier::dpop::DEFAULT_PROOF_WINDOW_SECS,
                    now,
                )
                .map_err(|e| match e {
                    keymint_verifier::dpop::ProofError::CacheFull => DomainError::RateLimited {
                        retry_after: Duration::from_secs(1),
                    },
                    other => DomainError::InvalidDpopProof(other.to_string()),
                })?;
                // A proof replayed against another replica: only the shared store knows.
                let id = ring::digest::digest(
                    &ring::digest::SHA256,
                    format!("{}:{}", p.jkt, p.jti).as_bytes(),
                );
                let until = now.0 + keymint_verifier::dpop::DEFAULT_PROOF_WINDOW_SECS + 1;
                let fresh = self
                    .store
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
                Some(p.jkt)
            }
        };
        let cnf = match (proof_jkt, requested_jkt) {
            (Some(a), Some(b)) if a != b => {
                return Err(DomainError::InvalidDpopProof(
                    "dpop_jkt does not match the key of the DPoP proof".into(),
                ));
            }
            (Some(jkt), _) | (None, Some(jkt)) => Some(keymint_jwks::Confirmation { jkt }),
            (None, None) => None,
        };

        let scope = match request.scope.as_deref() {
            None | Some("") => key.scopes.clone(),
            Some(s) => {
                let asked =
                    ScopeSet::parse(s).map_err(|e| DomainError::InvalidScope(e.to_string()))?;
                if !key.scopes.is_superset(&asked) {
                    return Err(DomainError::InvalidScope(
                        "the requested scope exceeds the key's scopes".into(),
                    ));
                }
                asked
            }
        };
        let aud = if key.record.is_admin {
            // Admin keys get the admin audience and nothing else.
            let admin = self.admin_audience.clone().ok_or_else(|| {
                DomainError::Internal("the issuer URL gives no admin audience".into())
            })?;
            match request.audience.as_deref() {
                None => admin,
                Some(a) if a == admin.as_str() => admin,
                Some(_) => {
                    return Err(DomainError::InvalidTarget(
                        "an admin key's tokens are only for the admin API".into(),
                    ));
                }
            }
        } else {
            match request.audience.as_deref() {
                // No other key ever gets the admin audience, whatever its own audiences say.
                Some(a)
                    if self
                        .admin_audience
                        .as_ref()
                        .is_some_and(|x| x.as_str() == a) =>
                {
                    return Err(DomainError::InvalidTarget(
                        "the admin audience is reserved for admin keys".into(),
                    ));
                }
                Some(a) => key
                    .audiences
                    .iter()
                    .find(|k| k.as_str() == a)
                    .cloned()
                    .ok_or_else(|| {
                        DomainError::InvalidTarget(
                            "the requested audience is not one of the key's".into(),
                        )
                    })?,
                None => match key.audiences.as_slice() {
                    [only] => only.clone(),
                    _ => {
                        return Err(DomainError::InvalidTarget(
                            "this key has several audiences: name one with `audience`".into(),
                        ));
                    }
                },
            }
        };
        let requested_ttl = match request.ttl {
            Some(0) => return Err(DomainError::InvalidRequest("ttl must be positive".into())),
            Some(ttl) => ttl,
            None => u64::try_from(key.record.default_ttl).unwrap_or(0),
        };
        let until_key_expiry = u64::try_from(key.record.expires_at - t).unwrap_or(0);
        let ttl = requested_ttl
            .min(u64::try_from(key.record.max_ttl).unwrap_or(0))
            .min(self.settings.max_token_ttl.as_secs())
            .min(until_key_expiry);
        if ttl == 0 {
            return Err(fail(ClientFailure::ExpiredKey));
        }

        let mut jti_bytes = [0u8; 16];
        self.rng
            .fill(&mut jti_bytes)
            .map_err(|_| DomainError::Internal("random generator failed".into()))?;
        let jti = Jti::new(keymint_jwks::jws::encode_segment(&jti_bytes))
            .map_err(|e| DomainError::Internal(e.to_string()))?;
        audit.detail = Some(format!("jti={jti} aud={aud} ttl={ttl}"));
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            sub: key.key_id.clone(),
            aud,
            exp: UnixTime(now.as_secs() + ttl),
            iat: now,
            nbf: Some(now),
            jti,
            client_id: ClientId::new(key.key_id.as_str())
                .map_err(|e| DomainError::Internal(e.to_string()))?,
            scope: scope.clone(),
            tenant: key.tenant.clone(),
            cnf: cnf.clone(),
        };
        let access_token = self
            .signing
            .load()
            .active
            .sign_access_token(&claims)
            .map_err(|e| DomainError::Internal(e.to_string()))?;
        let queued = key
            .last_used_queued
            .load(std::sync::atomic::Ordering::Relaxed);
        if t - queued >= LAST_USED_PRECISION
            && key
                .last_used_queued
                .compare_exchange(
                    queued,
                    t,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_ok()
        {
            self.usage
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(key.record.key_id.clone(), t);
        }
        Ok(IssuedToken {
            access_token,
            expires_in: ttl,
            scope,
            token_type: if cnf.is_some() { "DPoP" } else { "Bearer" },
            cors_origin,
        })
    }
}

fn is_thumbprint(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A small, stable set of refusal reasons for metrics (never anything a client chose).
fn refusal_code(e: &DomainError) -> &'static str {
    match e {
        DomainError::InvalidClient { reason } => reason.metric_code(),
        DomainError::InvalidScope(_) => "invalid_scope",
        DomainError::InvalidTarget(_) => "invalid_target",
        DomainError::InvalidRequest(_) => "invalid_request",
        DomainError::InvalidDpopProof(_) => "invalid_dpop_proof",
        DomainError::UnauthorizedClient(_) => "unauthorized_client",
        DomainError::RateLimited { .. } => "rate_limited",
        DomainError::Unavailable(_) => "unavailable",
        _ => "internal",
    }
}
