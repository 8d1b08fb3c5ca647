//! `keymint signing-keys list|rotate`.

use std::process::ExitCode;
use std::time::Duration;

use keymint_jwks::{Algorithm, Kid, UnixTime};

use super::remote::{Remote, enc};
use super::{CliError, Global, actor, open, print_json};
use crate::domain::signing;
use crate::store::Store;

/// `keymint signing-keys` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// List signing keys and their states.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Emergency: remove a compromised key from the JWKS at once and list its kid as revoked, so
    /// verifiers drop every token it signed. If it was signing, another key takes over at once.
    Revoke {
        /// The compromised key's kid. (A base64url kid may begin with `-`: it is taken as the
        /// value, not as an option.)
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Longest token lifetime in force (default: what the server last ran with, else 1h).
        #[arg(long, value_parser = super::duration)]
        max_token_ttl: Option<Duration>,
    },
    /// Start a rotation: a new key is published now and signs once the JWKS cache period has
    /// passed; the old key stays published until every token it signed has expired.
    Rotate {
        /// Algorithm of the new key.
        #[arg(long, value_parser = ["EdDSA", "ES256"], default_value = "EdDSA")]
        alg: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(global: &Global, cmd: Command) -> Result<ExitCode, CliError> {
    if let Some(url) = &global.issuer_url {
        let api = Remote::connect(url)?;
        print_json(&match cmd {
            Command::List { .. } => api.call("GET", "/v1/admin/signing-keys", None)?,
            Command::Rotate { alg, .. } => api.call(
                "POST",
                "/v1/admin/signing-keys/rotate",
                Some(&serde_json::json!({ "alg": alg })),
            )?,
            Command::Revoke { kid, .. } => api.call(
                "POST",
                &format!("/v1/admin/signing-keys/{}/revoke", enc(&kid)),
                None,
            )?,
        });
        return Ok(ExitCode::SUCCESS);
    }
    let opened = open(global).await?;
    let store = &*opened.store;
    match cmd {
        Command::List { json } => {
            let keys = store.signing_keys().await?;
            if json {
                let v: Vec<_> = keys
                    .iter()
                    .map(|k| {
                        serde_json::json!({
                            "kid": k.kid, "alg": k.alg, "state": k.state.as_str(),
                            "created_at": k.created_at, "activate_at": k.activate_at,
                            "retired_at": k.retired_at, "remove_after": k.remove_after,
                        })
                    })
                    .collect();
                print_json(&serde_json::Value::Array(v));
            } else {
                say!("{:<44} {:<6} {:<8} SINCE", "KID", "ALG", "STATE");
                for k in keys {
                    // A standby successor has no activation time yet (stored as the far
                    // future): say so rather than print i64::MAX.
                    let since = match k.retired_at {
                        Some(at) => super::when::when(at),
                        None if k.activate_at == signing::STANDBY => "standby".to_owned(),
                        None => super::when::when(k.activate_at),
                    };
                    say!(
                        "{:<44} {:<6} {:<8} {}",
                        k.kid,
                        k.alg,
                        k.state.as_str(),
                        since
                    );
                }
            }
        }
        Command::Revoke { kid, max_token_ttl } => {
            let ttl = super::max_token_ttl(store, max_token_ttl).await?;
            let kid = Kid::new(kid).map_err(|e| CliError::Usage(format!("KID: {e}")))?;
            signing::revoke(
                store,
                &opened.secrets.encryption_key,
                &kid,
                UnixTime::now(),
                ttl,
                &actor(),
            )
            .await?;
            say!(
                "revoked signing key {kid}: it is out of the JWKS and every token it signed is listed as revoked"
            );
        }
        Command::Rotate { alg, json } => {
            let alg = Algorithm::from_name(&alg).unwrap_or(Algorithm::EdDsa);
            // The running server records its JWKS cache period; a rotation waits it out.
            let max_age = store
                .setting("jwks_max_age")
                .await?
                .and_then(|s| s.parse::<u64>().ok())
                .map_or(Duration::from_secs(300), Duration::from_secs);
            signing::ensure_active(store, &opened.secrets.encryption_key, UnixTime::now()).await?;
            let rec = signing::rotate(
                store,
                &opened.secrets.encryption_key,
                alg,
                UnixTime::now(),
                max_age,
                &actor(),
            )
            .await?;
            if json {
                print_json(
                    &serde_json::json!({"kid": rec.kid, "alg": rec.alg, "state": "next", "activate_at": rec.activate_at}),
                );
            } else {
                say!(
                    "published {} ({}) as next; it starts signing at {} (after the {}s JWKS cache period)",
                    rec.kid,
                    rec.alg,
                    super::when::when(rec.activate_at),
                    max_age.as_secs()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
