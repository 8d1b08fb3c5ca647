//! An API server protected by `keymint-verifier`.
//!
//! `GET /orders` needs `orders:read`, `POST /orders` needs `orders:write`; both answer JSON naming
//! the caller's tenant. `GET /healthz` is open. Tokens are verified offline: the key set and the
//! revocation list come from the issuer (or from files written by `keymint publish`) and are kept
//! fresh in the background; revocations arrive by push within a second.
//!
//! ```text
//! cargo run -p api-server -- --listen 127.0.0.1:9090 --audience https://api.example \
//!     --issuer-url http://127.0.0.1:8080
//! cargo run -p api-server -- --listen 127.0.0.1:9090 --audience https://api.example \
//!     --issuer http://127.0.0.1:8080 --jwks public/jwks.json --revocations public/revocations.jws
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use keymint_jwks::{Audience, Issuer};
use keymint_verifier::Verifier;
use keymint_verifier::live::{LiveConfig, Source};

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))
}

/// An example API protected by keymint tokens.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
    /// The audience this API accepts (`aud`).
    #[arg(long)]
    audience: String,
    /// The issuer's URL: discovery (RFC 8414) finds the key set, the list and the push channel, and
    /// it is the expected `iss`.
    #[arg(long, conflicts_with_all = ["jwks", "revocations", "issuer"])]
    issuer_url: Option<String>,
    /// Key set source (URL or file) when not using --issuer-url.
    #[arg(long, requires_all = ["revocations", "issuer"])]
    jwks: Option<String>,
    /// Revocation list source (URL or file) when not using --issuer-url.
    #[arg(long)]
    revocations: Option<String>,
    /// The expected `iss` when not using --issuer-url.
    #[arg(long)]
    issuer: Option<String>,
    /// Clock leeway for exp/nbf/iat.
    #[arg(long, default_value = "60s", value_parser = duration)]
    leeway: Duration,
    /// Never poll the sources more often than this.
    #[arg(long, default_value = "5s", value_parser = duration)]
    min_refresh: Duration,
    /// Poll the sources at least this often.
    #[arg(long, default_value = "5m", value_parser = duration)]
    max_refresh: Duration,
    /// Fail closed (503) once the key set could not be refreshed for this long.
    #[arg(long, default_value = "1h", value_parser = duration)]
    max_stale: Duration,
    /// The URL clients reach this API at (DPoP proofs name it in `htu`); default
    /// `http://<listen>`. Set it behind a proxy or TLS terminator.
    #[arg(long)]
    public_url: Option<String>,
    /// At most one key set refetch per this period on unknown kids.
    #[arg(long, default_value = "30s", value_parser = duration)]
    kid_cooldown: Duration,
}

fn build(args: &Args) -> Result<(Verifier, keymint_verifier::live::LiveHandle), String> {
    let (issuer, live) = match (
        &args.issuer_url,
        &args.jwks,
        &args.revocations,
        &args.issuer,
    ) {
        (Some(url), None, None, None) => (
            url.clone(),
            LiveConfig::discover(url).map_err(|e| e.to_string())?,
        ),
        (None, Some(jwks), Some(list), Some(iss)) => (
            iss.clone(),
            LiveConfig::new(Source::parse(jwks), Source::parse(list)),
        ),
        _ => return Err("give --issuer-url, or --jwks, --revocations and --issuer".into()),
    };
    let live = live
        .min_refresh(args.min_refresh)
        .max_refresh(args.max_refresh)
        .max_stale(args.max_stale)
        .kid_cooldown(args.kid_cooldown);
    Verifier::builder(
        Issuer::new(issuer).map_err(|e| e.to_string())?,
        Audience::new(args.audience.as_str()).map_err(|e| e.to_string())?,
    )
    .leeway(args.leeway)
    .dpop_base_url(
        args.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", args.listen)),
    )
    .build_live(live)
    .map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let (verifier, live) = match build(&args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("api-server: {e}");
            return ExitCode::from(2);
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), live.ready())
        .await
        .is_err()
    {
        eprintln!(
            "api-server: key set or revocation list not loaded yet; answering 503 until they are"
        );
    }
    let app = api_server::router(&verifier);
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("api-server: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(2);
        }
    };
    let addr = listener.local_addr().unwrap_or(args.listen);
    eprintln!("api-server listening on http://{addr}");
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("api-server: {e}");
        return ExitCode::from(1);
    }
    drop(live);
    ExitCode::SUCCESS
}
