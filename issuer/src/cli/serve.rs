//! `keymint serve`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use keymint_jwks::{Issuer, MAX_LIST_VALIDITY};

use super::{CliError, Global, duration, open};
use crate::server::{self, ServeConfig};

/// Arguments of `keymint serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "KEYMINT_LISTEN")]
    listen: SocketAddr,
    /// JWKS cache period: `Cache-Control: max-age` of the JWKS, and how long a new signing key is
    /// published before it signs.
    #[arg(long, default_value = "5m", value_parser = duration)]
    jwks_max_age: Duration,
    /// The longest token lifetime any key may get.
    #[arg(long, default_value = "1h", value_parser = duration)]
    max_token_ttl: Duration,
    /// Validity of each signed revocation list; it is re-signed every third of it. At most 7d
    /// (the list format's cap, which verifiers enforce).
    #[arg(long, default_value = "24h", value_parser = duration)]
    revocation_list_validity: Duration,
    /// How long stored audit rows (admin actions) and usage rollups (issuances and refusals per
    /// key, client, origin and hour) are kept; older ones are pruned in the background, in small
    /// batches. The per-issuance record is the log line, which this does not touch.
    #[arg(long, default_value = "90d", value_parser = duration, value_name = "DURATION")]
    audit_retention: Duration,
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
        requires = "behind_tls_proxy"
    )]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key", value_name = "PEM")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert", value_name = "PEM")]
    tls_key: Option<std::path::PathBuf>,
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
    if args.max_token_ttl.is_zero() || args.revocation_list_validity < Duration::from_secs(60) {
        return Err(CliError::Usage(
            "--max-token-ttl must be positive and --revocation-list-validity at least 1m".into(),
        ));
    }
    if args.audit_retention < Duration::from_secs(3600) {
        return Err(CliError::Usage(format!(
            "--audit-retention {}s is under an hour: usage is counted per hour, so a shorter \
             retention would delete the hour still being counted",
            args.audit_retention.as_secs()
        )));
    }
    if args.revocation_list_validity > MAX_LIST_VALIDITY {
        return Err(CliError::Usage(format!(
            "--revocation-list-validity {}s is above the cap of {}s (7d): verifiers refuse a \
             revocation list valid for longer, so none would accept this issuer's lists",
            args.revocation_list_validity.as_secs(),
            MAX_LIST_VALIDITY.as_secs()
        )));
    }
    let opened = open(global).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen on {}: {e}", args.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::Usage(format!("cannot read the listen address: {e}")))?;
    let url = format!("{}://{local}", if tls.is_some() { "https" } else { "http" });
    let issuer = Issuer::new(global.issuer_url.clone().unwrap_or_else(|| url.clone()))
        .map_err(|e| CliError::Usage(format!("--issuer-url: {e}")))?;
    let cfg = ServeConfig {
        listen: local,
        issuer: issuer.clone(),
        jwks_max_age: args.jwks_max_age,
        max_token_ttl: args.max_token_ttl,
        list_validity: args.revocation_list_validity,
        tls,
        trusted_proxies: args.trusted_proxies.clone(),
        audit_retention: args.audit_retention,
    };
    let data_dir = opened.data_dir.display().to_string();
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
    tracing::info!(%url, issuer = %issuer, data_dir = %data_dir, "keymint listening");
    eprintln!(
        "keymint is listening on {url} (issuer {issuer}, data in {data_dir})\n\n\
         Create a first API key (in another terminal, same --data-dir):\n  \
         keymint keys create --tenant acme --scope orders:read --audience https://api.example\n\
         Then trade it for a token:\n  \
         curl -s -X POST {url}/v1/token -H \"Authorization: Bearer $KEY\"\n"
    );
    server::serve(opened.store, opened.secrets, cfg, listener, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
