//! Trading an API key for a token: `TokenService::exchange`.

mod active_key;
mod authenticate;
mod dpop_binding;
mod grant;
mod grant_text;
mod request;
pub mod throttle;
mod watch;

use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use keymint_jwks::{ApiKeyId, Audience, Claims, ClientId, Jti, UnixTime};
use quick_cache::sync::Cache;
use ring::rand::{SecureRandom, SystemRandom};

pub use self::request::{Asked, IssuedToken, TokenRequest};
use self::throttle::Throttle;
use crate::domain::ClientFailure;
use crate::domain::client::ClientContext;
use crate::domain::clock::Ticker;
use crate::domain::keys::api_key::KeyKind;
use crate::domain::keys::key_hash::KeyHasher;
use crate::domain::keys::limits::KeyLimits;
use crate::domain::refusal::ClientRefusal;
use crate::domain::settings::{Settings, SharedSettings};
use crate::domain::signing::SigningSet;
use crate::domain::token::active_key::{ActiveKey, KeyCache};
use crate::domain::unix;
use crate::domain::usage::{Issued, Outcome, Presented, Usage, UsageLog};
use crate::domain::{DomainError, Fault};
use crate::store::Store;

/// How many keys the token endpoint keeps parsed in memory (and how many keys' rate limiters).
const KEY_CACHE: usize = 100_000;

/// How many unknown key IDs are remembered.
const UNKNOWN_CACHE: usize = 100_000;

/// The token endpoint's logic. Shared by every request; cheap to clone.
pub struct TokenService<S> {
    store: Arc<S>,
    hasher: KeyHasher,
    signing: Arc<ArcSwap<SigningSet>>,
    /// The issuer URL and the longest token lifetime (with the admin audience derived from the
    /// issuer once), swapped when an admin changes them.
    settings: SharedSettings,
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
    /// Last-used times waiting for the database.
    last_used: Arc<Mutex<HashMap<ApiKeyId, i64>>>,
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
    uses: UsageLog,
    rng: SystemRandom,
}

impl<S> Clone for TokenService<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            hasher: self.hasher.clone(),
            signing: Arc::clone(&self.signing),
            settings: Arc::clone(&self.settings),
            keys: Arc::clone(&self.keys),
            feed_read_at: Arc::clone(&self.feed_read_at),
            limits: Arc::clone(&self.limits),
            throttle: Arc::clone(&self.throttle),
            ticker: self.ticker.clone(),
            unknown: Arc::clone(&self.unknown),
            last_used: Arc::clone(&self.last_used),
            origins: Arc::clone(&self.origins),
            public_scopes: Arc::clone(&self.public_scopes),
            public_scopes_reload: Arc::clone(&self.public_scopes_reload),
            replay: Arc::clone(&self.replay),
            uses: self.uses.clone(),
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
        settings: SharedSettings,
        uses: UsageLog,
    ) -> Self {
        Self {
            store,
            hasher,
            signing,
            settings,
            keys: Arc::new(KeyCache::new(KEY_CACHE)),
            feed_read_at: Arc::new(AtomicI64::new(0)),
            limits: Arc::new(Cache::new(KEY_CACHE)),
            throttle: Arc::new(Throttle::new()),
            ticker: Ticker::system(),
            unknown: Arc::new(Cache::new(UNKNOWN_CACHE)),
            last_used: Arc::new(Mutex::new(HashMap::new())),
            origins: Arc::new(ArcSwap::from_pointee(std::collections::HashSet::new())),
            public_scopes: Arc::new(ArcSwap::from_pointee(std::collections::HashSet::new())),
            public_scopes_reload: Arc::new(tokio::sync::Mutex::new(())),
            replay: Arc::new(keymint_verifier::dpop::ReplayCache::new(
                keymint_verifier::dpop::DEFAULT_REPLAY_CAPACITY,
            )),
            uses,
            rng: SystemRandom::new(),
        }
    }

    /// The same service on another monotonic clock (tests move a [`Ticker::manual`]). Call it
    /// before the first request: limiters already built keep the clock they were built with.
    pub fn with_ticker(mut self, ticker: Ticker) -> Self {
        self.ticker = ticker;
        self
    }

    /// The settings in force.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// Exchanges a presented key for a token. Every outcome is audited.
    pub async fn exchange(
        &self,
        credential: &str,
        request: &TokenRequest,
        client: &ClientContext,
        now: UnixTime,
    ) -> Result<IssuedToken, DomainError> {
        let mut seen = Seen::default();
        let asked;
        let result = self
            .exchange_inner(credential, request, client, now, &mut seen)
            .await;
        let (outcome, code, reason, scopes) = match &result {
            Ok(t) => {
                issued_counter(t.token_type).increment(1);
                (Outcome::Granted, "", None, Some(t.scope.as_str()))
            }
            Err(e) => {
                let code = refusal_code(e);
                metrics::counter!("keymint_tokens_refused_total", "reason" => code).increment(1);
                let reason = match e {
                    DomainError::InvalidClient { reason } => reason.as_str().to_owned(),
                    other => other.to_string(),
                };
                asked = request
                    .scope
                    .as_ref()
                    .and_then(Asked::valid)
                    .map(ToString::to_string);
                (Outcome::Refused, code, Some(reason), asked.as_deref())
            }
        };
        let key = match (&seen.key, &seen.presented) {
            // The ID as presented is the key's own (the cache matched it byte for byte).
            // A refusal of a publishable key counts like a wrong secret: its "secret" is in
            // every page that uses it, so anyone can send it with forged origins.
            (Some(k), Some(id))
                if seen.verified && (result.is_ok() || k.kind == KeyKind::Secret) =>
            {
                Presented::Known(id.as_str())
            }
            (Some(_), Some(id)) => Presented::Claimed(id.as_str()),
            (Some(k), None) => Presented::Known(k.key_id.as_str()),
            (None, Some(id)) => Presented::Unknown(id.as_str()),
            (None, None) => Presented::None,
        };
        self.uses.record(&Usage {
            at: unix(now),
            action: "token.issue",
            outcome,
            code,
            reason: reason.as_deref(),
            key,
            tenant: seen.key.as_ref().map(|k| k.grant.tenant()),
            scopes,
            client: client.ip,
            origin: client.origin.as_deref(),
            issued: seen.issued.as_ref().map(|(jti, aud, ttl)| Issued {
                jti: jti.as_str(),
                aud: aud.as_str(),
                ttl: *ttl,
            }),
        });
        result
    }

    async fn exchange_inner(
        &self,
        credential: &str,
        request: &TokenRequest,
        client: &ClientContext,
        now: UnixTime,
        seen: &mut Seen,
    ) -> Result<IssuedToken, DomainError> {
        self.check_feed(now)?;
        // One consistent set for the whole request, even if an admin changes them meanwhile.
        let settings = self.settings.load_full();
        let (kind, key) = self.authenticate(credential, client.ip, now, seen).await?;
        // A key refused for the client's address may be a stolen one: counted against the
        // client like a wrong secret.
        if !key.admits(client.ip) {
            self.throttle.failed(client.ip, self.ticker.now());
            return Err(DomainError::UnauthorizedClient(ClientRefusal::Address));
        }
        // Before the origin check: a publishable key's secret is in every page that uses it, so
        // anyone can send it with a forged `Origin`; those refusals spend the key's quota for
        // that client (429 once spent) rather than count against the client for every key (a
        // mobile app or a shared egress address sending a wrong origin would block its
        // neighbours' keys).
        key.check_rate(&client.ip)?;
        let cors_origin = key.browser_origin(kind, client.origin.as_deref())?;
        let binding = dpop_binding::binding(settings.issuer(), request, now)?;
        // The key's tenant, audiences and scopes, held inline in the cached key.
        let held = key.grant.parts();
        let mut scope = grant::scope(held, request.scope.as_ref())?;
        if kind == KeyKind::Publishable {
            scope = grant::public_only(scope, request.scope.as_ref(), &self.public_scopes.load())?;
        }
        let aud = grant::audience(
            &key,
            held,
            request.audience.as_ref(),
            Some(settings.admin_audience()),
        )?;
        let t = unix(now);
        let ttl = grant::lifetime(&key, request.ttl, settings.max_token_ttl(), t)?;
        if ttl == 0 {
            return Err(self.failed(client.ip, ClientFailure::ExpiredKey));
        }
        // Last of the checks: only a request that will be granted claims its proof's ID. The
        // holder is the key ID as presented (see `sub` below).
        let holder = seen.presented.as_ref().unwrap_or(&key.key_id);
        let cnf = binding
            .claim(&*self.store, &self.replay, holder.as_str(), now)
            .await?;

        let jti = self.new_jti()?;
        // The ID as the client presented it, which the key cache matched byte for byte with the
        // key's own: it is in this request's memory, where the key's copy is one more cache miss
        // per request under load spread over many keys.
        let sub = seen.presented.clone().unwrap_or_else(|| key.key_id.clone());
        let claims = Claims {
            iss: settings.issuer().clone(),
            aud,
            exp: UnixTime(now.as_secs() + ttl),
            iat: now,
            nbf: Some(now),
            jti,
            client_id: ClientId::new(sub.as_str())
                .map_err(|e| DomainError::Internal(Fault::because("client_id", e)))?,
            sub,
            scope,
            tenant: held
                .tenant_id()
                .map_err(|e| DomainError::Internal(Fault::because("a cached key's tenant", e)))?,
            cnf,
        };
        let access_token = self
            .signing
            .load()
            .active
            .sign_access_token(&claims)
            .map_err(|e| DomainError::Internal(Fault::because("signing a token", e)))?;
        if key.note_use(t) {
            self.last_used
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(key.key_id.clone(), t);
        }
        let token_type = if claims.cnf.is_some() {
            "DPoP"
        } else {
            "Bearer"
        };
        // Moved out of the signed claims for the audit line rather than copied or formatted
        // before signing: nothing per request that the line does not need.
        seen.issued = Some((claims.jti, claims.aud, ttl));
        Ok(IssuedToken {
            access_token,
            expires_in: ttl,
            token_type,
            // Written once, for both the answer and the audit line.
            scope: claims.scope.to_string(),
            cors_origin,
        })
    }

    fn new_jti(&self) -> Result<Jti, DomainError> {
        let mut bytes = [0u8; 16];
        self.rng
            .fill(&mut bytes)
            .map_err(|_| DomainError::Internal(Fault::new("random generator failed")))?;
        Jti::new(keymint_jwks::jws::encode_segment(&bytes))
            .map_err(|e| DomainError::Internal(Fault::because("a generated jti", e)))
    }
}

/// What a request turned out to present, for its audit line and usage count.
#[derive(Default)]
pub(super) struct Seen {
    /// The key ID read from the credential.
    presented: Option<ApiKeyId>,
    /// The key it names, once found.
    key: Option<Arc<ActiveKey>>,
    /// Whether the presented secret was the key's.
    verified: bool,
    /// The `jti`, audience and lifetime of the token issued.
    issued: Option<(Jti, Audience, u64)>,
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
        DomainError::OwnListExpired => "revocation_list_expired",
        DomainError::ReportRefused(r) => r.code(),
        DomainError::AdminUnauthenticated(_)
        | DomainError::AdminForbidden { .. }
        | DomainError::NotFound(_)
        | DomainError::Invalid(_)
        | DomainError::Conflict(_)
        | DomainError::Corrupt(_)
        | DomainError::Internal(_) => "internal",
    }
}

/// `keymint_tokens_issued_total` by token type, registered once: finding a labelled series in the
/// recorder's registry on every issuance was about 0.7 % of the token endpoint's CPU (`perf`).
/// The handles are taken at the first issuance, so the recorder must be installed before it: the
/// server installs it when it builds the router (`http::metrics::install`), as for the request
/// series cached there.
fn issued_counter(token_type: &'static str) -> &'static metrics::Counter {
    static ISSUED: std::sync::LazyLock<[metrics::Counter; 2]> = std::sync::LazyLock::new(|| {
        [
            metrics::counter!("keymint_tokens_issued_total", "type" => "Bearer"),
            metrics::counter!("keymint_tokens_issued_total", "type" => "DPoP"),
        ]
    });
    let [bearer, dpop] = &*ISSUED;
    if token_type == "DPoP" { dpop } else { bearer }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn debug_of_an_issued_token_leaves_the_token_out() {
        let t = IssuedToken {
            access_token: "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJrMSJ9.c2lnbmF0dXJl".into(),
            expires_in: 600,
            scope: "a".into(),
            token_type: "Bearer",
            cors_origin: None,
        };
        let shown = format!("{t:?}");
        assert!(!shown.contains("eyJ"), "{shown}");
        assert!(shown.contains("600"), "{shown}");
    }
}
