//! Admin commands against the data dir of a running server: changes apply within a second.
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

use std::time::{Duration, Instant};

use keymint_jwks::{Audience, Issuer, Jwks};
use keymint_verifier::{Verifier, VerifyError};
use support::*;

const AUD: &str = "https://api.example";

fn verifier_from_server(s: &Server) -> Verifier {
    let jwks = reply(s.get("/.well-known/jwks.json").call());
    Verifier::builder(
        Issuer::new(s.url.as_str()).unwrap(),
        Audience::new(AUD).unwrap(),
    )
    .jwks(Jwks::from_json(jwks.text.as_bytes()).unwrap())
    .build()
    .unwrap()
}

/// The wall clock in whole seconds, as the server compares key expiry.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn cli_key_revoke_takes_effect_in_the_running_server_within_one_second() {
    let s = Server::start("revoke1s", &[]);
    let (id, key) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let token = token_request(&s, &key, None).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = verifier_from_server(&s);
    v.update_revocations(&reply(s.get("/v1/revocations").call()).text)
        .unwrap();
    v.verify(&token).unwrap();

    let out = s.cli(&["keys", "revoke", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let revoked_at = Instant::now();
    let (mut issuer_refuses, mut list_rejects) = (None, None);
    let (issuer_refuses, list_rejects) = wait_until(
        "the issuer to refuse the revoked key and the list to cover it",
        Duration::from_secs(3),
        || {
            if issuer_refuses.is_none() && token_request(&s, &key, None).status == 401 {
                issuer_refuses = Some(revoked_at.elapsed());
            }
            if list_rejects.is_none() {
                let _ = v.update_revocations(&reply(s.get("/v1/revocations").call()).text);
                if matches!(v.verify(&token), Err(VerifyError::Revoked(_))) {
                    list_rejects = Some(revoked_at.elapsed());
                }
            }
            issuer_refuses.zip(list_rejects)
        },
    );
    assert!(
        issuer_refuses < Duration::from_secs(1),
        "issuer took {issuer_refuses:?}"
    );
    assert!(
        list_rejects < Duration::from_secs(1),
        "list took {list_rejects:?}"
    );
}

#[test]
fn revoke_token_and_tenant_reach_the_list_and_the_issuer() {
    let s = Server::start("revoke-kinds", &[]);
    let (_, k1) = s.create_key(&["--tenant", "globex", "--scope", "a", "--audience", AUD]);
    let (_, k2) = s.create_key(&["--tenant", "globex", "--scope", "a", "--audience", AUD]);
    let (_, other) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let t_other = token_request(&s, &other, None).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = verifier_from_server(&s);
    let jti = jti_of(&t_other);
    let out = s.cli(&["revoke", "token", &jti]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = s.cli(&["revoke", "tenant", "globex"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("2 key(s)"), "{}", stdout(&out));
    for k in [&k1, &k2] {
        wait_until(
            "the issuer to refuse the revoked tenant's keys",
            Duration::from_secs(3),
            || (token_request(&s, k, None).status == 401).then_some(()),
        );
    }
    // The server has applied the tenant's revocation: another tenant's key is untouched.
    assert_eq!(token_request(&s, &other, None).status, 200);
    wait_until(
        "the served list to revoke the token",
        Duration::from_secs(3),
        || {
            v.update_revocations(&reply(s.get("/v1/revocations").call()).text)
                .unwrap();
            matches!(v.verify(&t_other), Err(VerifyError::Revoked(_))).then_some(())
        },
    );
    // A key made for the tenant after its revocation works at the issuer.
    let (_, fresh) = s.create_key(&["--tenant", "globex", "--scope", "a", "--audience", AUD]);
    assert_eq!(token_request(&s, &fresh, None).status, 200);
}

#[test]
fn list_show_rotate_and_reserved_scopes() {
    let s = Server::start("keys-cli", &[]);
    let (id, key) = s.create_key(&[
        "--tenant",
        "acme",
        "--scope",
        "a",
        "--audience",
        AUD,
        "--label",
        "ci",
        "--owner",
        "ops@acme",
    ]);
    let list = s.cli(&["keys", "list", "--tenant", "acme", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["key_id"], id.as_str());
    assert_eq!(rows[0]["owner"], "ops@acme");
    let show = s.cli(&["keys", "show", &id, "--json"]);
    let secret = &key[key.len() - 49..key.len() - 6];
    for out in [&list, &show] {
        assert!(!stdout(out).contains(secret), "a secret was printed");
    }
    // --data-dir after or before the subcommand, or from the environment.
    let before = std::process::Command::new(BIN)
        .arg("--data-dir")
        .arg(&s.dir)
        .args(["keys", "show", &id])
        .output()
        .unwrap();
    assert!(before.status.success());
    // The table prints times as RFC 3339 (UTC); --json keeps Unix seconds.
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let expires =
        std::time::UNIX_EPOCH + Duration::from_secs(shown["expires_at"].as_u64().unwrap());
    let line = format!("expires_at: {}", humantime::format_rfc3339_seconds(expires));
    assert!(stdout(&before).contains(&line), "{}", stdout(&before));
    let env = std::process::Command::new(BIN)
        .env("KEYMINT_DATA_DIR", &s.dir)
        .args(["keys", "show", &id, "--json"])
        .output()
        .unwrap();
    assert!(stdout(&env).contains(&id));

    let rotated_at = unix_now();
    let rotated = s.cli(&["keys", "rotate", &id, "--grace", "2s", "--json"]);
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let new: serde_json::Value = serde_json::from_slice(&rotated.stdout).unwrap();
    let new_key = new["key"].as_str().unwrap();
    assert_ne!(new["key_id"], id.as_str());
    assert_eq!(new["tenant"], "acme");
    assert_eq!(new["scopes"], serde_json::json!(["a"]));
    // A new key is read from the database on first use: it works at once.
    assert_eq!(token_request(&s, new_key, None).status, 200);
    // The old key expires 2 s after the rotation (in whole seconds)...
    let show = s.cli(&["keys", "show", &id, "--json"]);
    let old_expires =
        serde_json::from_slice::<serde_json::Value>(&show.stdout).unwrap()["expires_at"]
            .as_i64()
            .unwrap();
    assert!(
        (rotated_at + 2..=unix_now() + 2).contains(&old_expires),
        "grace not 2 s: expires at {old_expires}, rotated at {rotated_at}"
    );
    // ...and the running server, which learns of the rotation within a second, keeps taking it
    // until then, and refuses it from then on.
    wait_until(
        "the old key to be refused after the grace",
        Duration::from_secs(5),
        || {
            let status = token_request(&s, &key, None).status;
            let now = unix_now();
            match status {
                200 => None,
                401 => {
                    assert!(
                        now >= old_expires,
                        "old key refused during the grace (at {now}, grace until {old_expires})"
                    );
                    Some(())
                }
                other => panic!("old key: {other}"),
            }
        },
    );

    let admin = s.cli(&[
        "keys",
        "create",
        "--tenant",
        "acme",
        "--scope",
        "admin:keys",
        "--audience",
        AUD,
    ]);
    assert_eq!(admin.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&admin.stderr).contains("reserved"));
    let missing = s.cli(&["keys", "show", "ZZZZZZZZZZZZZZZZ"]);
    assert_eq!(missing.status.code(), Some(3));
}

#[test]
fn publish_writes_files_a_verifier_accepts() {
    let s = Server::start("publish", &[]);
    let (_, key) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let token = token_request(&s, &key, None).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let out_dir = temp_dir("publish-out");
    let out = s.cli(&["publish", "--out", out_dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = Verifier::builder(
        Issuer::new(s.url.as_str()).unwrap(),
        Audience::new(AUD).unwrap(),
    )
    .jwks_file(out_dir.join("jwks.json"))
    .revocation_list_file(out_dir.join("revocations.jws"))
    .build()
    .unwrap();
    v.verify(&token).unwrap();
    // The published list is the one the server serves (it picks up stored lists within a second).
    let published = std::fs::read_to_string(out_dir.join("revocations.jws")).unwrap();
    wait_until(
        "the server to serve the published list",
        Duration::from_secs(2),
        || (reply(s.get("/v1/revocations").call()).text == published).then_some(()),
    );
    let _ = std::fs::remove_dir_all(out_dir);
}

#[test]
fn token_command_reads_the_key_from_env_or_stdin_and_verify_explains() {
    use std::io::Write as _;
    let s = Server::start("token-cmd", &[]);
    let (_, key) = s.create_key(&[
        "--tenant",
        "acme",
        "--scope",
        "a",
        "--scope",
        "b",
        "--audience",
        AUD,
    ]);
    let out = std::process::Command::new(BIN)
        .args(["token", "--issuer-url", &s.url, "--scope", "a"])
        .env("KEYMINT_API_KEY", &key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = stdout(&out).trim().to_owned();
    assert_eq!(token.split('.').count(), 3);

    let mut child = std::process::Command::new(BIN)
        .args(["token", "--issuer-url", &s.url, "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(key.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["scope"], "a b");

    let jwks_url = format!("{}/.well-known/jwks.json", s.url);
    let list_url = format!("{}/v1/revocations", s.url);
    let verify = |t: &str, aud: &str| {
        std::process::Command::new(BIN)
            .env("KEYMINT_TOKEN", t)
            .args([
                "verify",
                "--jwks",
                &jwks_url,
                "--issuer",
                &s.url,
                "--audience",
                aud,
                "--revocations",
                &list_url,
            ])
            .output()
            .unwrap()
    };
    let ok = verify(&token, AUD);
    assert!(ok.status.success(), "{}", stdout(&ok));
    assert!(stdout(&ok).starts_with("valid"));
    let wrong = verify(&token, "https://other.example");
    assert_eq!(wrong.status.code(), Some(1));
    // Issue #13: no token on the command line, and no "valid" without every check.
    let run = |args: &[&str]| {
        std::process::Command::new(BIN)
            .env("KEYMINT_TOKEN", &token)
            .arg("verify")
            .args(args)
            .output()
            .unwrap()
    };
    let in_argv = run(&[&token, "--jwks", &jwks_url, "--skip", "issuer"]);
    assert_eq!(in_argv.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&in_argv.stderr).contains("stdin or in KEYMINT_TOKEN"));
    let incomplete = run(&["--jwks", &jwks_url, "--audience", AUD]);
    assert_eq!(incomplete.status.code(), Some(2));
    let err = String::from_utf8_lossy(&incomplete.stderr).into_owned();
    assert!(
        err.contains("--issuer") && err.contains("--revocations") && !err.contains("--audience"),
        "{err}"
    );
    let partial = run(&[
        "--jwks",
        &jwks_url,
        "--audience",
        AUD,
        "--skip",
        "issuer",
        "--skip",
        "revocation",
    ]);
    assert!(partial.status.success(), "{}", stdout(&partial));
    let out = stdout(&partial);
    assert!(out.starts_with("partially valid"), "{out}");
    assert!(
        out.contains("issuer not checked") && out.contains("revocation not checked"),
        "{out}"
    );
    assert!(
        stdout(&wrong).contains("wrong_audience"),
        "{}",
        stdout(&wrong)
    );
    let refused = std::process::Command::new(BIN)
        .args(["token", "--issuer-url", &s.url, "--scope", "c"])
        .env("KEYMINT_API_KEY", &key)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("invalid_scope"));
}

#[test]
fn a_leaked_key_is_revoked_and_replaced_in_one_step() {
    let s = Server::start("leak", &[]);
    let (id, key) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let token = token_request(&s, &key, None).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = s.cli(&["keys", "rotate", &id, "--revoke-old", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let successor: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    wait_until(
        "the issuer to refuse the leaked key",
        Duration::from_secs(3),
        || (token_request(&s, &key, None).status == 401).then_some(()),
    );
    assert_eq!(
        token_request(&s, successor["key"].as_str().unwrap(), None).status,
        200
    );
    let v = verifier_from_server(&s);
    wait_until(
        "the served list to revoke the leaked key's tokens",
        Duration::from_secs(3),
        || {
            v.update_revocations(&reply(s.get("/v1/revocations").call()).text)
                .unwrap();
            matches!(v.verify(&token), Err(VerifyError::Revoked(_))).then_some(())
        },
    );
}

/// `keymint keys create … | head -1` used to panic (exit 101) when `head` had gone before the
/// rest of the output was written, failing `scripts/bench-issuer` now and then: a reader that
/// hangs up ends the command quietly, after its work is done.
#[test]
fn a_reader_that_hangs_up_ends_the_command_quietly_after_its_work() {
    let dir = temp_dir("broken-pipe");
    let mut child = std::process::Command::new(BIN)
        .args([
            "keys",
            "create",
            "--data-dir",
            dir.to_str().unwrap(),
            "--tenant",
            "acme",
            "--scope",
            "a",
            "--audience",
            AUD,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Hang up before the command writes anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let listed = cli(&dir, &["keys", "list", "--tenant", "acme"]);
    assert!(
        stdout(&listed).contains("acme"),
        "the key was created all the same"
    );
}

/// A `jti` or a `kid` is base64url and may begin with `-` (one in 64 does): seen in CI as a
/// flaky `revoke token` that clap took for an unknown option. Such a value is a value.
#[test]
fn a_jti_or_kid_that_begins_with_a_dash_is_a_value_not_an_option() {
    let dir = temp_dir("dash-values");
    let out = cli(&dir, &["revoke", "token", "-bWVhbi1qdGk"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(stdout(&out).contains("-bWVhbi1qdGk"), "{err}");
    let out = cli(&dir, &["signing-keys", "revoke", "-no-such-kid"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_ne!(out.status.code(), Some(2), "taken for an option: {err}");
    assert!(err.contains("-no-such-kid"), "{err}");
}

/// The standby successor has no activation time yet: the table says `standby`, not the far-future
/// number it is stored as.
#[test]
fn signing_keys_list_shows_the_standby_successor_as_standby() {
    let dir = temp_dir("standby-list");
    let out = cli(&dir, &["signing-keys", "rotate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&dir, &["signing-keys", "list"]);
    let table = stdout(&out);
    assert!(out.status.success(), "{table}");
    assert!(!table.contains(&i64::MAX.to_string()), "{table}");
    let next: Vec<&str> = table
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some("next"))
        .collect();
    // After a rotation: the successor with its activation time, and a new standby behind it.
    assert!(next.iter().any(|l| l.ends_with(" standby")), "{table}");
}
