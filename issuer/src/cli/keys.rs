//! `keymint keys ...`.

use std::process::ExitCode;
use std::time::Duration;

use keymint_jwks::{ApiKeyId, TenantId, UnixTime};

use super::key_check::check;
use super::key_create::{CreateArgs, new_key};
use super::key_usage::{Since, print_usage, since};
use super::remote::{Remote, enc};
use super::{CliError, Global, actor, duration, open, print_json};
use crate::domain::DomainError;
use crate::domain::keys::{self, KeyView};
use crate::domain::refusal::Missing;
use crate::domain::{revocation, usage};
use crate::store::Store;

/// `keymint keys` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create a secret API key; the key is printed once.
    Create(CreateArgs),
    /// Check a candidate key read from stdin, offline (no database, no network): whether it is a
    /// well-formed keymint key (shape and CRC32 checksum), and if so its key ID, kind and
    /// environment. Exit 0 when well formed, 1 when not (mistyped, truncated or made up). Says
    /// nothing about whether the key exists or works: that needs the issuer.
    Check {
        /// Print JSON: {"valid", "key_id", "kind", "env"} or {"valid": false, "reason"}.
        #[arg(long)]
        json: bool,
    },
    /// Create many keys from one template (load tests): writes the first --keep keys to a 0600
    /// file, one per line.
    #[command(hide = true)]
    Seed {
        /// How many keys.
        #[arg(long)]
        count: u64,
        /// How many of the printable keys to write out.
        #[arg(long, default_value_t = 10_000)]
        keep: u64,
        /// Where to write them (created with mode 0600).
        #[arg(long)]
        keys_out: std::path::PathBuf,
        #[command(flatten)]
        template: CreateArgs,
    },
    /// List keys (never secrets).
    List {
        /// Only this tenant's keys.
        #[arg(long)]
        tenant: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one key (never its secret).
    Show {
        /// Key ID.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Where a key was used from, how often, and what was refused: its hourly usage counts per
    /// client network (IPv4 address or IPv6 /64), origin, outcome and reason, the largest first.
    Usage {
        /// Key ID.
        id: String,
        /// From how long ago (`24h`, `7d`) or from a Unix time; counted from the start of its
        /// hour.
        #[arg(long, default_value = "7d", value_parser = since)]
        since: Since,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key at once: the issuer refuses it and every token it minted is listed as revoked.
    Revoke {
        /// Key ID.
        id: String,
        /// Longest token lifetime in force, so the entry outlives every token it covers (default:
        /// the --max-token-ttl the server last ran with, else 1h).
        #[arg(long, value_parser = duration)]
        max_token_ttl: Option<Duration>,
    },
    /// Replace a key: a successor with the same tenant, scopes and restrictions; the old key keeps
    /// working for the grace period.
    Rotate {
        /// Key ID.
        id: String,
        /// How long the old key keeps working.
        #[arg(long, default_value = "24h", value_parser = duration)]
        grace: Duration,
        /// The old key leaked: revoke it at once (no grace; every token it minted is listed as
        /// revoked) while handing out the successor, in one step.
        #[arg(long, conflicts_with = "grace")]
        revoke_old: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

fn key_id(id: &str) -> Result<ApiKeyId, CliError> {
    ApiKeyId::new(id).map_err(usage)
}

fn print_key(view: &KeyView, key: Option<&str>, json: bool) {
    if json {
        let mut v = serde_json::to_value(view).unwrap_or_default();
        if let (Some(k), Some(obj)) = (key, v.as_object_mut()) {
            obj.insert("key".into(), k.into());
        }
        print_json(&v);
        return;
    }
    if let Some(k) = key {
        say!("{k}");
        eprintln!("(the key above is shown once: store it in a secret manager now)");
    }
    say!("key_id:     {}", view.key_id);
    say!("state:      {}", view.state);
    say!("tenant:     {}", view.tenant);
    say!("scopes:     {}", view.scopes.join(" "));
    say!("audiences:  {}", view.audiences.join(" "));
    say!("ttl:        {}s (max {}s)", view.ttl, view.max_ttl);
    say!("expires_at: {}", super::when::when(view.expires_at));
    if !view.allow_origins.is_empty() {
        say!("origins:    {}", view.allow_origins.join(" "));
    }
    if !view.allow_ips.is_empty() {
        say!("allow_ips:  {}", view.allow_ips.join(" "));
    }
    if let Some(r) = &view.rate_limit {
        say!("rate_limit: {r}");
    }
    if let Some(l) = &view.label {
        say!("label:      {l}");
    }
    if let Some(o) = &view.owner {
        say!("owner:      {o}");
    }
    if let Some(t) = view.last_used_at {
        say!("last_used:  {}", super::when::when(t));
    }
    if let Some(to) = &view.rotated_to {
        say!("rotated_to: {to}");
    }
}

/// The same commands through a remote issuer's admin API.
fn run_remote(url: &str, cmd: Command) -> Result<ExitCode, CliError> {
    let api = Remote::connect(url)?;
    let answer = match cmd {
        Command::Seed { .. } => {
            return Err(CliError::Usage(
                "keys seed works on a local database only".into(),
            ));
        }
        Command::Check { .. } => return Err(CliError::Usage("keys check is offline".into())),
        Command::Create(a) => api.call("POST", "/v1/admin/keys", Some(&a.to_json()))?,
        Command::List { tenant, .. } => match tenant {
            Some(t) => api.get_all_pages(&format!("/v1/admin/keys?tenant={}", enc(&t)))?,
            None => api.get_all_pages("/v1/admin/keys")?,
        },
        Command::Show { id, .. } => {
            api.call("GET", &format!("/v1/admin/keys/{}", enc(&id)), None)?
        }
        Command::Usage { id, since, .. } => api.call(
            "GET",
            &format!(
                "/v1/admin/keys/{}/usage?since={}",
                enc(&id),
                since.at(UnixTime::now()).as_secs()
            ),
            None,
        )?,
        Command::Revoke { id, .. } => {
            api.call("POST", &format!("/v1/admin/keys/{}/revoke", enc(&id)), None)?
        }
        Command::Rotate {
            id,
            grace,
            revoke_old,
            ..
        } => api.call(
            "POST",
            &format!("/v1/admin/keys/{}/rotate", enc(&id)),
            Some(&serde_json::json!({"grace": grace.as_secs(), "revoke_old": revoke_old})),
        )?,
    };
    print_json(&answer);
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn run(global: &Global, cmd: Command) -> Result<ExitCode, CliError> {
    if let Command::Check { json } = cmd {
        // Offline by design: before the remote issuer or the database is looked at.
        return Ok(check(&mut std::io::stdin().lock(), json));
    }
    if let Some(url) = &global.issuer_url {
        return run_remote(url, cmd);
    }
    let opened = open(global).await?;
    let store = &*opened.store;
    let now = UnixTime::now();
    match cmd {
        Command::Check { .. } => return Err(CliError::Usage("keys check is offline".into())),
        Command::Seed {
            count,
            keep,
            keys_out,
            template,
        } => {
            use std::io::Write as _;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let file = options
                .open(&keys_out)
                .map_err(|e| CliError::Usage(format!("{}: {e}", keys_out.display())))?;
            let mut out = std::io::BufWriter::new(file);
            let mut write_error = None;
            keys::create_many(
                store,
                &opened.hasher(),
                &new_key(template)?,
                count,
                now,
                &actor(),
                |i, _, key| {
                    if i < keep
                        && let Err(e) = writeln!(out, "{}", key.expose())
                    {
                        write_error = Some(e);
                    }
                },
            )
            .await?;
            out.flush().map_err(|e| CliError::Usage(e.to_string()))?;
            if let Some(e) = write_error {
                return Err(CliError::Usage(format!("{}: {e}", keys_out.display())));
            }
            say!(
                "created {count} keys; the first {} are in {}",
                keep.min(count),
                keys_out.display()
            );
        }
        Command::Create(a) => {
            let json = a.json;
            let new = new_key(a)?;
            let (view, key) = keys::create(store, &opened.hasher(), &new, now, &actor()).await?;
            print_key(&view, Some(key.expose()), json);
        }
        Command::List { tenant, json } => {
            let tenant = tenant
                .map(TenantId::new)
                .transpose()
                .map_err(|e| CliError::Usage(format!("--tenant: {e}")))?;
            // A page at a time, printed as it comes: a million keys are never in memory at once.
            if json {
                say!("[");
            } else {
                say!(
                    "{:<18} {:<8} {:<20} {:<20} SCOPES",
                    "KEY ID",
                    "STATE",
                    "TENANT",
                    "EXPIRES"
                );
            }
            let mut after = None;
            let mut first = true;
            loop {
                let page = keys::page(store, tenant.as_ref(), after.as_ref(), keys::KEYS_PAGE, now)
                    .await?;
                for v in &page.keys {
                    if json {
                        let item = serde_json::to_string_pretty(v).unwrap_or_default();
                        say!("{}{item}", if first { "" } else { "," });
                    } else {
                        say!(
                            "{:<18} {:<8} {:<20} {:<20} {}",
                            v.key_id,
                            v.state,
                            v.tenant,
                            super::when::when(v.expires_at),
                            v.scopes.join(" ")
                        );
                    }
                    first = false;
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            if json {
                say!("]");
            }
        }
        Command::Show { id, json } => {
            let id = key_id(&id)?;
            let rec = store
                .key(&id)
                .await?
                .ok_or_else(|| DomainError::NotFound(Missing::Key(id.clone())))?;
            print_key(&KeyView::from_record(&rec, now), None, json);
        }
        Command::Usage { id, since, json } => {
            let id = key_id(&id)?;
            let report = usage::key_usage(store, &id, since.at(now)).await?;
            print_usage(&report, json);
        }
        Command::Revoke { id, max_token_ttl } => {
            let id = key_id(&id)?;
            let ttl = super::max_token_ttl(store, max_token_ttl).await?;
            revocation::revoke_key(store, &id, now, ttl, &actor()).await?;
            say!("revoked key {id}");
        }
        Command::Rotate {
            id,
            grace,
            revoke_old,
            json,
        } => {
            let id = key_id(&id)?;
            let grace = if revoke_old { Duration::ZERO } else { grace };
            let (view, key) =
                keys::rotate(store, &opened.hasher(), &id, grace, now, &actor()).await?;
            if revoke_old {
                let ttl = super::max_token_ttl(store, None).await?;
                revocation::revoke_key(store, &id, now, ttl, &actor()).await?;
            }
            print_key(&view, Some(key.expose()), json);
            if !json && revoke_old {
                eprintln!("(the old key {id} is revoked, with every token it minted)");
            } else if !json {
                eprintln!(
                    "(the old key {id} keeps working for {})",
                    humantime::format_duration(grace)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
