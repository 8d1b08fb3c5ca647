//! Moving from SQLite to Postgres (issue #7): `keymint migrate --to` copies everything into an
//! empty Postgres database, and a server on it given the old data dir's secrets keeps every API
//! key, signing key, revocation and the list's serial; tokens minted before the move still
//! verify; a second migrate into the same database is refused.

// Test code: a failed step should stop the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::BTreeSet;
use std::process::Output;
use std::time::Duration;

use keymint::store::{AuditQuery, AuditRecord, PgStore, SqliteStore, Store};
use support::*;

const AUD: &str = "https://api.example";
const ISSUER: &str = "http://keymint.test";
const APP: &str = "https://app.example";

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn segment(token: &str, i: usize) -> serde_json::Value {
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&keymint_jwks::jws::decode_segment(part, "segment").unwrap()).unwrap()
}

fn token(s: &Server, key: &str) -> String {
    let r = token_request(s, key, None);
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["access_token"].as_str().unwrap().to_owned()
}

fn kid_of(token: &str) -> String {
    segment(token, 0)["kid"].as_str().unwrap().to_owned()
}

fn kids(s: &Server) -> BTreeSet<String> {
    let r = reply(s.get("/.well-known/jwks.json").call());
    assert_eq!(r.status, 200);
    r.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// The payload of the revocation list the server serves now.
fn list(s: &Server) -> serde_json::Value {
    let r = reply(s.get("/v1/revocations").call());
    assert_eq!(r.status, 200);
    segment(r.text.trim(), 1)
}

fn lists(payload: &serde_json::Value, kind: &str, id: &str) -> bool {
    payload["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == kind && e["id"] == id)
}

/// `keymint verify` against a server's published key set and list.
fn verify(s: &Server, token: &str) -> Output {
    std::process::Command::new(BIN)
        .env("KEYMINT_TOKEN", token)
        .args(["verify", "--jwks"])
        .arg(format!("{}/.well-known/jwks.json", s.url))
        .args(["--issuer", ISSUER, "--audience", AUD, "--revocations"])
        .arg(format!("{}/v1/revocations", s.url))
        .output()
        .unwrap()
}

async fn all_audit<S: Store>(s: &S) -> Vec<AuditRecord> {
    let mut all = s
        .audit(&AuditQuery {
            limit: 100_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    all.reverse();
    all.into_iter().map(|e| e.record).collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn sqlite_to_postgres_keeps_every_key_signing_key_revocation_and_the_list_serial() {
    let pg = fresh_pg_database();
    let args = ["--issuer-url", ISSUER, "--jwks-max-age", "1s"];

    // An issuer on SQLite with a secret key, a publishable key, a revoked key, one signing-key
    // rotation and a revoked token.
    let mut old = Server::start("migrate-sqlite", &args);
    let (_, secret) = old.create_key(&[
        "--tenant",
        "acme",
        "--scope",
        "orders:read",
        "--audience",
        AUD,
    ]);
    ok(&old.cli(&["scopes", "add", "catalog:read", "--public"]));
    let (_, publishable) = old.create_key(&[
        "--publishable",
        "--origin",
        APP,
        "--tenant",
        "acme",
        "--scope",
        "catalog:read",
        "--audience",
        AUD,
    ]);
    let (revoked_id, revoked) =
        old.create_key(&["--tenant", "globex", "--scope", "a", "--audience", AUD]);
    assert_eq!(token_request(&old, &revoked, None).status, 200);
    ok(&old.cli(&["keys", "revoke", &revoked_id]));

    let before_rotation = token(&old, &secret);
    ok(&old.cli(&["signing-keys", "rotate"]));
    let after_rotation = wait_until(
        "the new signing key to sign",
        Duration::from_secs(10),
        || {
            let t = token(&old, &secret);
            (kid_of(&t) != kid_of(&before_rotation)).then_some(t)
        },
    );
    let doomed = token(&old, &secret);
    let jti = segment(&doomed, 1)["jti"].as_str().unwrap().to_owned();
    ok(&old.cli(&["revoke", "token", &jti]));
    let old_list = wait_until(
        "the list to revoke the token",
        Duration::from_secs(5),
        || {
            let l = list(&old);
            lists(&l, "jti", &jti).then_some(l)
        },
    );
    let old_kids = kids(&old);
    assert_eq!(
        old_kids.len(),
        3,
        "the retired, the active and the standby next key"
    );
    old.stop();

    // The move.
    let out = cli(&old.dir, &["migrate", "--to", &pg]);
    let stdout = ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let pepper_file = old.dir.join("pepper.key");
    let encryption_file = old.dir.join("encryption.key");
    assert!(
        stdout.contains(&format!("KEYMINT_PEPPER_FILE={}", pepper_file.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "KEYMINT_ENCRYPTION_KEY_FILE={}",
            encryption_file.display()
        )),
        "{stdout}"
    );
    for secret_file in [&pepper_file, &encryption_file] {
        let value = std::fs::read_to_string(secret_file).unwrap();
        assert!(!stdout.contains(value.trim()) && !stderr.contains(value.trim()));
    }
    assert!(stdout.contains("3 API keys (1 revoked)"), "{stdout}");

    // Row for row: every key (hash, state, last use), signing key, scope, and the audit history in
    // its order, followed by the migration's own records; the same summary in both databases.
    // One runtime for the pools and every query on them: a sqlx pool's connections belong to the
    // runtime that opened them.
    let (old_audit, new_audit) = rt().block_on(async {
        let source = SqliteStore::open(&old.dir.join("keymint.db"))
            .await
            .unwrap();
        let target = PgStore::connect(&pg).await.unwrap();
        assert_eq!(
            target.keys(None).await.unwrap(),
            source.keys(None).await.unwrap()
        );
        assert_eq!(
            target.signing_keys().await.unwrap(),
            source.signing_keys().await.unwrap()
        );
        assert_eq!(
            target.scopes().await.unwrap(),
            source.scopes().await.unwrap()
        );
        assert_eq!(
            target.setting("issuer").await.unwrap().as_deref(),
            Some(ISSUER)
        );
        // The usage rollups, row for row (issuances are counted there, not audit rows).
        let usage = |rows: Vec<keymint::store::UsageEntry>| {
            let mut v: Vec<_> = rows.into_iter().map(|r| r.count).collect();
            v.sort_by(|a, b| {
                (&a.key_id, a.bucket, &a.client, &a.outcome, &a.reason)
                    .cmp(&(&b.key_id, b.bucket, &b.client, &b.outcome, &b.reason))
            });
            v
        };
        let source_usage = usage(source.usage_rows(0, 100_000).await.unwrap());
        assert!(
            source_usage
                .iter()
                .any(|u| u.action == "token.issue" && u.outcome == "granted"),
            "the issuances before the move were counted"
        );
        assert_eq!(
            usage(target.usage_rows(0, 100_000).await.unwrap()),
            source_usage
        );
        (all_audit(&source).await, all_audit(&target).await)
    });
    let (summary, history) = old_audit.split_last().unwrap();
    assert_eq!(summary.action, "database.migrate");
    assert_eq!(new_audit.get(..history.len()), Some(history));
    assert_eq!(new_audit.last(), Some(summary));
    assert!(
        history.iter().any(|r| r.action == "key.create"),
        "admin records are history too"
    );

    // A server on Postgres with the old data dir's secrets.
    let env = vec![
        ("KEYMINT_DATABASE_URL".to_owned(), pg.clone()),
        (
            "KEYMINT_PEPPER_FILE".to_owned(),
            pepper_file.display().to_string(),
        ),
        (
            "KEYMINT_ENCRYPTION_KEY_FILE".to_owned(),
            encryption_file.display().to_string(),
        ),
    ];
    let new = Server::start_with_env(temp_dir("migrate-pg"), &args, &env);
    assert_eq!(kids(&new), old_kids);
    token(&new, &secret);
    let r = reply(
        new.post("/v1/token")
            .set("Authorization", &format!("Bearer {publishable}"))
            .set("Origin", APP)
            .call(),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    let refused = token_request(&new, &revoked, None);
    assert_eq!(refused.status, 401, "{}", refused.text);

    let new_list = list(&new);
    assert!(
        new_list["serial"].as_u64().unwrap() >= old_list["serial"].as_u64().unwrap(),
        "the serial went backwards: {} after {}",
        new_list["serial"],
        old_list["serial"]
    );
    assert!(lists(&new_list, "jti", &jti));
    assert!(lists(&new_list, "key", &revoked_id));

    // Tokens minted before the move, by both signing keys, verify against the new key set; the
    // revoked one does not.
    for t in [&before_rotation, &after_rotation] {
        let out = verify(&new, t);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let out = verify(&new, &doomed);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("revoked"));

    // Once is enough: the target is not empty any more.
    let again = cli(&old.dir, &["migrate", "--to", &pg]);
    assert_eq!(again.status.code(), Some(4));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("not empty"), "{err}");
}

#[test]
fn migrate_refuses_a_data_dir_without_a_database_and_a_remote_issuer() {
    let dir = temp_dir("migrate-nothing");
    let out = cli(
        &dir,
        &["migrate", "--to", "postgres://keymint@127.0.0.1:1/none"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    assert!(
        !dir.join("pepper.key").exists() && !dir.join("keymint.db").exists(),
        "nothing may be created in a wrong data dir"
    );
    let remote = cli(
        &dir,
        &[
            "migrate",
            "--to",
            "postgres://keymint@127.0.0.1:1/none",
            "--issuer-url",
            "http://127.0.0.1:1",
        ],
    );
    assert_eq!(remote.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&remote.stderr).contains("--issuer-url"));
    let _ = std::fs::remove_dir_all(&dir);
}
