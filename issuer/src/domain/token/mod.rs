//! Trading an API key for a token: `TokenService::exchange`.

mod active_key;
mod dpop_binding;
mod grant;
mod request;
pub mod throttle;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use keymint_jwks::{ApiKeyId, Audience, Claims, ClientId, Jti, PROPAGATION_BOUND, UnixTime};
use quick_cache::sync::Cache;
use ring::rand::{SecureRandom, SystemRandom};

pub use self::request::{Asked, IssuedToken, TokenRequest, TokenSettings};
use self::throttle::Throttle;
use crate::domain::ClientFailure;
use crate::domain::DomainError;
use crate::domain::audit::AuditSink;
use crate::domain::client::ClientContext;
use crate::domain::clock::Ticker;
use crate::domain::keys::api_key::{self, KeyKind};
use crate::domain::keys::key_hash::KeyHasher;
use crate::domain::keys::limits::{KeyLimits, RateSetting};
use crate::domain::signing::SigningSet;
use crate::domain::token::active_key::{ActiveKey, KeyCache};
use crate::domain::unix;
use crate::store::{AuditRecord, KeyRecord, Store, StoreError};

/// How many keys the token endpoint keeps parsed in memory (and how many keys' rate limiters).
const KEY_CACHE: usize = 100_000;

/// How many unknown key IDs are remembered.
const UNKNOWN_CACHE: usize = 100_000;

/// The token endpoint's logic. Shared by every request; cheap to clone.
pub struct TokenService<S> {
    store: Arc<S>,
    hasher: KeyHasher,
    signing: Arc<ArcSwap<SigningSet>>,
    settings: TokenSettings,
    /// `<issuer>/v1/admin`, derived once from the issuer rather than on every request.
    admin_audience: Option<Audience>,
    keys: Arc<KeyCache>,
    /// When the change watcher last read the feed (Unix seconds; 0 while none runs, as in
    /// one-shot commands and router tests).
    feed_read_at: Arc<AtomicI64>,
    /// Each key's rate limiters, by key ID: a key re-read after a change keeps the quota it has
    /// spent (a limiter that reset whenever an admin touched the key would be no limit).
    limits: Arc<Cache<String, Arc<KeyLimits>>>,
    throttle: Arc<Throttle>,
    /// The monotonic clock of the throttle and the rate limiters.
    ticker: Ticker,
    /// Key IDs the database did not know, so that guessing the same ID again costs no lookup.
    /// Bounded; an ID is forgotten when a key with it is created (the change feed says so).
    unknown: Arc<Cache<String, ()>>,
    usage: Arc<Mutex<HashMap<ApiKeyId, i64>>>,
    /// Every origin some live publishable key allows: what a CORS preflight may be answered for.
    origins: Arc<ArcSwap<std::collections::HashSet<String>>>,
    /// The scopes an admin has marked public, re-read when a scope changes: what a publishable key
    /// may mint, checked at every issuance.
    public_scopes: Arc<ArcSwap<std::collections::HashSet<String>>>,
    /// Serializes re-reads of the public scopes, so that a slow read never overwrites a newer one.
    public_scopes_reload: Arc<tokio::sync::Mutex<()>>,
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
            feed_read_at: Arc::clone(&self.feed_read_at),
            limits: Arc::clone(&self.limits),
            throttle: Arc::clone(&self.throttle),
            ticker: self.ticker.clone(),
            unknown: Arc::clone(&self.unknown),
            usage: Arc::clone(&self.usage),
            origins: Arc::clone(&self.origins),
            public_scopes: Arc::clone(&self.public_scopes),
            public_scopes_reload: Arc::clone(&self.public_scopes_reload),
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
            admin_audience: crate::domain::reserved::admin_audience(&settings.issuer).ok(),
            settings,
            keys: Arc::new(KeyCache::new(KEY_CACHE)),
            feed_read_at: Arc::new(AtomicI64::new(0)),
            limits: Arc::new(Cache::new(KEY_CACHE)),
            throttle: Arc::new(Throttle::new()),
            ticker: Ticker::system(),
            unknown: Arc::new(Cache::new(UNKNOWN_CACHE)),
            usage: Arc::new(Mutex::new(HashMap::new())),
            origins: Arc::new(ArcSwap::from_pointee(std::collections::HashSet::new())),
            public_scopes: Arc::new(ArcSwap::from_pointee(std::collections::HashSet::new())),
            public_scopes_reload: Arc::new(tokio::sync::Mutex::new(())),
            replay: Arc::new(keymint_verifier::dpop::ReplayCache::new(
                keymint_verifier::dpop::DEFAULT_REPLAY_CAPACITY,
            )),
            audit,
            rng: SystemRandom::new(),
        }
    }

    /// The same service on another monotonic clock (tests move a [`Ticker::manual`]). Call it
    /// before the first request: limiters already built keep the clock they were built with.
    pub fn with_ticker(mut self, ticker: Ticker) -> Self {
        self.ticker = ticker;
        self
    }

    /// The settings.
    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// Forgets a cached key so the next request reads it again (after a change in the database).
    pub fn invalidate(&self, key_id: &str) {
        self.keys.invalidate(key_id);
        self.unknown.remove(key_id);
    }

    /// Records that the change watcher has just read the feed: until `now` plus the propagation
    /// bound, keys held in memory may be used without asking the database.
    pub fn feed_read(&self, now: UnixTime) {
        self.feed_read_at.store(unix(now), Ordering::Relaxed);
    }

    /// Refuses to issue (503) once the change feed has gone unread for longer than the
    /// propagation bound: a key held in memory may have been revoked meanwhile, and verifiers
    /// count on an issuer learning of a revocation within that bound.
    fn check_feed(&self, now: UnixTime) -> Result<(), DomainError> {
        let read_at = self.feed_read_at.load(Ordering::Relaxed);
        let bound = i64::try_from(PROPAGATION_BOUND.as_secs()).unwrap_or(i64::MAX);
        let unread = unix(now).saturating_sub(read_at);
        if read_at > 0 && unread > bound {
            return Err(DomainError::Unavailable(StoreError::unavailable(format!(
                "the change feed has not been read for {unread} s"
            ))));
        }
        Ok(())
    }

    /// Forgets every cached key.
    pub fn invalidate_all(&self) {
        self.keys.clear();
        self.unknown.clear();
    }

    /// Re-reads the origins of live publishable keys (after a key change).
    pub async fn reload_origins(&self, now: UnixTime) -> Result<(), DomainError> {
        let origins = self.store.publishable_origins(unix(now)).await?;
        self.origins.store(Arc::new(origins.into_iter().collect()));
        Ok(())
    }

    /// Re-reads which scopes are public (at start and after a scope change).
    pub async fn reload_public_scopes(&self) -> Result<(), DomainError> {
        // Read and store as one step: a first-read reload that read before an admin's change
        // must not store its older set after the watcher stored the newer one.
        let _one_at_a_time = self.public_scopes_reload.lock().await;
        let public = self
            .store
            .scopes()
            .await?
            .into_iter()
            .filter(|s| s.visibility.is_public())
            .map(|s| s.name.to_string())
            .collect();
        self.public_scopes.store(Arc::new(public));
        Ok(())
    }

    /// Whether some live publishable key allows `origin` (for CORS preflights, which carry no key).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        crate::domain::keys::origin::Origin::parse(origin)
            .is_ok_and(|o| self.origins.load().contains(o.as_str()))
    }

    /// Takes the last-used times recorded since the previous call.
    pub fn take_usage(&self) -> Vec<(ApiKeyId, i64)> {
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
                    audit.scopes = request
                        .scope
                        .as_ref()
                        .and_then(Asked::valid)
                        .map(ToString::to_string);
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
        self.check_feed(now)?;
        let (kind, key) = self.authenticate(credential, client.ip, now, audit).await?;
        if !key.admits(client.ip) {
            return Err(DomainError::UnauthorizedClient(
                "this key may not be used from this client address".into(),
            ));
        }
        let cors_origin = key.browser_origin(kind, client.origin.as_deref())?;
        key.check_rate(&client.ip)?;
        let binding = dpop_binding::binding(&self.settings.issuer, request, now)?;
        let mut scope = grant::scope(&key, request.scope.as_ref())?;
        if kind == KeyKind::Publishable {
            scope = grant::public_only(scope, request.scope.as_ref(), &self.public_scopes.load())?;
        }
        let aud = grant::audience(
            &key,
            request.audience.as_ref(),
            self.admin_audience.as_ref(),
        )?;
        let t = unix(now);
        let ttl = grant::lifetime(&key, request.ttl, self.settings.max_token_ttl, t)?;
        if ttl == 0 {
            return Err(self.failed(client.ip, ClientFailure::ExpiredKey));
        }
        // Last of the checks: only a request that will be granted claims its proof's ID.
        let cnf = binding
            .claim(&*self.store, &self.replay, key.key_id.as_str(), now)
            .await?;

        let jti = self.new_jti()?;
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
        if key.note_use(t) {
            self.usage
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(key.key_id.clone(), t);
        }
        Ok(IssuedToken {
            access_token,
            expires_in: ttl,
            scope,
            token_type: if cnf.is_some() { "DPoP" } else { "Bearer" },
            cors_origin,
        })
    }

    /// The key behind `credential` if it is well formed, known, its secret right, and it is
    /// active; each failure counts against the client IP, and a blocked IP is refused at once.
    async fn authenticate(
        &self,
        credential: &str,
        ip: IpAddr,
        now: UnixTime,
        audit: &mut AuditRecord,
    ) -> Result<(KeyKind, Arc<ActiveKey>), DomainError> {
        if let Some(retry_after) = self.throttle.blocked(ip, self.ticker.now()) {
            return Err(DomainError::RateLimited { retry_after });
        }
        let presented = api_key::parse(credential).map_err(|e| match e {
            api_key::KeyFormatError::Checksum => self.failed(ip, ClientFailure::ChecksumMismatch),
            _ => self.failed(ip, ClientFailure::MalformedKey),
        })?;
        audit.key_id = Some(presented.key_id.to_string());
        let key = match self.keys.get(presented.key_id.as_str()) {
            Some(k) => k,
            None => {
                let id = presented.key_id.as_str();
                if self.unknown.get(id).is_some() {
                    return Err(self.failed(ip, ClientFailure::UnknownKey));
                }
                if !self.throttle.lookup_allowed(self.ticker.now()) {
                    // Under a spread-out guessing attack: cold keys wait, cached keys do not.
                    return Err(DomainError::RateLimited {
                        retry_after: Duration::from_secs(1),
                    });
                }
                let generation = self.keys.generation();
                let Some(record) = self.store.key(&presented.key_id).await? else {
                    self.unknown.insert(id.to_owned(), ());
                    return Err(self.failed(ip, ClientFailure::UnknownKey));
                };
                if ActiveKey::limited_per_client(&record) {
                    // A publishable key read for the first time may carry a scope made public
                    // moments ago, before the change watcher got to it: read the public set now
                    // (a key is read once, then cached), so a new key works at once.
                    self.reload_public_scopes().await?;
                }
                let k = Arc::new(ActiveKey::from_record(record, |r| self.limits_for(r))?);
                self.keys.insert(&k, generation);
                k
            }
        };
        audit.tenant = Some(key.tenant.to_string());
        let refused = if !self.hasher.verify(
            presented.key_id.as_str(),
            presented.secret.expose(),
            &key.record.secret_hash,
        ) {
            Some(ClientFailure::WrongSecret)
        } else if key.record.kind != presented.kind.as_str()
            || key.record.env != presented.env.as_str()
        {
            Some(ClientFailure::KindOrEnvMismatch)
        } else if key.record.revoked_at.is_some() {
            Some(ClientFailure::RevokedKey)
        } else if key.record.expires_at <= unix(now) {
            Some(ClientFailure::ExpiredKey)
        } else {
            None
        };
        match refused {
            Some(reason) => Err(self.failed(ip, reason)),
            None => Ok((presented.kind, key)),
        }
    }

    /// The limiters for `record`: the ones already counting for this key if its limit has not
    /// changed, new ones otherwise.
    fn limits_for(&self, record: &KeyRecord) -> Arc<KeyLimits> {
        let rate = RateSetting::of(record.rate_limit.as_deref());
        let per_client = ActiveKey::limited_per_client(record);
        if let Some(l) = self.limits.get(&record.key_id)
            && l.serve(rate, per_client)
        {
            return l;
        }
        let fresh = Arc::new(KeyLimits::new(rate, per_client, &self.ticker));
        self.limits
            .insert(record.key_id.clone(), Arc::clone(&fresh));
        fresh
    }

    /// If `ip`'s client is blocked for failing too often, for how long still.
    pub fn blocked(&self, ip: IpAddr) -> Option<Duration> {
        self.throttle.blocked(ip, self.ticker.now())
    }

    /// A request refused before any key was looked at (no credentials, malformed Basic, a
    /// `client_id` that is not the key's, a key in the query string or sent in clear, a bad admin
    /// token): one audit line with the client's address and the reason, counted against the
    /// client like a wrong key. In the database it adds to a count (never a row a request), so a
    /// flood of such requests grows no table.
    /// How long the client is now blocked, if it is.
    pub fn refuse_request(
        &self,
        action: &str,
        client: &ClientContext,
        reason: &str,
        now: UnixTime,
    ) -> Option<Duration> {
        // A client already blocked is refused at once; its further refusals are not counted.
        let already = self.throttle.blocked(client.ip, self.ticker.now());
        self.note_refusal(action, client, reason, now);
        if already.is_some() {
            return already;
        }
        self.throttle.failed(client.ip, self.ticker.now());
        self.throttle.blocked(client.ip, self.ticker.now())
    }

    /// A refusal that is not a failed authentication (a valid admin token without the scope, a
    /// fault of the issuer's own): the same audit line and count as [`Self::refuse_request`],
    /// without counting against the client.
    pub fn note_refusal(&self, action: &str, client: &ClientContext, reason: &str, now: UnixTime) {
        self.audit.record(AuditRecord {
            at: unix(now),
            action: action.into(),
            outcome: "refused".into(),
            reason: Some(reason.chars().take(200).collect()),
            client_ip: Some(client.ip.to_string()),
            origin: client.origin.clone(),
            ..AuditRecord::default()
        });
        metrics::counter!("keymint_requests_refused_total", "action" => action.to_owned())
            .increment(1);
    }

    /// Counts a failed authentication against `ip` and says why it failed.
    fn failed(&self, ip: IpAddr, reason: ClientFailure) -> DomainError {
        self.throttle.failed(ip, self.ticker.now());
        DomainError::InvalidClient { reason }
    }

    fn new_jti(&self) -> Result<Jti, DomainError> {
        let mut bytes = [0u8; 16];
        self.rng
            .fill(&mut bytes)
            .map_err(|_| DomainError::Internal("random generator failed".into()))?;
        Jti::new(keymint_jwks::jws::encode_segment(&bytes))
            .map_err(|e| DomainError::Internal(e.to_string()))
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use keymint_jwks::ScopeSet;

    #[test]
    fn debug_of_an_issued_token_leaves_the_token_out() {
        let t = IssuedToken {
            access_token: "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJrMSJ9.c2lnbmF0dXJl".into(),
            expires_in: 600,
            scope: ScopeSet::parse("a").unwrap(),
            token_type: "Bearer",
            cors_origin: None,
        };
        let shown = format!("{t:?}");
        assert!(!shown.contains("eyJ"), "{shown}");
        assert!(shown.contains("600"), "{shown}");
    }
}
