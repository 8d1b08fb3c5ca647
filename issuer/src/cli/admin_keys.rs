//! `keymint admin-keys create|list`: the only way admin keys are made (locally, on the database).

use std::process::ExitCode;
use std::time::Duration;

use keymint_jwks::UnixTime;

use super::{CliError, Global, actor, duration, open, print_json};
use crate::domain::admin;
use crate::domain::keys::KeyView;
use crate::store::Store;

/// `keymint admin-keys` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create an admin key for the admin API (`/v1/admin`); printed once. Least privilege:
    /// admin:read lists and reads, admin:write also creates, rotates and revokes.
    Create {
        /// admin:read and/or admin:write (repeat for both).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// A label for people.
        #[arg(long)]
        label: Option<String>,
        /// Key lifetime (at most 365d).
        #[arg(long, default_value = "90d", value_parser = duration)]
        expires_in: Duration,
        /// Print JSON: {"key_id", "key", ...}.
        #[arg(long)]
        json: bool,
    },
    /// List admin keys (never secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(global: &Global, cmd: Command) -> Result<ExitCode, CliError> {
    if global.issuer_url.is_some() {
        return Err(CliError::Usage(
            "admin keys are made only on the database itself: run admin-keys without --issuer-url \
             (unset KEYMINT_ISSUER_URL) on a host with database access"
                .into(),
        ));
    }
    let opened = open(global).await?;
    let store = &*opened.store;
    let now = UnixTime::now();
    match cmd {
        Command::Create {
            scopes,
            label,
            expires_in,
            json,
        } => {
            let scopes = admin::admin_scopes(&scopes)?;
            let (view, key) = admin::create_admin_key(
                store,
                &opened.hasher(),
                &scopes,
                label,
                expires_in,
                now,
                &actor(),
            )
            .await?;
            if json {
                let mut v = serde_json::to_value(&view).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("key".into(), key.expose().into());
                }
                print_json(&v);
            } else {
                say!("admin key {} ({})", view.key_id, view.scopes.join(" "));
                say!("key: {}", key.expose());
                eprintln!(
                    "(shown once. Use it with KEYMINT_ADMIN_KEY=... keymint --issuer-url URL <command>, \
                     or trade it at POST /v1/token for a token for {})",
                    admin::ADMIN_PATH
                );
            }
        }
        Command::List { json } => {
            let views: Vec<KeyView> = store
                .keys(None)
                .await?
                .iter()
                .filter(|k| k.is_admin)
                .map(|r| KeyView::from_record(r, now))
                .collect();
            if json {
                print_json(&serde_json::to_value(&views).unwrap_or_default());
            } else {
                for v in views {
                    say!(
                        "{:<18} {:<8} {:<20} {}",
                        v.key_id,
                        v.state,
                        super::when::when(v.expires_at),
                        v.scopes.join(" ")
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
