//! `keymint audit`: the stored audit records, newest first, filtered; locally or through a remote
//! issuer's admin API.

use std::process::ExitCode;

use super::remote::{Remote, enc};
use super::{CliError, Global, open, print_json};
use crate::store::{AuditQuery, Store};

/// Arguments of `keymint audit`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Only this action (key.create, key.revoke, ...; token.issue only in rows of earlier
    /// releases: issuances are now counted by `keymint keys usage`).
    #[arg(long)]
    action: Option<String>,
    /// Only this outcome (granted, refused, ok).
    #[arg(long)]
    outcome: Option<String>,
    /// Only this API key.
    #[arg(long)]
    key_id: Option<String>,
    /// Only this tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// Only records at or after this Unix time.
    #[arg(long)]
    since: Option<i64>,
    /// Only records older than this record ID (the previous page's last).
    #[arg(long)]
    before: Option<i64>,
    /// At most this many (up to 1000).
    #[arg(long, default_value_t = 50)]
    limit: i64,
}

pub(crate) async fn run(global: &Global, a: Args) -> Result<ExitCode, CliError> {
    let items = if let Some(url) = &global.issuer_url {
        let mut q = vec![format!("limit={}", a.limit)];
        let mut add = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                q.push(format!("{k}={}", enc(&v)));
            }
        };
        add("action", a.action);
        add("outcome", a.outcome);
        add("key_id", a.key_id);
        add("tenant", a.tenant);
        add("since", a.since.map(|v| v.to_string()));
        add("before", a.before.map(|v| v.to_string()));
        let page =
            Remote::connect(url)?.call("GET", &format!("/v1/admin/audit?{}", q.join("&")), None)?;
        page.get("items").cloned().unwrap_or_default()
    } else {
        let opened = open(global).await?;
        let entries = opened
            .store
            .audit(&AuditQuery {
                before: a.before,
                action: a.action,
                outcome: a.outcome,
                key_id: a.key_id,
                tenant: a.tenant,
                since: a.since,
                until: None,
                limit: a.limit.clamp(1, 1000),
            })
            .await?;
        serde_json::to_value(entries).unwrap_or_default()
    };
    print_json(&items);
    Ok(ExitCode::SUCCESS)
}
