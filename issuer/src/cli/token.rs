//! `keymint token`: exchange an API key for a token. The key comes from `KEYMINT_API_KEY` or stdin,
//! never from argv (argv shows in process lists).

use std::io::Read as _;
use std::process::ExitCode;
use std::time::Duration;

use zeroize::Zeroizing;

use super::{CliError, duration};

/// Arguments of `keymint token`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A scope to ask for (repeat for several; default: all of the key's).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// The audience to ask for (required when the key has several).
    #[arg(long)]
    audience: Option<String>,
    /// Lifetime to ask for (it may be cut down; the answer's expires_in says).
    #[arg(long, value_parser = duration)]
    ttl: Option<Duration>,
    /// Print the whole token response as JSON instead of the bare token.
    #[arg(long)]
    json: bool,
}

fn read_key() -> Result<Zeroizing<String>, CliError> {
    if let Ok(k) = std::env::var("KEYMINT_API_KEY") {
        return Ok(Zeroizing::new(k.trim().to_owned()));
    }
    let mut s = Zeroizing::new(String::new());
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut s)
        .map_err(|e| CliError::Usage(format!("reading the API key from stdin: {e}")))?;
    let key = Zeroizing::new(s.trim().to_owned());
    if key.is_empty() {
        return Err(CliError::Usage(
            "no API key: set KEYMINT_API_KEY or pipe the key on stdin".into(),
        ));
    }
    Ok(key)
}

pub(crate) fn run(global: &super::Global, args: Args) -> Result<ExitCode, CliError> {
    let issuer_url = global.issuer_url.as_deref().ok_or_else(|| {
        CliError::Usage("keymint token needs --issuer-url (or KEYMINT_ISSUER_URL)".into())
    })?;
    let key = read_key()?;
    let mut body = serde_json::Map::new();
    if !args.scopes.is_empty() {
        body.insert("scope".into(), args.scopes.join(" ").into());
    }
    if let Some(a) = args.audience {
        body.insert("audience".into(), a.into());
    }
    if let Some(t) = args.ttl {
        body.insert("ttl".into(), t.as_secs().into());
    }
    super::remote::refuse_plain_http(issuer_url)?;
    let url = format!("{}/v1/token", issuer_url.trim_end_matches('/'));
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    let res = agent
        .post(&url)
        .set("Authorization", &format!("Bearer {}", key.as_str()))
        .set("Content-Type", "application/json")
        .send_string(&serde_json::Value::Object(body).to_string());
    let (ok, res) = match res {
        Ok(r) => (true, r),
        Err(ureq::Error::Status(_, r)) => (false, r),
        Err(e) => return Err(CliError::Usage(format!("cannot reach {url}: {e}"))),
    };
    let status = res.status();
    let text = Zeroizing::new(res.into_string().unwrap_or_default());
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    if !ok {
        eprintln!(
            "keymint: the issuer refused ({status}): {} {}",
            json.get("error")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("error"),
            json.get("error_description")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
        );
        return Ok(ExitCode::from(1));
    }
    if args.json {
        say!("{}", text.as_str());
    } else {
        say!(
            "{}",
            json.get("access_token")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
        );
        eprintln!(
            "(expires in {}s, scope \"{}\")",
            json.get("expires_in").unwrap_or(&serde_json::Value::Null),
            json.get("scope")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
