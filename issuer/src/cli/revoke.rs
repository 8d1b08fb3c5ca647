//! `keymint revoke token|tenant`.

use std::process::ExitCode;
use std::time::Duration;

use keymint_jwks::{Jti, TenantId, UnixTime};

use super::remote::{Remote, enc};
use super::{CliError, Global, actor, duration, open, print_json};
use crate::domain::revocation;

/// `keymint revoke` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Revoke one token by its `jti`.
    Token {
        /// The token's `jti`. (A base64url `jti` may begin with `-`: it is taken as the value,
        /// not as an option.)
        #[arg(allow_hyphen_values = true)]
        jti: String,
        /// Longest token lifetime in force (default: the --max-token-ttl the server last ran with,
        /// else 1h).
        #[arg(long, value_parser = duration)]
        max_token_ttl: Option<Duration>,
    },
    /// Revoke a tenant: all its keys and every token issued to it until now.
    Tenant {
        /// The tenant.
        tenant: String,
        /// Longest token lifetime in force (default: the --max-token-ttl the server last ran with,
        /// else 1h).
        #[arg(long, value_parser = duration)]
        max_token_ttl: Option<Duration>,
    },
}

pub(crate) async fn run(global: &Global, cmd: Command) -> Result<ExitCode, CliError> {
    if let Some(url) = &global.issuer_url {
        let api = Remote::connect(url)?;
        print_json(&match cmd {
            Command::Token { jti, .. } => api.call(
                "POST",
                "/v1/admin/revocations",
                Some(&serde_json::json!({ "jti": jti })),
            )?,
            Command::Tenant { tenant, .. } => api.call(
                "POST",
                &format!("/v1/admin/tenants/{}/revoke", enc(&tenant)),
                None,
            )?,
        });
        return Ok(ExitCode::SUCCESS);
    }
    let opened = open(global).await?;
    let now = UnixTime::now();
    match cmd {
        Command::Token { jti, max_token_ttl } => {
            let jti = Jti::new(jti).map_err(|e| CliError::Usage(e.to_string()))?;
            let ttl = super::max_token_ttl(&*opened.store, max_token_ttl).await?;
            revocation::revoke_token(&*opened.store, &jti, now, ttl, &actor()).await?;
            say!("revoked token {jti}");
        }
        Command::Tenant {
            tenant,
            max_token_ttl,
        } => {
            let tenant = TenantId::new(tenant).map_err(|e| CliError::Usage(e.to_string()))?;
            let ttl = super::max_token_ttl(&*opened.store, max_token_ttl).await?;
            let n = revocation::revoke_tenant(&*opened.store, &tenant, now, ttl, &actor()).await?;
            say!("revoked tenant {tenant} and its {n} key(s)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
