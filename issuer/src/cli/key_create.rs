//! `keymint keys create`: its arguments, as the key to make or as the admin API's body.

use std::time::Duration;

use ipnet::IpNet;
use keymint_jwks::{Audience, ScopeSet, TenantId};

use super::CliError;
use super::duration;
use crate::domain::keys::NewKey;
use crate::domain::keys::api_key::{KeyEnv, KeyKind};
use crate::domain::keys::limits::RateSpec;
use crate::domain::keys::origin::Origin;

/// Arguments of `keys create`.
#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
    /// Tenant the key belongs to.
    #[arg(long)]
    tenant: String,
    /// A scope the key may request (repeat for several). `admin:*` is reserved.
    #[arg(long = "scope", required = true)]
    scopes: Vec<String>,
    /// An audience the key may request (repeat for several).
    #[arg(long = "audience", required = true)]
    audiences: Vec<String>,
    /// Default token lifetime [default: 10m; 5m for publishable keys].
    #[arg(long, value_parser = duration)]
    ttl: Option<Duration>,
    /// Longest token lifetime a request may ask for [default: 1h; publishable keys: 10m, the most
    /// they may have].
    #[arg(long, value_parser = duration)]
    max_ttl: Option<Duration>,
    /// Key lifetime (at most 366d).
    #[arg(long, default_value = "90d", value_parser = duration)]
    expires_in: Duration,
    /// A label for people.
    #[arg(long)]
    label: Option<String>,
    /// The person or system the key is tied to, for audit.
    #[arg(long)]
    owner: Option<String>,
    /// Only accept requests from this network (a CIDR like 10.0.0.0/8, or one address; repeat
    /// for several).
    #[arg(long = "allow-ip", value_name = "CIDR", value_parser = crate::domain::client::parse_net)]
    allow_ips: Vec<IpNet>,
    /// A publishable (browser) key: needs --origin, may only carry public scopes, short tokens,
    /// and a rate limit (default 600/m for the key, a tenth of it per client IP).
    #[arg(long)]
    publishable: bool,
    /// A browser origin allowed to use the key (repeat for several), e.g. https://app.example.
    #[arg(long = "origin", value_name = "ORIGIN", value_parser = |s: &str| Origin::parse(s))]
    origins: Vec<Origin>,
    /// Rate limit: N/s or N/m.
    #[arg(long, value_parser = |s: &str| RateSpec::parse(s).ok_or_else(|| format!("{s:?} is not N/s or N/m")))]
    rate_limit: Option<RateSpec>,
    /// Environment.
    #[arg(long, value_enum, default_value_t = KeyEnv::Live)]
    env: KeyEnv,
    /// Print JSON: {"key_id", "key", ...}.
    #[arg(long)]
    pub(super) json: bool,
}

pub(super) fn new_key(a: CreateArgs) -> Result<NewKey, CliError> {
    Ok(NewKey {
        kind: if a.publishable {
            KeyKind::Publishable
        } else {
            KeyKind::Secret
        },
        allow_origins: a.origins,
        tenant: TenantId::new(a.tenant).map_err(|e| CliError::Usage(e.to_string()))?,
        scopes: ScopeSet::from_values(a.scopes.iter().map(String::as_str))
            .map_err(|e| CliError::Usage(format!("--scope: {e}")))?,
        audiences: a
            .audiences
            .iter()
            .map(|s| Audience::new(s.as_str()))
            .collect::<Result<_, _>>()
            .map_err(|e| CliError::Usage(e.to_string()))?,
        ttl: a.ttl,
        max_ttl: a.max_ttl,
        expires_in: a.expires_in,
        label: a.label,
        owner: a.owner,
        allow_ips: a.allow_ips,
        rate_limit: a.rate_limit,
        env: a.env,
    })
}

impl CreateArgs {
    /// The admin API's `POST /v1/admin/keys` body.
    pub(super) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "tenant": self.tenant,
            "scopes": self.scopes,
            "audiences": self.audiences,
            "publishable": self.publishable,
            "origins": self.origins.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "ttl": self.ttl.map(|d| d.as_secs()),
            "max_ttl": self.max_ttl.map(|d| d.as_secs()),
            "expires_in": self.expires_in.as_secs(),
            "label": self.label,
            "owner": self.owner,
            "allow_ips": self.allow_ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "rate_limit": self.rate_limit.map(|r| r.to_string()),
            "test": self.env == KeyEnv::Test,
        })
    }
}
