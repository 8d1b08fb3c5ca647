//! A key as the token endpoint holds it: the stored record parsed once into newtypes, with its
//! rate limiters, cached until the change feed says the key changed.

use std::net::IpAddr;

use governor::DefaultDirectRateLimiter;
use ipnet::IpNet;
use keymint_jwks::{ApiKeyId, Audience, ScopeSet, TenantId};

use super::DomainError;
use super::api_key::KeyKind;
use super::limits::RateSpec;
use crate::store::KeyRecord;

/// A key as the token endpoint needs it, parsed once and cached.
#[derive(Debug)]
pub(super) struct ActiveKey {
    pub(super) record: KeyRecord,
    pub(super) key_id: ApiKeyId,
    pub(super) tenant: TenantId,
    pub(super) scopes: ScopeSet,
    pub(super) audiences: Vec<Audience>,
    pub(super) allow_ips: Vec<IpNet>,
    pub(super) allow_origins: Vec<String>,
    pub(super) limiter: Option<DefaultDirectRateLimiter>,
    /// Publishable keys: a tenth of the key's quota per client IP, since an `Origin` header is easy
    /// to forge outside a browser and one client must not exhaust the key for every other.
    pub(super) ip_limiter: Option<governor::DefaultKeyedRateLimiter<IpAddr>>,
    /// The last-used time last queued for the database: a key in constant use is written once a
    /// minute, not on every request.
    pub(super) last_used_queued: std::sync::atomic::AtomicI64,
}

/// Last-used times are kept to this precision in the database.
pub(super) const LAST_USED_PRECISION: i64 = 60;

impl ActiveKey {
    pub(super) fn from_record(record: KeyRecord) -> Result<Self, DomainError> {
        let corrupt =
            |what: &str| DomainError::Internal(format!("stored key {}: bad {what}", record.key_id));
        Ok(Self {
            key_id: ApiKeyId::new(record.key_id.as_str()).map_err(|_| corrupt("key_id"))?,
            tenant: TenantId::new(record.tenant.as_str()).map_err(|_| corrupt("tenant"))?,
            scopes: ScopeSet::parse(&record.scopes).map_err(|_| corrupt("scopes"))?,
            audiences: record
                .audiences
                .split_whitespace()
                .map(Audience::new)
                .collect::<Result<_, _>>()
                .map_err(|_| corrupt("audiences"))?,
            allow_ips: record
                .allow_ips
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| corrupt("allow_ips"))?,
            last_used_queued: std::sync::atomic::AtomicI64::new(record.last_used_at.unwrap_or(0)),
            allow_origins: record
                .allow_origins
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            ip_limiter: (record.kind == KeyKind::Publishable.as_str())
                .then(|| record.rate_limit.as_deref().and_then(RateSpec::parse))
                .flatten()
                .map(|r| r.per_client().keyed_limiter()),
            limiter: record
                .rate_limit
                .as_deref()
                .and_then(RateSpec::parse)
                .map(RateSpec::limiter),
            record,
        })
    }
}
