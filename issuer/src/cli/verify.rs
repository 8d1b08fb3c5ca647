//! `keymint verify`: check a token against a key set and explain the verdict.

use std::io::Read as _;
use std::process::ExitCode;
use std::time::Duration;

use keymint_jwks::{Audience, Issuer, Jwks, UnixTime};
use keymint_verifier::Verifier;

use super::CliError;

/// Arguments of `keymint verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The token, or `-` (the default) to read it from stdin, which keeps it out of process lists.
    #[arg(default_value = "-")]
    token: String,
    /// The key set: a JWKS URL (https://issuer/.well-known/jwks.json) or file.
    #[arg(long, value_name = "URL|FILE")]
    jwks: String,
    /// The issuer the token must come from (default: not checked, taken from the token).
    #[arg(long)]
    issuer: Option<String>,
    /// The audience the token must be for (default: not checked, taken from the token).
    #[arg(long)]
    audience: Option<String>,
    /// A signed revocation list (URL or file) to check against. Without it revocation is not
    /// checked, and the output says so.
    #[arg(long, value_name = "URL|FILE")]
    revocations: Option<String>,
    /// Print the verdict as JSON.
    #[arg(long)]
    json: bool,
}

const MAX_FETCH: u64 = 64 * 1024 * 1024;

fn fetch(source: &str) -> Result<String, CliError> {
    let fail = |e: &dyn std::fmt::Display| CliError::Usage(format!("{source}: {e}"));
    if source.starts_with("http://") || source.starts_with("https://") {
        let res = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .build()
            .get(source)
            .call()
            .map_err(|e| fail(&e))?;
        let mut text = String::new();
        res.into_reader()
            .take(MAX_FETCH)
            .read_to_string(&mut text)
            .map_err(|e| fail(&e))?;
        Ok(text)
    } else {
        std::fs::read_to_string(source).map_err(|e| fail(&e))
    }
}

/// Reads a claim from the token without verifying it, to fill in an unchecked default.
fn unverified_claim(token: &str, claim: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = keymint_jwks::jws::decode_segment(payload, "payload").ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    match v.get(claim)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(a) => a.first().and_then(|s| s.as_str()).map(str::to_owned),
        _ => None,
    }
}

pub(crate) fn run(args: Args) -> Result<ExitCode, CliError> {
    let token = if args.token == "-" {
        let mut s = String::new();
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut s)
            .map_err(|e| CliError::Usage(format!("reading the token from stdin: {e}")))?;
        s.trim().to_owned()
    } else {
        args.token
    };
    let usage = |e: &dyn std::fmt::Display| CliError::Usage(e.to_string());
    let mut notes = Vec::new();
    let issuer = match args.issuer {
        Some(i) => i,
        None => {
            notes.push("issuer not checked (no --issuer)");
            unverified_claim(&token, "iss").unwrap_or_else(|| "unknown".into())
        }
    };
    let audience = match args.audience {
        Some(a) => a,
        None => {
            notes.push("audience not checked (no --audience)");
            unverified_claim(&token, "aud").unwrap_or_else(|| "unknown".into())
        }
    };
    let jwks = Jwks::from_json(fetch(&args.jwks)?.as_bytes()).map_err(|e| usage(&e))?;
    let builder = Verifier::builder(
        Issuer::new(issuer).map_err(|e| usage(&e))?,
        Audience::new(audience).map_err(|e| usage(&e))?,
    )
    .jwks(jwks);
    let builder = match &args.revocations {
        Some(source) => builder.revocation_list(fetch(source)?),
        None => {
            notes.push("revocation not checked (no --revocations)");
            builder.dangerous().skip_revocation_checks()
        }
    };
    let verifier = builder.build().map_err(|e| usage(&e))?;
    match verifier.verify_at(&token, UnixTime::now()) {
        Ok(ok) => {
            if args.json {
                let out = serde_json::json!({
                    "valid": true,
                    "kid": ok.kid().as_str(),
                    "claims": ok.claims(),
                    "not_checked": notes,
                });
                say!("{out}");
            } else {
                say!("valid");
                for n in &notes {
                    say!("note: {n}");
                }
                say!("kid: {}", ok.kid());
                say!(
                    "{}",
                    serde_json::to_string_pretty(ok.claims()).unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            // The header is not secret and helps explain the verdict; jsonwebtoken decodes it
            // without touching any key.
            let header = jsonwebtoken::decode_header(&token).ok().map(
                |h| serde_json::json!({"alg": format!("{:?}", h.alg), "kid": h.kid, "typ": h.typ}),
            );
            if args.json {
                let out = serde_json::json!({
                    "valid": false,
                    "error": e.code(),
                    "reason": e.to_string(),
                    "header": header,
                    "not_checked": notes,
                });
                say!("{out}");
            } else {
                say!("invalid: {e} [{}]", e.code());
                if let Some(h) = header {
                    say!("header: {h}");
                }
            }
            Ok(ExitCode::from(1))
        }
    }
}
