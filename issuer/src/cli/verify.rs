//! `keymint verify`: check a token against a key set and explain the verdict.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use keymint_jwks::{Audience, Issuer, UnixTime};
use keymint_verifier::Verifier;

use super::CliError;

/// Arguments of `keymint verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The token, or `-` (the default) to read it from stdin.
    #[arg(default_value = "-")]
    token: String,
    /// The key set: a JWKS file, as written by `keymint publish`.
    #[arg(long, value_name = "FILE")]
    jwks: PathBuf,
    /// The issuer the token must come from.
    #[arg(long)]
    issuer: String,
    /// The audience the token must be for.
    #[arg(long)]
    audience: String,
    /// A signed revocation list to check against. Without it, revocation is not checked and the
    /// output says so.
    #[arg(long, value_name = "FILE")]
    revocations: Option<PathBuf>,
    /// Print the verdict as JSON.
    #[arg(long)]
    json: bool,
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
    let issuer = Issuer::new(args.issuer).map_err(|e| usage(&e))?;
    let audience = Audience::new(args.audience).map_err(|e| usage(&e))?;
    let builder = Verifier::builder(issuer, audience).jwks_file(&args.jwks);
    let builder = match &args.revocations {
        Some(path) => builder.revocation_list_file(path),
        None => builder.dangerous().skip_revocation_checks(),
    };
    let verifier = builder.build().map_err(|e| usage(&e))?;
    let revocation_note = if args.revocations.is_some() {
        "checked"
    } else {
        "not checked (no --revocations)"
    };
    match verifier.verify_at(&token, UnixTime::now()) {
        Ok(ok) => {
            if args.json {
                let out = serde_json::json!({
                    "valid": true,
                    "kid": ok.kid().as_str(),
                    "claims": ok.claims(),
                    "revocation": revocation_note,
                });
                println!("{out}");
            } else {
                println!("valid (revocation {revocation_note})");
                println!("kid: {}", ok.kid());
                println!(
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
                });
                println!("{out}");
            } else {
                println!("invalid: {e} [{}]", e.code());
                if let Some(h) = header {
                    println!("header: {h}");
                }
            }
            Ok(ExitCode::from(1))
        }
    }
}
