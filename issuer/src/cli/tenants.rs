//! `keymint tenants list|policy`.

use std::process::ExitCode;

use keymint_jwks::{TenantId, UnixTime};

use super::remote::{Remote, enc};
use super::{CliError, Global, actor, open, print_json};
use crate::domain::leaks::policy::{self, OnLeak, PolicyChange, TenantPolicy, WebhookChange};
use crate::store::Store;

/// `keymint tenants` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Tenants named by keys, with their key counts.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a tenant's policy, or change it with --on-leak.
    Policy {
        /// The tenant.
        tenant: String,
        /// What a secret-scanning report of one of the tenant's keys does: revoke it at once
        /// (the default) or only flag it (an audit record; the key keeps working).
        #[arg(long, value_enum)]
        on_leak: Option<OnLeak>,
        /// Tell the tenant's owner of each leaked key: a signed POST to this URL (HTTPS; HTTP
        /// only to loopback). A new HMAC secret is printed once.
        #[arg(long, value_name = "URL", conflicts_with = "no_webhook")]
        webhook_url: Option<String>,
        /// Stop calling the tenant's webhook.
        #[arg(long)]
        no_webhook: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn tenant_id(s: String) -> Result<TenantId, CliError> {
    TenantId::new(s).map_err(|e| CliError::Usage(format!("tenant: {e}")))
}

fn print_policy(p: &TenantPolicy, json: bool) {
    if json {
        print_json(&serde_json::to_value(p).unwrap_or_default());
    } else {
        say!("tenant:  {}", p.tenant);
        say!(
            "on_leak: {}{}",
            p.on_leak,
            if p.updated_at.is_none() {
                " (default)"
            } else {
                ""
            }
        );
    }
}

pub(crate) async fn run(global: &Global, cmd: Command) -> Result<ExitCode, CliError> {
    if let Some(url) = &global.issuer_url {
        let api = Remote::connect(url)?;
        print_json(&match cmd {
            Command::List { .. } => api.call("GET", "/v1/admin/tenants", None)?,
            Command::Policy {
                tenant,
                on_leak: None,
                webhook_url: None,
                no_webhook: false,
                ..
            } => api.call(
                "GET",
                &format!("/v1/admin/tenants/{}/policy", enc(&tenant)),
                None,
            )?,
            Command::Policy {
                tenant,
                on_leak,
                webhook_url,
                no_webhook,
                ..
            } => {
                let mut body = serde_json::Map::new();
                if let Some(o) = on_leak {
                    body.insert("on_leak".into(), o.as_str().into());
                }
                if no_webhook {
                    body.insert("webhook_url".into(), "".into());
                } else if let Some(u) = webhook_url {
                    body.insert("webhook_url".into(), u.into());
                }
                api.call(
                    "PUT",
                    &format!("/v1/admin/tenants/{}/policy", enc(&tenant)),
                    Some(&serde_json::Value::Object(body)),
                )?
            }
        });
        return Ok(ExitCode::SUCCESS);
    }
    let opened = open(global).await?;
    let store = &*opened.store;
    let now = UnixTime::now();
    match cmd {
        Command::List { json } => {
            let tenants = store.tenants(crate::domain::unix(now)).await?;
            if json {
                print_json(&serde_json::to_value(&tenants).unwrap_or_default());
            } else {
                say!("{:<30} {:>8} {:>8}", "TENANT", "KEYS", "ACTIVE");
                for t in tenants {
                    say!("{:<30} {:>8} {:>8}", t.tenant, t.keys, t.active_keys);
                }
            }
        }
        Command::Policy {
            tenant,
            on_leak,
            webhook_url,
            no_webhook,
            json,
        } => {
            let tenant = tenant_id(tenant)?;
            let change = PolicyChange {
                on_leak,
                webhook: match (webhook_url, no_webhook) {
                    (_, true) => Some(WebhookChange::Remove),
                    (Some(u), false) => Some(WebhookChange::parse(&u)?),
                    (None, false) => None,
                },
            };
            let shown = if change.on_leak.is_none() && change.webhook.is_none() {
                policy::get(store, &tenant).await?
            } else {
                let enc = &opened.secrets.encryption_key;
                policy::set(store, enc, &tenant, &change, now, (&actor()).into()).await?
            };
            print_policy(&shown, json);
        }
    }
    Ok(ExitCode::SUCCESS)
}
