//! What a tenant wants done when one of its keys is reported leaked.

use keymint_jwks::{TenantId, UnixTime};

use crate::domain::audit::Actor;
use crate::domain::refusal::InvalidInput;
use crate::domain::{DomainError, unix};
use crate::store::{AuditRecord, Store, TenantPolicyRecord};

/// A tenant's answer to a leaked key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnLeak {
    /// Revoke the key at once (the default): the issuer refuses it and the list names it, so
    /// every verifier refuses its tokens within a second.
    #[default]
    Revoke,
    /// Only flag it: an audit record with where it was found; the key keeps working until an
    /// admin acts.
    Flag,
}

impl OnLeak {
    /// `revoke` or `flag`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoke => "revoke",
            Self::Flag => "flag",
        }
    }

    /// Parses `revoke` / `flag`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "revoke" => Ok(Self::Revoke),
            "flag" => Ok(Self::Flag),
            _ => Err(DomainError::Invalid(InvalidInput::OnLeak)),
        }
    }
}

/// A tenant's policy, as the CLI and the admin API show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TenantPolicy {
    /// Tenant.
    pub tenant: String,
    /// `revoke` or `flag`.
    pub on_leak: String,
    /// When it was last set (Unix seconds); absent for a tenant on the defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

/// `tenant`'s policy (the defaults when none was set).
pub async fn get<S: Store>(store: &S, tenant: &TenantId) -> Result<TenantPolicy, DomainError> {
    Ok(match store.tenant_policy(tenant.as_str()).await? {
        Some(r) => TenantPolicy {
            // A stored value this release does not know is shown, and acted on as the default.
            on_leak: r.on_leak,
            tenant: r.tenant,
            updated_at: Some(r.updated_at),
        },
        None => TenantPolicy {
            tenant: tenant.to_string(),
            on_leak: OnLeak::default().as_str().into(),
            updated_at: None,
        },
    })
}

/// What to do with `tenant`'s leaked key. A stored value this release does not know means the
/// default: revoking is the safe side.
pub async fn on_leak<S: Store>(store: &S, tenant: &str) -> Result<OnLeak, DomainError> {
    Ok(store
        .tenant_policy(tenant)
        .await?
        .and_then(|r| OnLeak::parse(&r.on_leak).ok())
        .unwrap_or_default())
}

/// Sets `tenant`'s policy, with an admin audit record.
pub async fn set<S: Store>(
    store: &S,
    tenant: &TenantId,
    on_leak: OnLeak,
    now: UnixTime,
    actor: Actor<'_>,
) -> Result<TenantPolicy, DomainError> {
    let rec = TenantPolicyRecord {
        tenant: tenant.to_string(),
        on_leak: on_leak.as_str().into(),
        updated_at: unix(now),
    };
    let audit = actor.stamp(AuditRecord {
        at: unix(now),
        action: "tenant.policy".into(),
        outcome: "ok".into(),
        tenant: Some(rec.tenant.clone()),
        detail: Some(format!("on_leak={}", on_leak.as_str())),
        ..AuditRecord::default()
    });
    store.put_tenant_policy(&rec, Some(&audit)).await?;
    crate::domain::audit::log(&audit);
    Ok(TenantPolicy {
        tenant: rec.tenant,
        on_leak: rec.on_leak,
        updated_at: Some(rec.updated_at),
    })
}
