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
    /// `-` (the default): the token is read from stdin, or from `KEYMINT_TOKEN` when set. A token
    /// is never taken from the command line, where every user of the machine can read it.
    #[arg(default_value = "-")]
    token: String,
    /// The key set: a JWKS URL (https://issuer/.well-known/jwks.json) or file.
    #[arg(long, value_name = "URL|FILE")]
    jwks: String,
    /// The issuer the token must come from. Required unless `--skip issuer`.
    #[arg(long)]
    issuer: Option<String>,
    /// The audience the token must be for. Required unless `--skip audience`.
    #[arg(long)]
    audience: Option<String>,
    /// A signed revocation list (URL or file) to check against. Required unless
    /// `--skip revocation`.
    #[arg(long, value_name = "URL|FILE")]
    revocations: Option<String>,
    /// Leave a check out on purpose (repeatable): `issuer`, `audience` or `revocation`. The
    /// verdict then says "partially valid" and names what was not checked.
    #[arg(long, value_enum, value_name = "CHECK")]
    skip: Vec<Check>,
    /// Print the verdict as JSON.
    #[arg(long)]
    json: bool,
}

/// A check `keymint verify` can be told to leave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Check {
    /// `iss`.
    Issuer,
    /// `aud`.
    Audience,
    /// The revocation list.
    Revocation,
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
    if args.token != "-" {
        return Err(CliError::Usage(
            "pass the token on stdin or in KEYMINT_TOKEN, not as an argument: the command line \
             is visible to every user of this machine"
                .into(),
        ));
    }
    let token = match std::env::var("KEYMINT_TOKEN") {
        Ok(t) if !t.trim().is_empty() => t.trim().to_owned(),
        _ => {
            let mut s = String::new();
            std::io::stdin()
                .take(64 * 1024)
                .read_to_string(&mut s)
                .map_err(|e| CliError::Usage(format!("reading the token from stdin: {e}")))?;
            s.trim().to_owned()
        }
    };
    let usage = |e: &dyn std::fmt::Display| CliError::Usage(e.to_string());
    let skipped = |c: Check| args.skip.contains(&c);
    let missing: Vec<&str> = [
        (
            args.issuer.is_none() && !skipped(Check::Issuer),
            "--issuer (or --skip issuer)",
        ),
        (
            args.audience.is_none() && !skipped(Check::Audience),
            "--audience (or --skip audience)",
        ),
        (
            args.revocations.is_none() && !skipped(Check::Revocation),
            "--revocations (or --skip revocation)",
        ),
    ]
    .into_iter()
    .filter_map(|(m, flag)| m.then_some(flag))
    .collect();
    if !missing.is_empty() {
        return Err(CliError::Usage(format!(
            "a verdict needs every check: give {}",
            missing.join(", ")
        )));
    }
    let mut notes = Vec::new();
    let issuer = match args.issuer {
        Some(i) => i,
        None => {
            notes.push("issuer not checked (--skip issuer)");
            unverified_claim(&token, "iss").unwrap_or_else(|| "unknown".into())
        }
    };
    let audience = match args.audience {
        Some(a) => a,
        None => {
            notes.push("audience not checked (--skip audience)");
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
            notes.push("revocation not checked (--skip revocation)");
            builder.dangerous().skip_revocation_checks()
        }
    };
    let verifier = builder.build().map_err(|e| usage(&e))?;
    match verifier.verify_at(&token, UnixTime::now()) {
        Ok(ok) => {
            if args.json {
                let out = serde_json::json!({
                    "valid": notes.is_empty(),
                    "partially_valid": !notes.is_empty(),
                    "kid": ok.kid().as_str(),
                    "claims": ok.claims(),
                    "not_checked": notes,
                });
                say!("{out}");
            } else {
                say!(
                    "{}",
                    if notes.is_empty() {
                        "valid"
                    } else {
                        "partially valid: signature and times hold, but not every check ran"
                    }
                );
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
