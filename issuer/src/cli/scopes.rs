//! `keymint scopes add|list`.

use std::process::ExitCode;

use keymint_jwks::{Scope, UnixTime};

use super::remote::{Remote, enc};
use super::{CliError, Global, actor, open, print_json};
use crate::domain::keys;
use crate::store::{Store, Visibility};

/// `keymint scopes` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Declare a scope. With --public, publishable (browser) keys may carry it.
    Add {
        /// The scope.
        scope: String,
        /// Safe to hand to browsers.
        #[arg(long)]
        public: bool,
    },
    /// List declared scopes.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(global: &Global, cmd: Command) -> Result<ExitCode, CliError> {
    if let Some(url) = &global.issuer_url {
        let api = Remote::connect(url)?;
        print_json(&match cmd {
            Command::Add { scope, public } => api.call(
                "PUT",
                &format!("/v1/admin/scopes/{}", enc(&scope)),
                Some(&serde_json::json!({ "public": public })),
            )?,
            Command::List { .. } => api.call("GET", "/v1/admin/scopes", None)?,
        });
        return Ok(ExitCode::SUCCESS);
    }
    let opened = open(global).await?;
    let store = &*opened.store;
    match cmd {
        Command::Add { scope, public } => {
            let scope = Scope::new(scope).map_err(|e| CliError::Usage(e.to_string()))?;
            let visibility = Visibility::public_if(public);
            keys::put_scope(store, &scope, visibility, UnixTime::now(), &actor()).await?;
            say!(
                "scope {scope} is {}",
                if public { "public" } else { "not public" }
            );
        }
        Command::List { json } => {
            let scopes = store.scopes().await?;
            if json {
                let v: Vec<_> = scopes
                    .iter()
                    .map(|s| {
                        serde_json::json!({"scope": s.name.as_str(), "public": s.visibility.is_public()})
                    })
                    .collect();
                print_json(&serde_json::Value::Array(v));
            } else {
                for s in scopes {
                    let public = s.visibility.is_public();
                    say!("{}{}", s.name, if public { " (public)" } else { "" });
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
