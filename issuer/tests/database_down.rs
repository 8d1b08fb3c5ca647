//! The real Postgres server stopped under a running issuer and started again: `/readyz` turns
//! 503 and recovers, requests that need the database get 503 with `Retry-After` (keys already in
//! memory too, once the change feed has gone unread past the propagation bound), admin commands
//! fail with their "unavailable" exit code, and everything works again once it is back.
//!
//! The only test in this binary: it stops the shared test cluster (`KEYMINT_TEST_PG_CTL`), and
//! cargo runs test binaries one at a time, so no other test is using it meanwhile.
#![allow(clippy::disallowed_methods)]
// tests read the clock: they are the edge

// Test code: a failed step should stop the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use support::*;

const AUD: &str = "https://api.example";

fn pg_ctl(action: &str) {
    let ctl = std::env::var("KEYMINT_TEST_PG_CTL")
        .expect("KEYMINT_TEST_PG_CTL is not set: run the suite with scripts/test");
    let status = std::process::Command::new(ctl)
        .arg(action)
        .status()
        .unwrap();
    assert!(status.success(), "pg ctl {action} failed");
}

/// Restarts the cluster even when the test fails half-way, so later tests find it up.
struct Restart;
impl Drop for Restart {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = std::process::Command::new(
                std::env::var("KEYMINT_TEST_PG_CTL").unwrap_or_default(),
            )
            .arg("start")
            .status();
        }
    }
}

/// Waits until `path` answers `want`.
fn wait_for_status(s: &Server, path: &str, want: u16, what: &str, within: Duration) {
    wait_until(what, within, || {
        (reply(s.get(path).call()).status == want).then_some(())
    });
}

#[test]
fn readyz_follows_the_database_and_requests_recover_when_it_returns() {
    let env = pg_env(&fresh_pg_database());
    let s = Server::start_with_env(temp_dir("pg-down"), &[], &env);
    let (_, warm) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let (cold_id, cold) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    assert_eq!(token_request(&s, &warm, None).status, 200);
    assert_eq!(reply(s.get("/readyz").call()).status, 200);

    let _restart = Restart;
    pg_ctl("stop");
    wait_for_status(
        &s,
        "/readyz",
        503,
        "/readyz to turn 503 while the database is down",
        Duration::from_secs(10),
    );
    // A key the server has never loaded cannot be checked: 503 with Retry-After, not 401.
    let r = token_request(&s, &cold, None);
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.header("retry-after").is_some());
    assert!(
        !r.text.contains("postgres"),
        "5xx bodies are generic: {}",
        r.text
    );
    // A key loaded before the outage is served from memory only while the server can still learn
    // of its revocation in time: once the change feed has gone unread for longer than the
    // propagation bound (5 s), 503 with Retry-After too.
    let refused = wait_until(
        "a cached key to be refused 503 in the outage (15 s)",
        Duration::from_secs(15),
        || {
            let r = token_request(&s, &warm, None);
            if r.status == 503 {
                return Some(r);
            }
            assert_eq!(r.status, 200, "{}", r.text);
            None
        },
    );
    assert!(refused.header("retry-after").is_some());
    // Verification material keeps being served from memory.
    assert_eq!(reply(s.get("/.well-known/jwks.json").call()).status, 200);
    // An admin command fails with the "unavailable" exit code and changes nothing.
    let out = s.cli(&["keys", "revoke", &cold_id]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    pg_ctl("start");
    wait_for_status(
        &s,
        "/readyz",
        200,
        "/readyz to recover when the database returns",
        Duration::from_secs(15),
    );
    // Issuance resumes with the watcher's next read of the feed (every 200 ms).
    let r = wait_until(
        "issuance to resume after the outage (2 s)",
        Duration::from_secs(2),
        || {
            let r = token_request(&s, &cold, None);
            (r.status != 503).then_some(r)
        },
    );
    assert_eq!(
        r.status, 200,
        "the key was not revoked while the database was down: {}",
        r.text
    );
    let out = s.cli(&["keys", "revoke", &cold_id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(
        "after recovery a revocation to take effect again",
        Duration::from_secs(3),
        || (token_request(&s, &cold, None).status == 401).then_some(()),
    );
}
