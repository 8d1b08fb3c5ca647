//! A real `keymint serve` on a loopback port with its own data dir, and the CLI against it.
#![allow(clippy::disallowed_methods)]
// tests read the clock: they are the edge
// Test harness code: a failed setup should stop the test loudly.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_keymint");

pub(crate) struct Server {
    pub(crate) url: String,
    pub(crate) dir: PathBuf,
    child: Child,
    /// Environment given to the server and to every CLI call made through it.
    pub(crate) env: Vec<(String, String)>,
    /// Everything the server wrote to stdout and stderr.
    pub(crate) output: Arc<Mutex<Vec<String>>>,
    /// The threads copying stdout and stderr into `output`: done once the server has exited and
    /// its last line is in.
    readers: Vec<std::thread::JoinHandle<()>>,
}

pub(crate) use keymint_testkit::{try_wait_until, wait_until};

/// Runs `serve` as `command` sets it up, expecting it to refuse: its exit code and stderr. A start
/// that is not refused would serve forever, so this waits for the exit (20 s at most), not for the
/// output, and fails the test if the server is still running then.
pub(crate) fn refused_serve(mut command: Command) -> (Option<i32>, String) {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = try_wait_until(Duration::from_secs(20), || child.try_wait().unwrap());
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("serve started instead of refusing: {command:?}");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr)
}

pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "keymint-e2e-{name}-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() ^ rand_suffix()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

impl Server {
    pub(crate) fn start(name: &str, extra: &[&str]) -> Self {
        Self::start_in(temp_dir(name), extra)
    }

    pub(crate) fn start_in(dir: PathBuf, extra: &[&str]) -> Self {
        Self::start_with_env(dir, extra, &[])
    }

    /// Starts a server with extra environment (a database URL, the secrets), which its CLI calls
    /// get too.
    pub(crate) fn start_with_env(dir: PathBuf, extra: &[&str], env: &[(String, String)]) -> Self {
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--data-dir")
            .arg(&dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("KEYMINT_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let out = Arc::clone(&output);
        let err_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("keymint is listening on ") {
                    let url = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send(url);
                }
                out.lock().unwrap().push(line);
            }
        });
        let stdout = child.stdout.take().unwrap();
        let out = Arc::clone(&output);
        let out_reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                out.lock().unwrap().push(line);
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("server did not start");
        // The banner comes once the socket is bound, before the server has stored its settings,
        // signing keys and first revocation list: a test that reads the database at once could
        // see a replica's start-up writes land later (seen in CI). A request is answered only
        // once all that is done, so wait for one (over plain HTTP; the HTTPS test's own first
        // request waits the same way, with its certificate).
        if url.starts_with("http://") {
            wait_until("the server's first answer", Duration::from_secs(20), || {
                ureq::get(&format!("{url}/healthz")).call().ok().map(|_| ())
            });
        }
        Self {
            url,
            dir,
            child,
            env: env.to_vec(),
            output,
            readers: vec![err_reader, out_reader],
        }
    }

    pub(crate) fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(&self.dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap()
    }

    /// Creates a key with `keys create ... --json` and returns (key_id, key).
    pub(crate) fn create_key(&self, args: &[&str]) -> (String, String) {
        let mut all = vec!["keys", "create", "--json"];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "keys create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            v["key_id"].as_str().unwrap().to_owned(),
            v["key"].as_str().unwrap().to_owned(),
        )
    }

    pub(crate) fn post(&self, path: &str) -> ureq::Request {
        ureq::post(&format!("{}{path}", self.url))
    }

    pub(crate) fn get(&self, path: &str) -> ureq::Request {
        ureq::get(&format!("{}{path}", self.url))
    }

    pub(crate) fn all_output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to the server process.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Sends SIGTERM and waits up to `limit`; the exit code if it exited.
    pub(crate) fn terminate_and_wait(&mut self, limit: Duration) -> Option<i32> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let code = try_wait_until(limit, || self.child.try_wait().ok().flatten())
            .map(|status| status.code());
        if code.is_some() {
            self.join_readers();
        }
        code.flatten()
    }

    /// Stops the server gracefully (SIGINT: it flushes its audit batches), killing it if it is
    /// not gone within 10 s; afterwards [`Self::all_output`] holds everything it wrote.
    pub(crate) fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .status();
        if try_wait_until(Duration::from_secs(10), || {
            self.child.try_wait().ok().flatten()
        })
        .is_none()
        {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.join_readers();
    }

    /// Waits for the output readers, which end at the exited server's end of file.
    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    /// Trades `key` for a token and waits until the server's log line for that issuance has been
    /// read: everything the server logged for requests answered before this call is then in
    /// [`Self::all_output`]. The positive marker before a check that something was *not* logged.
    /// Returns the marker token's `jti`.
    pub(crate) fn log_caught_up(&self, key: &str) -> String {
        let r = token_request(self, key, None);
        assert_eq!(r.status, 200, "the marker issuance failed: {}", r.text);
        let jti = jti_of(r.json()["access_token"].as_str().unwrap());
        wait_until(
            "the marker issuance in the log",
            Duration::from_secs(5),
            || {
                // `jti=<id>` in text, `"jti":"<id>"` in JSON: 22 random characters either way.
                self.all_output().contains(jti.as_str()).then_some(())
            },
        );
        jti
    }
}

/// Reads a token's `jti` without verifying it (the test minted it).
pub(crate) fn jti_of(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = keymint_jwks::jws::decode_segment(payload, "payload").unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["jti"].as_str().unwrap().to_owned()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap()
}

/// A response, whether 2xx or not.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) text: String,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text).unwrap_or(serde_json::Value::Null)
    }
}

pub(crate) fn reply(r: Result<ureq::Response, ureq::Error>) -> Reply {
    let res = match r {
        Ok(res) => res,
        Err(ureq::Error::Status(_, res)) => res,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = res.status();
    let headers = res
        .headers_names()
        .into_iter()
        .filter_map(|n| res.header(&n).map(|v| (n.clone(), v.to_owned())))
        .collect();
    let text = res.into_string().unwrap_or_default();
    Reply {
        status,
        headers,
        text,
    }
}

pub(crate) fn token_request(server: &Server, key: &str, body: Option<&str>) -> Reply {
    let req = server
        .post("/v1/token")
        .set("Authorization", &format!("Bearer {key}"));
    reply(match body {
        Some(b) => req.set("Content-Type", "application/json").send_string(b),
        None => req.call(),
    })
}

/// A fresh, empty database on the test Postgres server (`KEYMINT_TEST_DATABASE_URL`, set by
/// scripts/test); its URL. Fails loudly when there is no server.
pub(crate) fn fresh_pg_database() -> String {
    let base = std::env::var("KEYMINT_TEST_DATABASE_URL").expect(
        "KEYMINT_TEST_DATABASE_URL is not set: the Postgres tests need a server. \
         Run the suite with scripts/test, which starts a throwaway cluster.",
    );
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    let name = format!("km_e2e_{}", u64::from_le_bytes(b));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
    });
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{name}")
}

/// Runs one SQL statement on `database_url` (a test reaching under the server, as an operator
/// or a background task would).
pub(crate) fn pg_execute(database_url: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(database_url).await.unwrap();
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    });
}

/// The environment for a keymint process on a shared Postgres database: its URL and the two
/// operator-supplied secrets (fresh random ones, the same for every replica of one test).
pub(crate) fn pg_env(database_url: &str) -> Vec<(String, String)> {
    use base64::Engine as _;
    let secret = |seed: u8| {
        let mut b = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
        b[0] ^= seed;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    };
    vec![
        ("KEYMINT_DATABASE_URL".into(), database_url.into()),
        ("KEYMINT_ENCRYPTION_KEY".into(), secret(1)),
        ("KEYMINT_PEPPER".into(), secret(2)),
    ]
}
