//! What a new API key may be: the defaults and limits by kind, the checks a request to create
//! one must pass (scopes, audiences, reserved names, lifetimes, publishable-key rules), and the
//! row it becomes.

use std::time::Duration;

use ipnet::IpNet;
use keymint_jwks::{ApiKeyId, Audience, ScopeSet, TenantId, UnixTime};

use crate::domain::DomainError;
use crate::domain::keys::api_key::{KeyEnv, KeyKind};
use crate::domain::keys::limits::RateSpec;
use crate::domain::keys::origin::Origin;
use crate::domain::refusal::InvalidInput;
use crate::domain::unix;
use crate::store::{KeyRecord, Store};

/// Default key lifetime (keys must rotate).
pub const DEFAULT_KEY_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);
/// The longest key lifetime accepted.
pub const MAX_KEY_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);
/// Default token lifetime.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(600);
/// Default maximum token lifetime a key may request.
pub const DEFAULT_KEY_MAX_TTL: Duration = Duration::from_secs(3600);
/// Default token lifetime of a publishable (browser) key.
pub const PUBLISHABLE_DEFAULT_TTL: Duration = Duration::from_secs(300);
/// The longest token a publishable key may ever get.
pub const PUBLISHABLE_MAX_TTL: Duration = Duration::from_secs(600);
/// Default rate limit of a publishable key as a whole; each client IP gets a tenth of it.
pub const PUBLISHABLE_DEFAULT_RATE: &str = "600/m";
/// Default grace period of the old key after a rotation.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// What a new key should be.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Secret (server-side) or publishable (browser).
    pub kind: KeyKind,
    /// Browser origins allowed to use the key (required for publishable keys).
    pub allow_origins: Vec<Origin>,
    /// Tenant.
    pub tenant: TenantId,
    /// Scopes (at least one).
    pub scopes: ScopeSet,
    /// Audiences (at least one).
    pub audiences: Vec<Audience>,
    /// Default token lifetime (default: 10 min, 5 min for publishable keys).
    pub ttl: Option<Duration>,
    /// Maximum token lifetime (default: 1 h, 10 min for publishable keys).
    pub max_ttl: Option<Duration>,
    /// Key lifetime.
    pub expires_in: Duration,
    /// Label.
    pub label: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Allowed client networks (empty: any).
    pub allow_ips: Vec<IpNet>,
    /// Rate limit (publishable keys: default 600/m for the key, a tenth of it per client IP).
    pub rate_limit: Option<RateSpec>,
    /// Environment.
    pub env: KeyEnv,
}

#[cfg(test)]
impl NewKey {
    /// A secret live key of tenant `acme`, scope `a`, audience `https://api.test`, valid an hour,
    /// with nothing else set: each test sets the fields it is about.
    #[allow(clippy::unwrap_used)]
    pub(crate) fn for_tests() -> Self {
        Self {
            kind: KeyKind::Secret,
            allow_origins: vec![],
            tenant: TenantId::new("acme").unwrap(),
            scopes: ScopeSet::parse("a").unwrap(),
            audiences: vec![Audience::new("https://api.test").unwrap()],
            ttl: None,
            max_ttl: None,
            expires_in: Duration::from_secs(3600),
            label: None,
            owner: None,
            allow_ips: vec![],
            rate_limit: None,
            env: KeyEnv::Live,
        }
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// A new key with its defaults resolved by kind.
pub(super) struct Resolved {
    ttl: Duration,
    max_ttl: Duration,
    rate_limit: Option<RateSpec>,
}

fn validate(new: &NewKey, public_scopes: &[String]) -> Result<Resolved, DomainError> {
    if new.scopes.is_empty() {
        return Err(DomainError::Invalid(InvalidInput::NoScope));
    }
    if let Some(s) = new.scopes.iter().find(|s| s.is_admin()) {
        return Err(DomainError::Invalid(InvalidInput::ReservedScope(s.clone())));
    }
    if new.audiences.is_empty() {
        return Err(DomainError::Invalid(InvalidInput::NoAudience));
    }
    if new.tenant.as_str() == crate::domain::reserved::ADMIN_TENANT {
        return Err(DomainError::Invalid(InvalidInput::ReservedTenant));
    }
    let publishable = new.kind == KeyKind::Publishable;
    let (ttl, max_ttl) = if publishable {
        if new.allow_origins.is_empty() {
            return Err(DomainError::Invalid(InvalidInput::NoOrigin));
        }
        if let Some(s) = new
            .scopes
            .iter()
            .find(|s| !public_scopes.iter().any(|p| p == s.as_str()))
        {
            return Err(DomainError::Invalid(InvalidInput::NotPublic(s.clone())));
        }
        let max_ttl = new.max_ttl.unwrap_or(PUBLISHABLE_MAX_TTL);
        if max_ttl > PUBLISHABLE_MAX_TTL {
            return Err(DomainError::Invalid(InvalidInput::PublishableTtl(
                PUBLISHABLE_MAX_TTL,
            )));
        }
        (
            new.ttl.unwrap_or(PUBLISHABLE_DEFAULT_TTL.min(max_ttl)),
            max_ttl,
        )
    } else {
        (
            new.ttl.unwrap_or(DEFAULT_TOKEN_TTL),
            new.max_ttl.unwrap_or(DEFAULT_KEY_MAX_TTL),
        )
    };
    if ttl.is_zero() || ttl > max_ttl {
        return Err(DomainError::Invalid(InvalidInput::Ttl));
    }
    if new.expires_in.is_zero() || new.expires_in > MAX_KEY_LIFETIME {
        return Err(DomainError::Invalid(InvalidInput::KeyLifetime(
            MAX_KEY_LIFETIME,
        )));
    }
    let rate_limit = match (new.rate_limit, publishable) {
        (Some(r), _) => Some(r),
        (None, true) => RateSpec::parse(PUBLISHABLE_DEFAULT_RATE),
        (None, false) => None,
    };
    Ok(Resolved {
        ttl,
        max_ttl,
        rate_limit,
    })
}

pub(super) fn record_for(
    new: &NewKey,
    resolved: &Resolved,
    key_id: &ApiKeyId,
    secret_hash: Vec<u8>,
    now: UnixTime,
) -> KeyRecord {
    KeyRecord {
        key_id: key_id.to_string(),
        kind: new.kind.as_str().into(),
        env: new.env.as_str().into(),
        tenant: new.tenant.to_string(),
        secret_hash,
        scopes: new.scopes.to_string(),
        audiences: new
            .audiences
            .iter()
            .map(Audience::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        default_ttl: secs(resolved.ttl),
        max_ttl: secs(resolved.max_ttl),
        expires_at: unix(now.saturating_add(new.expires_in)),
        allow_ips: new
            .allow_ips
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        allow_origins: new
            .allow_origins
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        rate_limit: resolved.rate_limit.map(|r| r.to_string()),
        label: new.label.clone(),
        owner: new.owner.clone(),
        is_admin: false,
        created_at: unix(now),
        last_used_at: None,
        revoked_at: None,
        rotated_to: None,
    }
}

/// Everything a new key must pass, with its defaults resolved.
pub(super) async fn check<S: Store>(store: &S, new: &NewKey) -> Result<Resolved, DomainError> {
    let resolved = validate(new, &public_scopes(store, new).await?)?;
    refuse_admin_audience(store, new).await?;
    Ok(resolved)
}

async fn public_scopes<S: Store>(store: &S, new: &NewKey) -> Result<Vec<String>, DomainError> {
    if new.kind != KeyKind::Publishable {
        return Ok(Vec::new());
    }
    public_scope_names(store).await
}

/// The scopes an admin has marked public: what publishable keys may hold.
pub(crate) async fn public_scope_names<S: Store, C: FromIterator<String>>(
    store: &S,
) -> Result<C, DomainError> {
    Ok(store
        .scopes()
        .await?
        .into_iter()
        .filter(|s| s.visibility.is_public())
        .map(|s| s.name.to_string())
        .collect())
}

/// Refuses `<issuer>/v1/admin` as a customer key's audience once the issuer URL is known (a
/// server has run on this database). The token endpoint refuses it in any case.
async fn refuse_admin_audience<S: Store>(store: &S, new: &NewKey) -> Result<(), DomainError> {
    let Some(issuer) = store.setting("issuer").await? else {
        return Ok(());
    };
    let Ok(admin) = keymint_jwks::Issuer::new(issuer.as_str())
        .map_err(|_| ())
        .and_then(|i| crate::domain::reserved::admin_audience(&i).map_err(|_| ()))
    else {
        return Ok(());
    };
    if new.audiences.contains(&admin) {
        return Err(DomainError::Invalid(InvalidInput::ReservedAudience(admin)));
    }
    Ok(())
}
