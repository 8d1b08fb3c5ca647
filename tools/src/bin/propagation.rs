//! Revocation propagation benchmark: N simulated verifiers subscribe to the issuer's push channel;
//! the driver revokes keys with the `keymint` CLI and measures, for every subscriber, the time from
//! the moment the CLI returns to the moment that subscriber receives the new list.
//! `scripts/bench-propagation` runs it against a fresh `keymint serve`.
//!
//! `propagation --issuer URL --keymint BIN --data-dir DIR [--subscribers 1000] [--revocations 10]`

use std::collections::HashMap;
use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

type Seen = Arc<Mutex<Vec<HashMap<i64, Instant>>>>;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

async fn subscriber(
    idx: usize,
    host: String,
    path: String,
    seen: Seen,
) -> Result<(), Box<dyn Error + Send + Sync>> {
    let mut stream = TcpStream::connect(&host).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n");
    stream.write_all(req.as_bytes()).await?;
    let mut lines = BufReader::new(stream).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(id) = line
            .strip_prefix("id:")
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            let now = Instant::now();
            if let Ok(mut s) = seen.lock()
                && let Some(m) = s.get_mut(idx)
            {
                m.entry(id).or_insert(now);
            }
        }
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn cli(bin: &str, data_dir: &str, args: &[&str]) -> Result<String, Box<dyn Error>> {
    let out = std::process::Command::new(bin)
        .args(args)
        .args(["--data-dir", data_dir])
        .output()?;
    if !out.status.success() {
        return Err(format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let issuer = arg("--issuer").ok_or("--issuer URL")?;
    let bin = arg("--keymint").ok_or("--keymint BIN")?;
    let data_dir = arg("--data-dir").ok_or("--data-dir DIR")?;
    let n: usize = arg("--subscribers").map_or(Ok(1000), |s| s.parse())?;
    let rounds: usize = arg("--revocations").map_or(Ok(10), |s| s.parse())?;
    let host = issuer
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let seen: Seen = Arc::new(Mutex::new(vec![HashMap::new(); n]));
    for i in 0..n {
        let (host, seen) = (host.clone(), Arc::clone(&seen));
        tokio::spawn(async move {
            if let Err(e) = subscriber(i, host, "/v1/revocations/events".into(), seen).await {
                eprintln!("subscriber {i}: {e}");
            }
        });
    }
    // Wait until every subscriber has the current list.
    let connected = Instant::now();
    loop {
        let ready = seen
            .lock()
            .map(|s| s.iter().filter(|m| !m.is_empty()).count())
            .unwrap_or(0);
        if ready == n {
            break;
        }
        if connected.elapsed() > Duration::from_secs(60) {
            return Err(format!("only {ready} of {n} subscribers connected").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("{n} subscribers connected in {:?}", connected.elapsed());
    let mut latencies = Vec::with_capacity(n * rounds);
    for r in 0..rounds {
        let created = cli(
            &bin,
            &data_dir,
            &[
                "keys",
                "create",
                "--tenant",
                "bench",
                "--scope",
                "a",
                "--audience",
                "https://api.example",
                "--json",
            ],
        )?;
        let id = serde_json::from_str::<serde_json::Value>(&created)?
            .get("key_id")
            .and_then(serde_json::Value::as_str)
            .ok_or("no key_id")?
            .to_owned();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before: i64 = seen
            .lock()
            .map(|s| s.iter().flat_map(|m| m.keys().copied()).max().unwrap_or(0))
            .unwrap_or(0);
        cli(&bin, &data_dir, &["keys", "revoke", &id])?;
        let revoked = Instant::now();
        loop {
            let done = seen
                .lock()
                .map(|s| s.iter().all(|m| m.keys().any(|&k| k > before)))
                .unwrap_or(false);
            if done || revoked.elapsed() > Duration::from_secs(10) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let s = seen.lock().map_err(|_| "poisoned")?;
        for m in s.iter() {
            match m
                .iter()
                .filter(|(k, _)| **k > before)
                .map(|(_, t)| *t)
                .min()
            {
                Some(t) => latencies.push(t.saturating_duration_since(revoked)),
                None => latencies.push(Duration::from_secs(10)),
            }
        }
        eprintln!("revocation {}/{rounds} delivered", r + 1);
    }
    latencies.sort();
    println!(
        "subscribers {n} revocations {rounds} p50_ms {:.1} p99_ms {:.1} max_ms {:.1}",
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
    );
    Ok(())
}
