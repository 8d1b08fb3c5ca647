//! Soak: a bounded run of token issuance and verification while revocations and signing-key
//! rotations go on, sampled every 10 s. `scripts/soak [DURATION]` runs it against a fresh
//! `keymint serve` on loopback.
//!
//! - Client threads exchange API keys for tokens at `POST /v1/token` at a steady total rate (not
//!   flat out), each request's latency recorded in its 10-second window.
//! - Every token is verified at once by a `keymint-verifier` `Verifier` in this process, fed by the
//!   issuer's live sources (key set and revocation list by URL, plus the push channel).
//! - Every 10 s (plus a random 0-1 s), in turn: a token's `jti` is revoked (`keymint revoke
//!   token`), a key is revoked and replaced (`keymint keys revoke` + `keys create`), a key is
//!   rotated with `--revoke-old`. The revoked token (and, for a key, a token it minted) must be
//!   refused by the verifier within 1 s of the CLI returning, and the issuer must refuse a revoked
//!   key within 1 s; tokens it still minted meanwhile must not verify.
//! - Every 60 s (plus a random 0-1 s) `keymint signing-keys rotate` (ES256 and EdDSA in turn); the
//!   issuer promotes the new key after its `--jwks-max-age`, and no token it signs may meet an
//!   unknown `kid`.
//! - Every 10 s a row: requests, token-endpoint p50/p99/max, expected 401s, errors, revocations
//!   and the slowest, signing keys seen, the issuer's RSS (and its anonymous part) from
//!   `/proc/PID/status`, and this process's RSS (the verifier's process).
//!
//! Errors: a token answer other than 200 (save the 401 of a key being revoked), a transport error,
//! a verification failure of a token whose key is not revoked, a revocation not seen within 1 s, a
//! failed CLI command. The run fails if there is any, or, in runs of 3 minutes or more, if the
//! issuer's or this process's memory (RSS) in the last minute exceeds 1.5 × its level in the first
//! minute (the warm-up: at 300 tokens/s the verified-token cache fills its 16 MiB budget in about
//! a minute).
//!
//! `soak --issuer URL --keymint BIN --data-dir DIR --issuer-pid PID [--duration 10m] [--rate 300]
//! [--clients 8] [--keys 4]`

use std::collections::{HashMap, HashSet};
use std::error::Error;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use keymint_jwks::{Audience, Issuer, RevocationTarget};
use keymint_verifier::live::LiveConfig;
use keymint_verifier::{Verifier, VerifyError};

/// The columns: requests, token-endpoint latency, expected 401s, errors, revocations checked and
/// the slowest, signing kids seen, the issuer's RSS (and its anonymous part), this process's RSS.
const HEADER: &str = "  t_s requests  p50_ms  p99_ms  max_ms  401s errors  revs rev_max_ms kids issuer_MB issuer_anon verifier_MB";
const AUDIENCE: &str = "https://api.example";
const WINDOW: Duration = Duration::from_secs(10);
const REVOKE_EVERY: Duration = Duration::from_secs(10);
const ROTATE_EVERY: Duration = Duration::from_secs(60);
/// A revocation must reach the verifier (and the issuer) within this long.
const PROPAGATION_BAR: Duration = Duration::from_secs(1);
/// Memory in the last minute may be at most this multiple of the level after the first minute.
const RSS_GROWTH_LIMIT: f64 = 1.5;
/// Runs shorter than this only check errors: the first minute is warm-up.
const MIN_FOR_MEMORY: Duration = Duration::from_secs(180);
/// Error details printed to stderr before going quiet (the counters keep counting).
const ERRORS_SHOWN: u64 = 40;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// `90`, `90s`, `10m`, `1h`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("bad duration {s:?} (use s, m or h)")),
    };
    Ok(Duration::from_secs(secs))
}

#[derive(Debug, Clone)]
struct ApiKey {
    id: String,
    key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorKind {
    Token,
    Verify,
    Late,
    Cli,
}

/// What happened in one 10-second window.
#[derive(Debug, Default)]
struct Window {
    latencies_us: Vec<u64>,
    requests: u64,
    issued: u64,
    expected_401: u64,
    token_errors: u64,
    verify_errors: u64,
    late: u64,
    cli_errors: u64,
    /// CLI return → verifier refuses the revoked token, and CLI start → the same.
    revocations: Vec<(Duration, Duration)>,
    kids: HashSet<String>,
}

impl Window {
    fn errors(&self) -> u64 {
        self.token_errors + self.verify_errors + self.late + self.cli_errors
    }
}

/// One printed row.
#[derive(Debug)]
struct Row {
    t: u64,
    requests: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    expected_401: u64,
    errors: u64,
    revocations: usize,
    revocation_max_ms: f64,
    kids: usize,
    issuer_rss_kb: u64,
    /// Of which anonymous (heap): the rest is mapped files and shared memory (SQLite's WAL index).
    issuer_anon_kb: u64,
    own_rss_kb: u64,
}

struct Shared {
    issuer: String,
    bin: String,
    data_dir: String,
    verifier: Verifier,
    pool: RwLock<Vec<ApiKey>>,
    revoked_keys: RwLock<HashSet<String>>,
    /// The latest verified token of each key: revocation victims.
    recent: Mutex<HashMap<String, String>>,
    window: Mutex<Window>,
    picks: AtomicU64,
    errors_shown: AtomicU64,
}

impl Shared {
    fn window(&self) -> MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn error(&self, kind: ErrorKind, what: &str) {
        {
            let mut w = self.window();
            match kind {
                ErrorKind::Token => w.token_errors += 1,
                ErrorKind::Verify => w.verify_errors += 1,
                ErrorKind::Late => w.late += 1,
                ErrorKind::Cli => w.cli_errors += 1,
            }
        }
        if self.errors_shown.fetch_add(1, Ordering::Relaxed) < ERRORS_SHOWN {
            eprintln!("ERROR {kind:?}: {what}");
        }
    }

    fn is_revoked(&self, key_id: &str) -> bool {
        self.revoked_keys
            .read()
            .map(|s| s.contains(key_id))
            .unwrap_or(false)
    }

    fn pick(&self) -> Option<ApiKey> {
        let pool = self.pool.read().ok()?;
        let n = self.picks.fetch_add(1, Ordering::Relaxed);
        let len = u64::try_from(pool.len()).ok().filter(|&l| l > 0)?;
        pool.get(usize::try_from(n % len).ok()?).cloned()
    }

    fn cli(&self, args: &[&str]) -> Result<String, String> {
        let out = std::process::Command::new(&self.bin)
            .args(args)
            .args(["--data-dir", &self.data_dir])
            .output()
            .map_err(|e| format!("{args:?}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{args:?}: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn create_key(&self) -> Result<ApiKey, String> {
        let out = self.cli(&[
            "keys",
            "create",
            "--tenant",
            "soak",
            "--scope",
            "orders:read",
            "--audience",
            AUDIENCE,
            "--json",
        ])?;
        parse_key(&out)
    }
}

fn parse_key(json: &str) -> Result<ApiKey, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let field = |name: &str| {
        v.get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("no {name} in {json}"))
    };
    Ok(ApiKey {
        id: field("key_id")?,
        key: field("key")?,
    })
}

/// `POST /v1/token` with `key`: `Ok(token)`, or `Err((status, body))` (status 0: transport error).
fn exchange(agent: &ureq::Agent, url: &str, key: &str) -> Result<String, (u16, String)> {
    let res = agent
        .post(url)
        .set("Authorization", &format!("Bearer {key}"))
        .set("Content-Type", "application/json")
        .send_string(r#"{"scope":"orders:read"}"#);
    match res {
        Ok(r) => {
            let body = r.into_string().map_err(|e| (0, e.to_string()))?;
            serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("access_token")?.as_str().map(str::to_owned))
                .ok_or((200, body))
        }
        Err(ureq::Error::Status(code, r)) => Err((code, r.into_string().unwrap_or_default())),
        Err(e) => Err((0, e.to_string())),
    }
}

fn client(shared: &Shared, interval: Duration, phase: Duration, deadline: Instant) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let url = format!("{}/v1/token", shared.issuer);
    let mut next = Instant::now() + phase;
    while next < deadline {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > Duration::from_secs(1) {
            // Far behind (the machine stalled): skip ahead rather than burst.
            next = now;
        }
        next += interval;
        let Some(key) = shared.pick() else {
            continue;
        };
        let t0 = Instant::now();
        let res = exchange(&agent, &url, &key.key);
        let latency = t0.elapsed();
        {
            let mut w = shared.window();
            w.requests += 1;
            w.latencies_us
                .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        }
        let token = match res {
            Ok(token) => token,
            Err((401, _)) if shared.is_revoked(&key.id) => {
                shared.window().expected_401 += 1;
                continue;
            }
            Err((code, body)) => {
                shared.error(
                    ErrorKind::Token,
                    &format!("key {}: status {code}: {body}", key.id),
                );
                continue;
            }
        };
        shared.window().issued += 1;
        match shared.verifier.verify(&token) {
            Ok(v) if v.claims().sub.as_str() == key.id => {
                shared.window().kids.insert(v.kid().as_str().to_owned());
                if let Ok(mut r) = shared.recent.lock() {
                    r.insert(key.id.clone(), token);
                }
            }
            Ok(v) => shared.error(
                ErrorKind::Verify,
                &format!(
                    "token of key {} has sub {}",
                    key.id,
                    v.claims().sub.as_str()
                ),
            ),
            // Minted while its key was being revoked: refusing it is right.
            Err(VerifyError::Revoked(_)) if shared.is_revoked(&key.id) => {}
            Err(e) => shared.error(
                ErrorKind::Verify,
                &format!("fresh token of key {}: {} ({e})", key.id, e.code()),
            ),
        }
    }
}

/// Polls the verifier until it refuses `token` as revoked (at most 5 s after `since`).
fn wait_refused(verifier: &Verifier, token: &str, since: Instant) -> Option<Instant> {
    while since.elapsed() < Duration::from_secs(5) {
        if let Err(VerifyError::Revoked(_)) = verifier.verify(token) {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

/// Checks a revocation against the bar, measured from the CLI returning (as
/// `scripts/bench-propagation` does); the time from the CLI starting, an upper bound that includes
/// its own start-up, is recorded too.
fn record_revocation(
    shared: &Shared,
    what: &str,
    cli: (Instant, Instant),
    refused: Option<Instant>,
) {
    let (started, returned) = cli;
    match refused {
        Some(at) => {
            let d = at.saturating_duration_since(returned);
            shared
                .window()
                .revocations
                .push((d, at.saturating_duration_since(started)));
            if d > PROPAGATION_BAR {
                shared.error(
                    ErrorKind::Late,
                    &format!("{what}: the verifier refused it {d:?} after the CLI returned"),
                );
            }
        }
        None => shared.error(
            ErrorKind::Late,
            &format!("{what}: the verifier still accepts it 5 s after the CLI returned"),
        ),
    }
}

/// Revokes the `jti` of a recent valid token.
fn revoke_jti(shared: &Shared) {
    let victim = {
        let Ok(mut recent) = shared.recent.lock() else {
            return;
        };
        let id = recent
            .keys()
            .find(|id| !shared.is_revoked(id))
            .cloned()
            .unwrap_or_default();
        recent.remove(&id)
    };
    let Some(token) = victim else {
        shared.error(ErrorKind::Token, "no recent token to revoke");
        return;
    };
    let jti = match shared.verifier.verify(&token) {
        Ok(v) => v.claims().jti.as_str().to_owned(),
        Err(e) => {
            shared.error(
                ErrorKind::Verify,
                &format!("recent token refused before revocation: {e}"),
            );
            return;
        }
    };
    let started = Instant::now();
    if let Err(e) = shared.cli(&["revoke", "token", &jti]) {
        shared.error(ErrorKind::Cli, &e);
        return;
    }
    let since = Instant::now();
    let refused = wait_refused(&shared.verifier, &token, since);
    record_revocation(shared, &format!("jti {jti}"), (started, since), refused);
}

/// Revokes the oldest key in the pool and replaces it: `keys revoke` + `keys create`, or in one
/// step with `keys rotate --revoke-old`.
fn revoke_key(shared: &Shared, rotate: bool) {
    let Some(victim) = shared.pool.read().ok().and_then(|p| p.first().cloned()) else {
        return;
    };
    if !rotate {
        match shared.create_key() {
            Ok(k) => {
                if let Ok(mut p) = shared.pool.write() {
                    p.push(k);
                }
            }
            Err(e) => {
                shared.error(ErrorKind::Cli, &e);
                return;
            }
        }
    }
    // From here on a 401 for the victim, or a refused token of it, is expected.
    if let Ok(mut r) = shared.revoked_keys.write() {
        r.insert(victim.id.clone());
    }
    if let Ok(mut p) = shared.pool.write() {
        p.retain(|k| k.id != victim.id);
    }
    let token = shared
        .recent
        .lock()
        .ok()
        .and_then(|mut r| r.remove(&victim.id));
    let started = Instant::now();
    let result = if rotate {
        shared
            .cli(&["keys", "rotate", &victim.id, "--revoke-old", "--json"])
            .and_then(|out| parse_key(&out))
            .map(|successor| {
                if let Ok(mut p) = shared.pool.write() {
                    p.push(successor);
                }
            })
    } else {
        shared.cli(&["keys", "revoke", &victim.id]).map(drop)
    };
    if let Err(e) = result {
        shared.error(ErrorKind::Cli, &e);
        return;
    }
    let since = Instant::now();
    let what = format!(
        "key {} ({})",
        victim.id,
        if rotate {
            "rotate --revoke-old"
        } else {
            "revoke"
        }
    );
    match &token {
        Some(t) => record_revocation(
            shared,
            &what,
            (started, since),
            wait_refused(&shared.verifier, t, since),
        ),
        None => shared.error(
            ErrorKind::Token,
            &format!("{what}: no token of it to check"),
        ),
    }
    // The issuer must refuse the key within the bar; anything it still mints must not verify.
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let url = format!("{}/v1/token", shared.issuer);
    let mut minted = Vec::new();
    loop {
        match exchange(&agent, &url, &victim.key) {
            Err((401, _)) => {
                shared.window().expected_401 += 1;
                break;
            }
            Ok(t) => minted.push(t),
            Err((code, body)) => {
                shared.error(
                    ErrorKind::Token,
                    &format!("{what}: probe answered {code}: {body}"),
                );
                break;
            }
        }
        if since.elapsed() > PROPAGATION_BAR {
            shared.error(
                ErrorKind::Late,
                &format!("{what}: the issuer still mints tokens for it after {PROPAGATION_BAR:?}"),
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for t in minted {
        match shared.verifier.verify(&t) {
            Err(VerifyError::Revoked(RevocationTarget::Key(_))) => {}
            other => shared.error(
                ErrorKind::Verify,
                &format!("{what}: a token it minted late verified as {other:?}"),
            ),
        }
    }
}

/// A kB figure from `/proc/PID/status`: `VmRSS`, `RssAnon`, ...
fn status_kb(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((sorted_us.len() as f64) * p).ceil() as usize;
    let i = rank.saturating_sub(1).min(sorted_us.len() - 1);
    sorted_us.get(i).copied().unwrap_or(0) as f64 / 1000.0
}

#[derive(Debug, Default)]
struct Totals {
    requests: u64,
    issued: u64,
    expected_401: u64,
    token_errors: u64,
    verify_errors: u64,
    late: u64,
    cli_errors: u64,
    revocations: Vec<(Duration, Duration)>,
    kids: HashSet<String>,
}

fn sample(shared: &Shared, start: Instant, windows: u64, issuer_pid: &str) -> (Vec<Row>, Totals) {
    let mut rows = Vec::new();
    let mut totals = Totals::default();
    eprintln!("{HEADER}");
    for k in 1..=windows {
        let at = start + WINDOW * u32::try_from(k).unwrap_or(u32::MAX);
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        let mut w = std::mem::take(&mut *shared.window());
        w.latencies_us.sort_unstable();
        let row = Row {
            t: k * WINDOW.as_secs(),
            requests: w.requests,
            p50_ms: percentile_ms(&w.latencies_us, 0.50),
            p99_ms: percentile_ms(&w.latencies_us, 0.99),
            max_ms: percentile_ms(&w.latencies_us, 1.0),
            expected_401: w.expected_401,
            errors: w.errors(),
            revocations: w.revocations.len(),
            revocation_max_ms: w
                .revocations
                .iter()
                .map(|r| r.0)
                .max()
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            kids: w.kids.len(),
            issuer_rss_kb: status_kb(issuer_pid, "VmRSS"),
            issuer_anon_kb: status_kb(issuer_pid, "RssAnon"),
            own_rss_kb: status_kb("self", "VmRSS"),
        };
        eprintln!("{}", format_row(&row));
        totals.requests += w.requests;
        totals.issued += w.issued;
        totals.expected_401 += w.expected_401;
        totals.token_errors += w.token_errors;
        totals.verify_errors += w.verify_errors;
        totals.late += w.late;
        totals.cli_errors += w.cli_errors;
        totals.revocations.extend(w.revocations.iter().copied());
        totals.kids.extend(w.kids.drain());
        if row.issuer_rss_kb == 0 {
            eprintln!("ERROR: the issuer process is gone");
            totals.token_errors += 1;
        }
        rows.push(row);
    }
    (rows, totals)
}

fn format_row(r: &Row) -> String {
    format!(
        "{:>5} {:>8} {:>7.2} {:>7.2} {:>7.2} {:>5} {:>6} {:>5} {:>10.0} {:>4} {:>9.1} {:>11.1} {:>11.1}",
        r.t,
        r.requests,
        r.p50_ms,
        r.p99_ms,
        r.max_ms,
        r.expected_401,
        r.errors,
        r.revocations,
        r.revocation_max_ms,
        r.kids,
        r.issuer_rss_kb as f64 / 1024.0,
        r.issuer_anon_kb as f64 / 1024.0,
        r.own_rss_kb as f64 / 1024.0
    )
}

fn run() -> Result<bool, Box<dyn Error>> {
    let issuer = arg("--issuer")
        .ok_or("--issuer URL")?
        .trim_end_matches('/')
        .to_owned();
    let bin = arg("--keymint").ok_or("--keymint BIN")?;
    let data_dir = arg("--data-dir").ok_or("--data-dir DIR")?;
    let issuer_pid = arg("--issuer-pid").ok_or("--issuer-pid PID")?;
    let duration = parse_duration(&arg("--duration").unwrap_or_else(|| "10m".into()))?;
    let rate: u32 = arg("--rate").map_or(Ok(300), |s| s.parse())?;
    let clients: u32 = arg("--clients").map_or(Ok(8), |s| s.parse())?;
    let nkeys: usize = arg("--keys").map_or(Ok(4), |s| s.parse())?;
    if duration < Duration::from_secs(20) || duration > Duration::from_secs(4 * 3600) {
        return Err("--duration must be between 20s and 4h".into());
    }
    if !issuer.starts_with("http://127.0.0.1:") {
        return Err("loopback only: --issuer http://127.0.0.1:PORT".into());
    }
    if rate == 0 || clients == 0 || nkeys == 0 {
        return Err("--rate, --clients and --keys must be positive".into());
    }

    let (verifier, live) =
        Verifier::builder(Issuer::new(issuer.as_str())?, Audience::new(AUDIENCE)?)
            .build_live(LiveConfig::discover(&issuer)?)?;
    if !live.wait_ready(Duration::from_secs(10)) {
        return Err("the verifier's live sources are not ready after 10 s".into());
    }
    let shared = Arc::new(Shared {
        issuer,
        bin,
        data_dir,
        verifier,
        pool: RwLock::new(Vec::new()),
        revoked_keys: RwLock::new(HashSet::new()),
        recent: Mutex::new(HashMap::new()),
        window: Mutex::new(Window::default()),
        picks: AtomicU64::new(0),
        errors_shown: AtomicU64::new(0),
    });
    for _ in 0..nkeys {
        let k = shared.create_key()?;
        shared.pool.write().map_err(|_| "poisoned")?.push(k);
    }
    // Let the running server see the new keys before the load starts.
    std::thread::sleep(Duration::from_millis(500));

    let windows = duration.as_secs().div_ceil(WINDOW.as_secs());
    let duration = WINDOW * u32::try_from(windows)?;
    eprintln!(
        "soak: {}s, {clients} clients at {rate} req/s in total, {nkeys} keys; a revocation every {}s, a signing-key rotation every {}s",
        duration.as_secs(),
        REVOKE_EVERY.as_secs(),
        ROTATE_EVERY.as_secs()
    );
    let start = Instant::now();
    let deadline = start + duration;
    let interval = Duration::from_secs_f64(f64::from(clients) / f64::from(rate));
    let mut threads = Vec::new();
    for c in 0..clients {
        let shared = Arc::clone(&shared);
        let phase = interval * c / clients;
        threads.push(std::thread::spawn(move || {
            client(&shared, interval, phase, deadline);
        }));
    }
    let sampler = {
        let shared = Arc::clone(&shared);
        let pid = issuer_pid.clone();
        std::thread::spawn(move || sample(&shared, start, windows, &pid))
    };

    // The controller: revocations every 10 s, signing-key rotations every 60 s (the first one
    // early enough that a short run sees it take over), each moved by a random 0-1 s so that they
    // do not stay in phase with the issuer's 200 ms change-feed poll or the verifier's polls.
    let rng = ring::rand::SystemRandom::new();
    let jitter = || {
        ring::rand::generate::<[u8; 2]>(&rng)
            .map(|b| Duration::from_millis(u64::from(u16::from_le_bytes(b.expose())) % 1000))
            .unwrap_or_default()
    };
    let (revoke_base, rotate_base) = (
        start + Duration::from_secs(5),
        start + (duration / 4).min(Duration::from_secs(30)),
    );
    let mut next_revoke = revoke_base + jitter();
    let mut next_rotate = rotate_base + jitter();
    let (mut revocation_no, mut rotation_no, mut rotations) = (0u32, 0u32, Vec::new());
    let stop_at = deadline - Duration::from_secs(3);
    loop {
        let next = next_revoke.min(next_rotate);
        if next >= stop_at {
            break;
        }
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        if Instant::now() >= next_rotate {
            rotation_no += 1;
            next_rotate = rotate_base + ROTATE_EVERY * rotation_no + jitter();
            let alg = if rotation_no % 2 == 1 {
                "ES256"
            } else {
                "EdDSA"
            };
            match shared.cli(&["signing-keys", "rotate", "--alg", alg, "--json"]) {
                Ok(out) => {
                    let kid = serde_json::from_str::<serde_json::Value>(&out)
                        .ok()
                        .and_then(|v| v.get("kid")?.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    eprintln!(
                        "  t={}s signing-keys rotate --alg {alg}: {kid} published as next",
                        start.elapsed().as_secs()
                    );
                    rotations.push((kid, start.elapsed()));
                }
                Err(e) => shared.error(ErrorKind::Cli, &e),
            }
        }
        if Instant::now() >= next_revoke {
            next_revoke = revoke_base + REVOKE_EVERY * (revocation_no + 1) + jitter();
            match revocation_no % 3 {
                0 => revoke_jti(&shared),
                1 => revoke_key(&shared, false),
                _ => revoke_key(&shared, true),
            }
            revocation_no += 1;
        }
    }
    for t in threads {
        let _ = t.join();
    }
    let (rows, totals) = sampler.join().map_err(|_| "the sampler panicked")?;
    let stats = live.stats();

    // The report.
    println!("{HEADER}");
    for r in &rows {
        println!("{}", format_row(r));
    }
    // First minute = the warm-up; compare it with the last minute (half the run each when shorter).
    let span = (duration / 2).min(Duration::from_secs(60)).as_secs();
    let total_s = duration.as_secs();
    let first: Vec<&Row> = rows.iter().filter(|r| r.t <= span).collect();
    let last: Vec<&Row> = rows.iter().filter(|r| r.t > total_s - span).collect();
    let max_of = |rs: &[&Row], f: fn(&Row) -> u64| rs.iter().map(|r| f(r)).max().unwrap_or(0);
    let mb = |kb: u64| kb as f64 / 1024.0;
    let ratio = |a: u64, b: u64| {
        if a == 0 {
            f64::INFINITY
        } else {
            b as f64 / a as f64
        }
    };
    let (iss_first, iss_last) = (
        max_of(&first, |r| r.issuer_rss_kb),
        max_of(&last, |r| r.issuer_rss_kb),
    );
    let (own_first, own_last) = (
        max_of(&first, |r| r.own_rss_kb),
        max_of(&last, |r| r.own_rss_kb),
    );
    let p99_first = rows.first().map_or(0.0, |r| r.p99_ms);
    let p99_last = rows.last().map_or(0.0, |r| r.p99_ms);
    let p99_max = rows.iter().map(|r| r.p99_ms).fold(0.0, f64::max);
    let p99_median = {
        let mut v: Vec<f64> = rows.iter().map(|r| r.p99_ms).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let sorted_us = |f: fn(&(Duration, Duration)) -> Duration| {
        let mut us: Vec<u64> = totals
            .revocations
            .iter()
            .map(|r| u64::try_from(f(r).as_micros()).unwrap_or(u64::MAX))
            .collect();
        us.sort_unstable();
        us
    };
    let (from_return, from_start) = (sorted_us(|r| r.0), sorted_us(|r| r.1));
    let activated = rotations
        .iter()
        .filter(|(kid, _)| totals.kids.contains(kid))
        .count();
    let errors = totals.token_errors + totals.verify_errors + totals.late + totals.cli_errors;
    println!();
    println!(
        "duration {}s; {clients} clients at {rate} req/s; requests {} (issued and verified {}, expected 401s of revoked keys {})",
        total_s, totals.requests, totals.issued, totals.expected_401
    );
    println!(
        "revocations checked {}: verifier refusal after the CLI returned p50 {:.0} ms, max {:.0} ms (bar {} ms); after it started p50 {:.0} ms, max {:.0} ms",
        from_return.len(),
        percentile_ms(&from_return, 0.5),
        percentile_ms(&from_return, 1.0),
        PROPAGATION_BAR.as_millis(),
        percentile_ms(&from_start, 0.5),
        percentile_ms(&from_start, 1.0)
    );
    println!(
        "signing-key rotations {} ({} seen signing tokens); distinct signing kids seen {}",
        rotations.len(),
        activated,
        totals.kids.len()
    );
    println!(
        "verifier live sources: {} key-set fetches ({} on unknown kid), {} lists installed, {} refused, {} push events",
        stats.jwks_fetches,
        stats.jwks_kid_refetches,
        stats.lists_installed,
        stats.lists_refused,
        stats.events
    );
    println!(
        "issuer RSS: first minute {:.1} MB, last minute {:.1} MB, ratio {:.2} (anonymous: {:.1} MB, {:.1} MB)",
        mb(iss_first),
        mb(iss_last),
        ratio(iss_first, iss_last),
        mb(max_of(&first, |r| r.issuer_anon_kb)),
        mb(max_of(&last, |r| r.issuer_anon_kb))
    );
    println!(
        "verifier process RSS: first minute {:.1} MB, last minute {:.1} MB, ratio {:.2}",
        mb(own_first),
        mb(own_last),
        ratio(own_first, own_last)
    );
    println!(
        "issuance p99: first window {p99_first:.2} ms, last window {p99_last:.2} ms, median window {p99_median:.2} ms, worst window {p99_max:.2} ms"
    );
    println!(
        "errors {errors} (token {}, verify {}, late revocations {}, cli {})",
        totals.token_errors, totals.verify_errors, totals.late, totals.cli_errors
    );
    let mut ok = true;
    let mut check = |pass: bool, what: String| {
        println!("{} {what}", if pass { "ok  " } else { "FAIL" });
        ok &= pass;
    };
    check(errors == 0, format!("errors == 0 ({errors})"));
    if duration >= MIN_FOR_MEMORY {
        check(
            ratio(iss_first, iss_last) <= RSS_GROWTH_LIMIT,
            format!("issuer RSS last minute <= {RSS_GROWTH_LIMIT} x first minute"),
        );
        check(
            ratio(own_first, own_last) <= RSS_GROWTH_LIMIT,
            format!("verifier process RSS last minute <= {RSS_GROWTH_LIMIT} x first minute"),
        );
    } else {
        println!(
            "n/a  memory: runs shorter than {} s are all warm-up (the verified-token cache is still filling)",
            MIN_FOR_MEMORY.as_secs()
        );
    }
    Ok(ok)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::from(2)
        }
    }
}
