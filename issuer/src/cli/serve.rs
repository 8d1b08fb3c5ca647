//! `keymint serve`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use keymint_jwks::Issuer;

use super::{CliError, Global, duration, open};
use crate::domain::DomainError;
use crate::domain::leaks::scanner_keys::{ScannerKeySource, ScannerKeyring};
use crate::domain::refusal::InvalidInput;
use crate::domain::settings::{self, Partial, SettingName, Settings};
use crate::domain::usage;
use crate::server::{self, ConnectionLimits, ServeConfig};

/// Arguments of `keymint serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "KEYMINT_LISTEN")]
    listen: SocketAddr,
    /// JWKS cache period: `Cache-Control: max-age` of the JWKS, and how long a new signing key is
    /// published before it signs. Shared by every server on the database: stored on the first
    /// start (default 5m), taken from there when omitted; a different value is refused (change
    /// it with `keymint settings set jwks-max-age`).
    #[arg(long, value_parser = duration)]
    jwks_max_age: Option<Duration>,
    /// The longest token lifetime any key may get. Shared like --jwks-max-age (first-start
    /// default 1h; `keymint settings set max-token-ttl`).
    #[arg(long, value_parser = duration)]
    max_token_ttl: Option<Duration>,
    /// Validity of each signed revocation list; it is re-signed every third of it. From 1m to 7d
    /// (the list format's cap, which verifiers enforce). Shared like --jwks-max-age (first-start
    /// default 24h; `keymint settings set revocation-list-validity`).
    #[arg(long, value_parser = duration)]
    revocation_list_validity: Option<Duration>,
    /// How long stored audit rows (admin actions) and usage rollups (issuances and refusals per
    /// key, client, origin and hour) are kept, and keys once revoked or expired; older ones are
    /// pruned in the background, in small batches. The per-issuance record is the log line, which
    /// this does not touch.
    #[arg(long, default_value = "90d", value_parser = duration, value_name = "DURATION")]
    audit_retention: Duration,
    /// How often usage counts are written to the database, from 1s to 1h: what a crash can lose
    /// of them (the log lines are written within 50 ms) and how late `keys usage` can be. Each
    /// key in use is one row written per interval.
    #[arg(long, default_value = "30s", value_parser = duration, value_name = "DURATION")]
    usage_flush_interval: Duration,
    /// How many connections may be open at once, all clients together; beyond, a new one is
    /// closed as soon as it is accepted (audited as `too_many_connections`). Keep it under the
    /// process's open-file limit (`ulimit -n`) less a few hundred.
    #[arg(long, default_value_t = ConnectionLimits::default().total, value_name = "N",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_connections: usize,
    /// How many connections one client (an IPv4 address or an IPv6 /64) may hold open at once
    /// (push streams and keep-alive connections included); beyond, a new one is closed at once
    /// (audited as `too_many_connections_from_client`). Once half of --max-connections is taken,
    /// its network (an IPv4 /24, an IPv6 /48) may hold four times this together
    /// (`too_many_connections_from_network`). A
    /// --trusted-proxy is bound by --max-connections only.
    #[arg(long, default_value_t = ConnectionLimits::default().per_client, value_name = "N",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_connections_per_client: usize,
    /// Serve plain HTTP on a non-loopback address because a TLS-terminating proxy is in front.
    #[arg(long)]
    behind_tls_proxy: bool,
    /// Behind --behind-tls-proxy: a proxy (CIDR) whose X-Forwarded-For is believed for the client
    /// address (rate limits, allow-lists, audit) and whose X-Forwarded-Proto: http makes the token
    /// endpoints refuse a key that reached the proxy in clear text. Repeat for several. Nothing
    /// else is believed, and from no one else.
    #[arg(
        long = "trusted-proxy",
        value_name = "CIDR",
        requires = "behind_tls_proxy",
        value_parser = crate::domain::client::parse_net
    )]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key", value_name = "PEM")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert", value_name = "PEM")]
    tls_key: Option<std::path::PathBuf>,
    /// Accept leaked-key reports from GitHub's secret scanning partner program at
    /// POST /v1/secret-scanning/github, verified against the scanner's public-key document: a
    /// file, or an HTTPS URL (GitHub's: https://api.github.com/meta/public_keys/secret_scanning),
    /// read again when a report names a key it does not list. Without it, reports are refused.
    #[arg(long, env = "KEYMINT_SECRET_SCANNING_KEYS", value_name = "FILE|URL",
          value_parser = |s: &str| ScannerKeySource::parse(s))]
    secret_scanning_keys: Option<ScannerKeySource>,
}

pub(crate) async fn run(global: &Global, args: Args) -> Result<ExitCode, CliError> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(crate::tls::server_config(cert, key).map_err(CliError::Usage)?)
        }
        _ => None,
    };
    if !args.listen.ip().is_loopback() && !args.behind_tls_proxy && tls.is_none() {
        return Err(CliError::Usage(format!(
            "refusing plain HTTP on {}: API keys would cross the network in clear text. Listen on \
             loopback, give --tls-cert and --tls-key, or pass --behind-tls-proxy when a \
             TLS-terminating proxy is in front",
            args.listen
        )));
    }
    if args.behind_tls_proxy && args.trusted_proxies.is_empty() {
        tracing::warn!(
            "--behind-tls-proxy without --trusted-proxy: every client appears as the proxy's \
             address, so IP allow-lists, per-client limits and the failed-authentication \
             throttle apply to all clients together (20 bad keys a minute lock everyone out); \
             name the proxy with --trusted-proxy CIDR"
        );
    }
    if args.audit_retention < Duration::from_secs(3600) {
        return Err(CliError::Usage(format!(
            "--audit-retention {}s is under an hour: usage is counted per hour, so a shorter \
             retention would delete the hour still being counted",
            args.audit_retention.as_secs()
        )));
    }
    if !usage::FLUSH_INTERVAL_RANGE.contains(&args.usage_flush_interval) {
        return Err(CliError::Usage(format!(
            "--usage-flush-interval {}s is outside 1s..1h",
            args.usage_flush_interval.as_secs_f64()
        )));
    }
    // A keys file that does not read is an operator's mistake: said now, before anything is
    // written.
    let scanner_keys = match args.secret_scanning_keys.clone() {
        Some(source) => Some(std::sync::Arc::new(
            ScannerKeyring::load(source)
                .await
                .map_err(|e| CliError::Usage(format!("--secret-scanning-keys: {e}")))?,
        )),
        None => None,
    };
    // Before anything is created, migrated or written: a refused start changes nothing.
    let data_dir = super::data_dir(global)?;
    let stored = super::settings::stored_before_open(global, data_dir.as_deref()).await?;
    let given = given(global, &args, &stored)?;
    for warning in settings::stale_warnings(&stored) {
        tracing::warn!("{warning}");
    }
    let resolved = settings::resolve(&stored, &given)
        .map_err(|e| super::settings::refusal(e, global, data_dir.as_deref()))?;
    let opened = open(global).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen on {}: {e}", args.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::Usage(format!("cannot read the listen address: {e}")))?;
    let url = format!("{}://{local}", if tls.is_some() { "https" } else { "http" });
    // The listen URL is the issuer only on a first start without --issuer-url; afterwards the
    // stored one holds, whatever --listen says.
    let listen_url = Issuer::new(url.as_str())
        .map_err(|e| CliError::Usage(format!("the listen URL {url} is no issuer: {e}")))?;
    let run_with = Settings::with_defaults(&resolved, || listen_url).map_err(flag_error)?;
    let issuer = run_with.issuer().clone();
    if let Some(warning) = settings::plain_http_warning(&issuer) {
        tracing::warn!("{warning}");
    }
    let cfg = ServeConfig {
        listen: local,
        issuer: issuer.clone(),
        jwks_max_age: run_with.jwks_max_age(),
        max_token_ttl: run_with.max_token_ttl(),
        list_validity: run_with.list_validity(),
        tls,
        trusted_proxies: args.trusted_proxies.clone(),
        audit_retention: args.audit_retention,
        usage_flush: args.usage_flush_interval,
        scanner_keys,
        connections: ConnectionLimits {
            total: args.max_connections,
            per_client: args.max_connections_per_client,
        },
    };
    let data_dir_shown = super::data_shown(global, opened.data_dir.as_deref());
    let same = if super::shared_database(global) {
        "--database-url"
    } else {
        "--data-dir"
    };
    // SIGINT or SIGTERM: stop accepting, drain in-flight requests, end event streams cleanly.
    let shutdown = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down: draining requests");
    };
    let announce = || {
        tracing::info!(%url, issuer = %issuer, data_dir = %data_dir_shown, "keymint listening");
        eprintln!(
            "keymint is listening on {url} (issuer {issuer}, data in {data_dir_shown})\n\n\
             Create a first API key (in another terminal, same {same}):\n  \
             keymint keys create --tenant acme --scope orders:read --audience https://api.example\n\
             Then trade it for a token:\n  \
             curl -s -X POST {url}/v1/token -H \"Authorization: Bearer $KEY\"\n"
        );
    };
    server::serve(
        opened.store,
        opened.secrets,
        cfg,
        listener,
        shutdown,
        announce,
    )
    .await
    .map_err(|e| super::settings::refusal(e, global, data_dir.as_deref()))?;
    Ok(ExitCode::SUCCESS)
}

/// The shared settings the flags name, each checked (`None`: omitted). A flag that repeats the
/// stored value is only checked to parse: a value stored before a cap or check existed stays in
/// force (with a warning) and a unit file that names it keeps starting; a new value meets them all.
fn given(global: &Global, args: &Args, stored: &Partial) -> Result<Partial, CliError> {
    let issuer = global
        .issuer_url
        .as_deref()
        .map(|text| match &stored.issuer {
            Some(s) if s.as_str() == text => Ok(s.clone()),
            _ => settings::check_issuer(text),
        })
        .transpose()
        .map_err(flag_error)?;
    for (name, d, was) in [
        (
            SettingName::MaxTokenTtl,
            args.max_token_ttl,
            stored.max_token_ttl,
        ),
        (
            SettingName::JwksMaxAge,
            args.jwks_max_age,
            stored.jwks_max_age,
        ),
        (
            SettingName::RevocationListValidity,
            args.revocation_list_validity,
            stored.list_validity,
        ),
    ] {
        if let Some(d) = d {
            if was == Some(d) {
                settings::check_duration(name, d).map_err(flag_error)?;
            } else {
                settings::check_new_duration(name, d).map_err(flag_error)?;
            }
        }
    }
    Ok(Partial {
        issuer,
        max_token_ttl: args.max_token_ttl,
        jwks_max_age: args.jwks_max_age,
        list_validity: args.revocation_list_validity,
    })
}

/// A bad value, said with the flag that gave it.
fn flag_error(e: DomainError) -> CliError {
    match e {
        DomainError::Invalid(InvalidInput::Setting { name, why }) => {
            CliError::Usage(format!("--{name}: {why}"))
        }
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use clap::Parser as _;

    use super::*;

    fn serve_flags(flags: &[&str]) -> (Global, Args) {
        let cli =
            super::super::Cli::try_parse_from(["keymint", "serve"].iter().chain(flags).copied())
                .unwrap();
        match cli.command {
            super::super::Command::Serve(args) => (cli.global, args),
            _ => panic!("not serve"),
        }
    }

    /// A value stored before a cap existed stays in force (with a warning), and a unit file that
    /// names it keeps starting; a new value above the cap is refused.
    #[test]
    fn a_flag_repeating_a_stored_value_above_a_new_cap_is_accepted_and_a_new_one_is_not() {
        let (global, args) = serve_flags(&["--jwks-max-age", "2d", "--max-token-ttl", "2d"]);
        let nothing = Partial::default();
        let Err(CliError::Usage(why)) = given(&global, &args, &nothing) else {
            panic!("a first start above the caps was accepted");
        };
        assert!(why.contains("above the cap"), "{why}");
        let two_days = Some(Duration::from_secs(2 * 24 * 3600));
        let stored = Partial {
            jwks_max_age: two_days,
            max_token_ttl: two_days,
            ..Partial::default()
        };
        let given = given(&global, &args, &stored).unwrap();
        assert_eq!(given.jwks_max_age, two_days);
        let warnings = settings::stale_warnings(&stored);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("keymint settings set jwks-max-age")),
            "{warnings:?}"
        );
    }

    /// Likewise an issuer URL stored before credentials and queries were refused: repeated, it
    /// starts; the warning does not repeat the URL's secret.
    #[test]
    fn a_stored_issuer_url_with_credentials_warns_without_repeating_them() {
        let url = "https://km:hunter2@issuer.example";
        let (global, args) = serve_flags(&["--issuer-url", url]);
        assert!(given(&global, &args, &Partial::default()).is_err());
        let stored = Partial {
            issuer: Some(keymint_jwks::Issuer::new(url).unwrap()),
            ..Partial::default()
        };
        assert!(given(&global, &args, &stored).is_ok());
        let warnings = settings::stale_warnings(&stored);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(!warnings[0].contains("hunter2"), "{warnings:?}");
        assert!(
            warnings[0].contains("settings set issuer-url"),
            "{warnings:?}"
        );
    }
}
