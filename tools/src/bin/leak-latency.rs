//! Leaked-key report to refusal, on loopback: for each round, a new key and a token a connected
//! verifier (live sources with the push channel) accepts; then a secret-scanning report naming the
//! key, signed like GitHub signs them (ECDSA P-256 / SHA-256, DER, base64), is posted to the
//! issuer, and the clock runs from just before the POST until the verifier refuses the token as
//! revoked. Prints p50 / p99 / max over the rounds. Driven by `scripts/bench-leak-report`.
//!
//!   leak-latency --issuer http://127.0.0.1:PORT --keymint BIN --data-dir DIR \
//!     --scanner-key PKCS8.pem --scanner-key-id ID [--reports 20]
#![allow(clippy::disallowed_methods)] // a benchmark driver reads the clock

use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use keymint_jwks::{Audience, Issuer};
use keymint_verifier::live::LiveConfig;
use keymint_verifier::{Verifier, VerifyError};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};

const AUDIENCE: &str = "https://api.example";
/// How long one round may wait for the refusal before it counts as a failure.
const ROUND_DEADLINE: Duration = Duration::from_secs(10);

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn create_key(bin: &str, data_dir: &str, round: usize) -> Result<(String, String), String> {
    let out = std::process::Command::new(bin)
        .args(["keys", "create", "--json", "--scope", "orders:read"])
        .args([
            "--tenant",
            &format!("leaky-{round}"),
            "--audience",
            AUDIENCE,
        ])
        .args(["--data-dir", data_dir])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let field = |n: &str| {
        v.get(n)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("no {n} in keys create's answer"))
    };
    Ok((field("key_id")?, field("key")?))
}

fn exchange(agent: &ureq::Agent, issuer: &str, key: &str) -> Result<String, String> {
    let body = agent
        .post(&format!("{issuer}/v1/token"))
        .set("Authorization", &format!("Bearer {key}"))
        .call()
        .map_err(|e| e.to_string())?
        .into_string()
        .map_err(|e| e.to_string())?;
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("access_token")?.as_str().map(str::to_owned))
        .ok_or(body)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied().unwrap_or(f64::NAN)
}

fn run() -> Result<bool, Box<dyn Error>> {
    let issuer = arg("--issuer").ok_or("--issuer URL")?;
    if !issuer.starts_with("http://127.0.0.1:") {
        return Err("loopback only: --issuer http://127.0.0.1:PORT".into());
    }
    let bin = arg("--keymint").ok_or("--keymint BIN")?;
    let data_dir = arg("--data-dir").ok_or("--data-dir DIR")?;
    let key_id = arg("--scanner-key-id").ok_or("--scanner-key-id ID")?;
    let pem = std::fs::read_to_string(arg("--scanner-key").ok_or("--scanner-key PEM")?)?;
    let reports: usize = arg("--reports").map_or(Ok(20), |s| s.parse())?;
    if !(1..=1000).contains(&reports) {
        return Err("--reports must be between 1 and 1000".into());
    }
    let rng = ring::rand::SystemRandom::new();
    let der = pem::parse(pem)?;
    let signer = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der.contents(), &rng)
        .map_err(|e| format!("scanner key: {e}"))?;
    let (verifier, live) =
        Verifier::builder(Issuer::new(issuer.as_str())?, Audience::new(AUDIENCE)?)
            .build_live(LiveConfig::discover(&issuer)?)?;
    if !live.wait_ready(Duration::from_secs(10)) {
        return Err("the verifier's live sources are not ready after 10 s".into());
    }
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let mut ms = Vec::with_capacity(reports);
    for round in 0..reports {
        let (id, key) = create_key(&bin, &data_dir, round)?;
        let token = exchange(&agent, &issuer, &key)?;
        verifier
            .verify(&token)
            .map_err(|e| format!("round {round}: the fresh token is refused: {e}"))?;
        let body = serde_json::json!([{"token": key, "type": "keymint_api_key",
            "url": format!("https://github.com/octo/leaky/blob/{round}/.env"), "source": "content"}])
        .to_string();
        let sig = signer
            .sign(&rng, body.as_bytes())
            .map_err(|e| format!("sign: {e}"))?;
        let sig = base64_std(sig.as_ref());
        let start = Instant::now();
        let answer = agent
            .post(&format!("{issuer}/v1/secret-scanning/github"))
            .set("Content-Type", "application/json")
            .set("Github-Public-Key-Identifier", &key_id)
            .set("Github-Public-Key-Signature", &sig)
            .send_string(&body)
            .map_err(|e| format!("round {round}: the report was refused: {e}"))?
            .into_string()?;
        if !answer.contains("\"true_positive\"") {
            return Err(format!("round {round}: key {id} not recognised: {answer}").into());
        }
        loop {
            match verifier.verify(&token) {
                Err(VerifyError::Revoked(_)) => break,
                _ if start.elapsed() > ROUND_DEADLINE => {
                    return Err(
                        format!("round {round}: still accepted after {ROUND_DEADLINE:?}").into(),
                    );
                }
                _ => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let p99 = percentile(&ms, 0.99);
    println!(
        "reports {} p50_ms {:.1} p99_ms {:.1} max_ms {:.1}",
        ms.len(),
        percentile(&ms, 0.5),
        p99,
        ms.last().copied().unwrap_or(f64::NAN)
    );
    Ok(p99 < 1000.0)
}

/// Standard base64 with padding (the signature header's encoding).
fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("leak-latency: {e}");
            ExitCode::from(2)
        }
    }
}
