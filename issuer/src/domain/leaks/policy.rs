//! What a tenant wants done when one of its keys is reported leaked.

use keymint_jwks::{TenantId, UnixTime};

use super::webhook::WebhookSecret;
use crate::domain::audit::Actor;
use crate::domain::refusal::InvalidInput;
use crate::domain::signing::secret_box::EncryptionKey;
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
    /// Where the tenant's owner hears of a leaked key, if anywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// The webhook's HMAC secret: only in the answer of the call that set the webhook, never
    /// again (it is stored sealed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    /// When it was last set (Unix seconds); absent for a tenant on the defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

/// A change to a tenant's policy: what is `None` stays as it is.
#[derive(Debug, Clone, Default)]
pub struct PolicyChange {
    /// The new answer to a leaked key.
    pub on_leak: Option<OnLeak>,
    /// A new webhook (with a fresh secret), or its removal.
    pub webhook: Option<WebhookChange>,
}

/// A new webhook, or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookChange {
    /// Calls go to this URL (HTTPS, or HTTP to loopback), with a new secret.
    Set(url::Url),
    /// No more calls.
    Remove,
}

impl WebhookChange {
    /// Parses a webhook URL: HTTPS, or plain HTTP to a loopback host only (the body names a
    /// leaked key and the call is signed, but a plain-text hop would still expose it).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let url = url::Url::parse(s).map_err(|_| DomainError::Invalid(InvalidInput::WebhookUrl))?;
        let loopback = super::transport::is_loopback_host(&url);
        match url.scheme() {
            "https" if url.host().is_some() => Ok(Self::Set(url)),
            "http" if loopback => Ok(Self::Set(url)),
            _ => Err(DomainError::Invalid(InvalidInput::WebhookUrl)),
        }
    }
}

fn view(r: TenantPolicyRecord, secret: Option<&WebhookSecret>) -> TenantPolicy {
    TenantPolicy {
        tenant: r.tenant,
        // A stored value this release does not know is shown, and acted on as the default.
        on_leak: r.on_leak,
        webhook_url: r.webhook_url,
        webhook_secret: secret.map(|s| s.expose().to_owned()),
        updated_at: Some(r.updated_at),
    }
}

/// `tenant`'s policy (the defaults when none was set).
pub async fn get<S: Store>(store: &S, tenant: &TenantId) -> Result<TenantPolicy, DomainError> {
    Ok(match store.tenant_policy(tenant.as_str()).await? {
        Some(r) => view(r, None),
        None => TenantPolicy {
            tenant: tenant.to_string(),
            on_leak: OnLeak::default().as_str().into(),
            webhook_url: None,
            webhook_secret: None,
            updated_at: None,
        },
    })
}

/// What to do with a leaked key under `policy` (a tenant's stored one, if any). A stored value
/// this release does not know means the default: revoking is the safe side.
pub fn on_leak(policy: Option<&TenantPolicyRecord>) -> OnLeak {
    policy
        .and_then(|r| OnLeak::parse(&r.on_leak).ok())
        .unwrap_or_default()
}

/// Changes `tenant`'s policy, with an admin audit record. A new webhook gets a fresh secret,
/// sealed under `enc` and shown in the answer only.
pub async fn set<S: Store>(
    store: &S,
    enc: &EncryptionKey,
    tenant: &TenantId,
    change: &PolicyChange,
    now: UnixTime,
    actor: Actor<'_>,
) -> Result<TenantPolicy, DomainError> {
    let mut rec = store
        .tenant_policy(tenant.as_str())
        .await?
        .unwrap_or_else(|| TenantPolicyRecord {
            tenant: tenant.to_string(),
            on_leak: OnLeak::default().as_str().into(),
            updated_at: unix(now),
            webhook_url: None,
            webhook_secret: None,
        });
    rec.updated_at = unix(now);
    if let Some(on_leak) = change.on_leak {
        rec.on_leak = on_leak.as_str().into();
    }
    let mut detail = format!("on_leak={}", rec.on_leak);
    let secret = match &change.webhook {
        Some(WebhookChange::Set(url)) => {
            let secret = WebhookSecret::generate()?;
            rec.webhook_url = Some(url.to_string());
            rec.webhook_secret = Some(secret.seal(enc, tenant.as_str())?);
            detail.push_str(&format!(" webhook={url}"));
            Some(secret)
        }
        Some(WebhookChange::Remove) => {
            rec.webhook_url = None;
            rec.webhook_secret = None;
            detail.push_str(" webhook=none");
            None
        }
        None => None,
    };
    let audit = actor.stamp(AuditRecord {
        at: unix(now),
        action: "tenant.policy".into(),
        outcome: "ok".into(),
        tenant: Some(rec.tenant.clone()),
        detail: Some(detail),
        ..AuditRecord::default()
    });
    store.put_tenant_policy(&rec, Some(&audit)).await?;
    crate::domain::audit::log(&audit);
    Ok(view(rec, secret.as_ref()))
}
