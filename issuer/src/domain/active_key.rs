//! A key as the token endpoint holds it: the stored record parsed once into newtypes, with its
//! rate limiters, cached until the change feed says the key changed (the limiters outlive it).

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use keymint_jwks::{ApiKeyId, Audience, ScopeSet, TenantId};

use super::DomainError;
use super::api_key::KeyKind;
use super::limits::KeyLimits;
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
    /// Shared with the token service's limiter cache, which outlives this entry.
    pub(super) limits: Arc<KeyLimits>,
    /// The last-used time last queued for the database: a key in constant use is written once a
    /// minute, not on every request.
    pub(super) last_used_queued: std::sync::atomic::AtomicI64,
}

/// Last-used times are kept to this precision in the database.
pub(super) const LAST_USED_PRECISION: i64 = 60;

impl ActiveKey {
    /// Parses `record`, with the limiters `limits` gives for it.
    pub(super) fn from_record(
        record: KeyRecord,
        limits: impl FnOnce(&KeyRecord) -> Arc<KeyLimits>,
    ) -> Result<Self, DomainError> {
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
            limits: limits(&record),
            record,
        })
    }

    /// Whether `ip` may use this key (no CIDRs: any).
    pub(super) fn admits(&self, ip: IpAddr) -> bool {
        self.allow_ips.is_empty() || self.allow_ips.iter().any(|n| n.contains(&ip))
    }

    /// The browser rules: a publishable key only from one of its origins, a secret key never from
    /// a browser origin it does not list. Returns the origin to answer CORS for.
    pub(super) fn browser_origin(
        &self,
        kind: KeyKind,
        origin: Option<&str>,
    ) -> Result<Option<String>, DomainError> {
        let origin = origin.map(|o| {
            super::origin::Origin::parse(o)
                .map(|o| o.to_string())
                .unwrap_or_default()
        });
        let allowed = origin
            .as_deref()
            .is_some_and(|o| self.allow_origins.iter().any(|a| a == o));
        match (kind, origin) {
            (KeyKind::Publishable, None) => Err(DomainError::UnauthorizedClient(
                "a publishable key must be used from one of its allowed browser origins (no Origin header came)".into(),
            )),
            (KeyKind::Publishable, Some(_)) if !allowed => Err(DomainError::UnauthorizedClient(
                "this origin is not allowed for this publishable key".into(),
            )),
            (KeyKind::Secret, Some(_)) if !allowed => Err(DomainError::UnauthorizedClient(
                "a secret key must not be used from a browser: have your backend exchange its secret key \
                 for a narrower, shorter-lived token (backend delegation, optionally bound with dpop_jkt) \
                 and give that token to the page, or use a publishable key"
                    .into(),
            )),
            (_, origin) => Ok(origin.filter(|_| allowed)),
        }
    }

    /// Applies the key's own rate limit and, for publishable keys, its per-client one.
    pub(super) fn check_rate(&self, ip: &IpAddr) -> Result<(), DomainError> {
        match self.limits.check(ip) {
            Some(retry_after) => Err(DomainError::RateLimited { retry_after }),
            None => Ok(()),
        }
    }

    /// Whether `record` (a key as stored) is publishable, so limited per client IP too.
    pub(super) fn limited_per_client(record: &KeyRecord) -> bool {
        record.kind == KeyKind::Publishable.as_str()
    }

    /// Queues `t` as the key's last-used time if the one queued is older than the precision
    /// kept; true when the caller should record it.
    pub(super) fn note_use(&self, t: i64) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let queued = self.last_used_queued.load(Relaxed);
        t - queued >= LAST_USED_PRECISION
            && self
                .last_used_queued
                .compare_exchange(queued, t, Relaxed, Relaxed)
                .is_ok()
    }
}
