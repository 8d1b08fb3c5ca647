//! `keymint tenants list|policy`.

use std::process::ExitCode;

use keymint_jwks::{TenantId, UnixTime};

use super::remote::{Remote, enc};
use super::{CliError, Global, actor, open, print_json};
use crate::domain::leaks::policy::{self, OnLeak, TenantPolicy};
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
                ..
            } => api.call(
                "GET",
                &format!("/v1/admin/tenants/{}/policy", enc(&tenant)),
                None,
            )?,
            Command::Policy {
                tenant,
                on_leak: Some(on_leak),
                ..
            } => api.call(
                "PUT",
                &format!("/v1/admin/tenants/{}/policy", enc(&tenant)),
                Some(&serde_json::json!({ "on_leak": on_leak.as_str() })),
            )?,
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
            json,
        } => {
            let tenant = tenant_id(tenant)?;
            let shown = match on_leak {
                Some(on_leak) => {
                    policy::set(store, &tenant, on_leak, now, (&actor()).into()).await?
                }
                None => policy::get(store, &tenant).await?,
            };
            print_policy(&shown, json);
        }
    }
    Ok(ExitCode::SUCCESS)
}
