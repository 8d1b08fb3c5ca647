//! The CLI acting on a running issuer through its admin API (`--issuer-url` + KEYMINT_ADMIN_KEY),
//! over loopback: admin keys are made only locally, admin:read cannot write, and what a remote
//! admin does takes effect like a local command.

// Test code: a failed step should stop the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::process::{Command, Output};
use std::time::Duration;

use support::*;

const AUD: &str = "https://api.example";

fn admin_key(s: &Server, scope: &str) -> String {
    let out = s.cli(&["admin-keys", "create", "--scope", scope, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["key"].as_str().unwrap().to_owned()
}

/// Runs the CLI against the server's URL with `admin_key`, from an empty directory (no local
/// database involved).
fn remote(s: &Server, admin_key: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .args(["--issuer-url", &s.url])
        .env_remove("KEYMINT_ADMIN_KEY")
        .env("KEYMINT_DATA_DIR", s.dir.join("not-used"));
    if let Some(k) = admin_key {
        c.env("KEYMINT_ADMIN_KEY", k);
    }
    c.output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_remote_admin_manages_keys_scopes_revocations_and_reads_the_audit_log() {
    let s = Server::start("admin-remote", &[]);
    let write = admin_key(&s, "admin:write");

    let created = json(&remote(
        &s,
        Some(&write),
        &[
            "keys",
            "create",
            "--tenant",
            "acme",
            "--scope",
            "orders:read",
            "--audience",
            AUD,
        ],
    ));
    let (id, key) = (
        created["key_id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    );
    assert_eq!(token_request(&s, &key, None).status, 200);
    let listed = json(&remote(
        &s,
        Some(&write),
        &["keys", "list", "--tenant", "acme"],
    ));
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["key_id"] == id.as_str())
    );
    let shown = json(&remote(&s, Some(&write), &["keys", "show", &id]));
    assert_eq!(shown["scopes"][0], "orders:read");

    let scope = json(&remote(
        &s,
        Some(&write),
        &["scopes", "add", "widgets:read", "--public"],
    ));
    assert_eq!(scope["public"], true);
    let signing = json(&remote(&s, Some(&write), &["signing-keys", "list"]));
    // The active key and the standby next key (created in the same second: either order).
    assert!(
        signing
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["state"] == "active"),
        "{signing}"
    );
    json(&remote(
        &s,
        Some(&write),
        &["revoke", "token", "some-jti-1234"],
    ));

    json(&remote(&s, Some(&write), &["keys", "revoke", &id]));
    wait_until(
        "a key revoked through the admin API to be refused (2 s)",
        Duration::from_secs(2),
        || (token_request(&s, &key, None).status == 401).then_some(()),
    );
    let again = remote(&s, Some(&write), &["keys", "revoke", &id]);
    assert_eq!(
        again.status.code(),
        Some(4),
        "already revoked is a conflict"
    );

    let audit = json(&remote(
        &s,
        Some(&write),
        &["audit", "--action", "key.revoke"],
    ));
    let entry = &audit.as_array().unwrap()[0];
    assert_eq!(entry["key_id"], id.as_str());
    assert!(entry["actor"].as_str().unwrap().starts_with("admin-key:"));
    // The local reading of the same log agrees.
    let local = s.cli(&["audit", "--action", "key.revoke", "--limit", "1"]);
    assert_eq!(json(&local)[0]["key_id"], id.as_str());
}

#[test]
fn admin_read_cannot_write_and_admin_keys_are_made_only_locally() {
    let s = Server::start("admin-remote-read", &[]);
    let read = admin_key(&s, "admin:read");
    json(&remote(&s, Some(&read), &["keys", "list"]));
    let denied = remote(
        &s,
        Some(&read),
        &[
            "keys",
            "create",
            "--tenant",
            "acme",
            "--scope",
            "a",
            "--audience",
            AUD,
        ],
    );
    assert_eq!(denied.status.code(), Some(77));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("admin:write"));

    let no_key = remote(&s, None, &["keys", "list"]);
    assert_eq!(no_key.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("KEYMINT_ADMIN_KEY"));

    // A customer key is not an admin key.
    let (_, customer) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let refused = remote(&s, Some(&customer), &["keys", "list"]);
    assert_eq!(
        refused.status.code(),
        Some(77),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let remote_admin = remote(
        &s,
        Some(&read),
        &["admin-keys", "create", "--scope", "admin:write"],
    );
    assert_eq!(remote_admin.status.code(), Some(2));
    let bad_scope = s.cli(&["admin-keys", "create", "--scope", "orders:read"]);
    assert_eq!(bad_scope.status.code(), Some(2));
    let reserved = s.cli(&[
        "keys",
        "create",
        "--tenant",
        "acme",
        "--scope",
        "admin:read",
        "--audience",
        AUD,
    ]);
    assert_eq!(
        reserved.status.code(),
        Some(2),
        "customer keys never carry admin:* scopes"
    );
}

/// Issue #15: "where was this key used from, how often, and what was refused" is one call, on
/// the data dir and over the admin API, from the usage rollups (no audit row per token).
#[test]
fn where_a_key_was_used_from_is_one_call_locally_and_over_the_admin_api() {
    // Written every second rather than every 30 s, so the test waits for the counts briefly.
    let s = Server::start("usage", &["--usage-flush-interval", "1s"]);
    let (id, key) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    for _ in 0..3 {
        assert_eq!(token_request(&s, &key, None).status, 200);
    }
    assert_eq!(
        token_request(&s, &key, Some(r#"{"scope":"zzz"}"#)).status,
        400
    );
    let local = |args: &[&str]| s.cli(args);
    let report = wait_until(
        "the usage counts to reach the database",
        Duration::from_secs(20),
        || {
            let out = local(&["keys", "usage", &id, "--json"]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            (v["granted"] == 3 && v["refused"] == 1).then_some(v)
        },
    );
    let lines = report["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{report}");
    assert_eq!(lines[0]["client"], "127.0.0.1");
    assert_eq!(
        (&lines[0]["outcome"], &lines[0]["count"]),
        (&serde_json::json!("granted"), &serde_json::json!(3))
    );
    assert_eq!(lines[1]["reason"], "invalid_scope");
    assert!(lines[0]["first_seen"].as_i64() <= lines[0]["last_seen"].as_i64());

    // The same answer over the admin API, for a read-only admin key.
    let admin = admin_key(&s, "admin:read");
    let remote_report = json(&remote(&s, Some(&admin), &["keys", "usage", &id]));
    assert_eq!(remote_report["lines"], report["lines"]);
    assert_eq!(remote_report["key_id"], id.as_str());

    // Text for a person; a key that does not exist is a clear error, not an empty report.
    let text = local(&["keys", "usage", &id]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("3 granted, 1 refused"), "{text}");
    let missing = local(&["keys", "usage", "AAAAAAAAAAAAAAAA"]);
    assert!(!missing.status.success());
    let missing = remote(&s, Some(&admin), &["keys", "usage", "AAAAAAAAAAAAAAAA"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("404")
            || String::from_utf8_lossy(&missing.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

/// `keys list` pages through the key table (locally, and over the admin API following its
/// `Link: rel="next"`), so more keys than one page holds (1000) are all listed, each once, in the
/// same order both ways.
#[test]
fn keys_list_lists_more_keys_than_a_page_holds_locally_and_remotely() {
    let s = Server::start("admin-remote-pages", &[]);
    let read = admin_key(&s, "admin:read");
    let keys_out = s.dir.join("seeded.keys");
    let out = s.cli(&[
        "keys",
        "seed",
        "--count",
        "1500",
        "--keep",
        "0",
        "--keys-out",
        keys_out.to_str().unwrap(),
        "--tenant",
        "bulk",
        "--scope",
        "a",
        "--audience",
        AUD,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|k| k["key_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let local = ids(&json(&s.cli(&["keys", "list", "--json"])));
    let remote = ids(&json(&remote(&s, Some(&read), &["keys", "list"])));
    // The 1500 seeded keys and the admin key.
    assert_eq!(local.len(), 1501);
    assert_eq!(
        local
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        1501
    );
    assert_eq!(remote, local);
    let bulk = ids(&json(
        &s.cli(&["keys", "list", "--json", "--tenant", "bulk"]),
    ));
    assert_eq!(bulk.len(), 1500);
}
