//! Two issuer replicas on one Postgres database, and the CLI acting on it: they share keys,
//! signing keys, revocations and the list's serial; a change through either replica or the CLI
//! reaches both within a second and their JWKS and lists converge to the same ETag; a DPoP proof
//! used at one is refused at the other; rate limits are per replica.
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

use support::*;

const AUD: &str = "https://api.example";
const ISSUER: &str = "http://keymint.test";

struct Pair {
    a: Server,
    b: Server,
}

fn pair(name: &str) -> Pair {
    pair_on(name, &fresh_pg_database())
}

fn pair_on(name: &str, database_url: &str) -> Pair {
    let env = pg_env(database_url);
    let args = ["--issuer-url", ISSUER, "--jwks-max-age", "2s"];
    // One after the other, as a rolling deploy would: the first creates the signing key.
    let a = Server::start_with_env(temp_dir(&format!("{name}-a")), &args, &env);
    let b = Server::start_with_env(temp_dir(&format!("{name}-b")), &args, &env);
    Pair { a, b }
}

fn etag(s: &Server, path: &str) -> (String, String) {
    let r = reply(s.get(path).call());
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    (r.header("etag").unwrap_or_default().to_owned(), r.text)
}

/// Polls until `f` holds, for at most `limit`; how long it took.
fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    try_wait_until(limit, || f().then(|| start.elapsed()))
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn replicas_share_keys_and_converge_on_the_same_jwks_and_list_within_a_second() {
    let p = pair("converge");
    // The first replica may publish its next signing key just after the second started.
    let same_jwks = || etag(&p.a, "/.well-known/jwks.json") == etag(&p.b, "/.well-known/jwks.json");
    assert!(within(Duration::from_secs(1), same_jwks).is_some());

    // A key made by the CLI works at both replicas, and the tokens carry the shared issuer.
    let (id, key) =
        p.a.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    for s in [&p.a, &p.b] {
        let r = token_request(s, &key, None);
        assert_eq!(r.status, 200, "{}", r.text);
    }

    // Revoked through the CLI: both replicas refuse it, and serve the very same list bytes.
    ok(&p.b.cli(&["keys", "revoke", &id]));
    let took = within(Duration::from_secs(1), || {
        token_request(&p.a, &key, None).status == 401
            && token_request(&p.b, &key, None).status == 401
    });
    assert!(
        took.is_some(),
        "a revocation must reach both replicas within 1 s"
    );
    let took = within(Duration::from_secs(1), || {
        let (ea, ba) = etag(&p.a, "/v1/revocations");
        let (eb, bb) = etag(&p.b, "/v1/revocations");
        ea == eb && ba == bb && ba.contains('.') && {
            let payload =
                keymint_jwks::jws::decode_segment(ba.split('.').nth(1).unwrap(), "p").unwrap();
            String::from_utf8_lossy(&payload).contains(&id)
        }
    });
    println!("revocation lists converged after {took:?}");
    assert!(
        took.is_some(),
        "both replicas must serve one list naming the key"
    );

    // A signing-key rotation made through the CLI: both JWKS move to the same new set.
    let before = etag(&p.a, "/.well-known/jwks.json").0;
    ok(&p.a.cli(&["signing-keys", "rotate"]));
    let took = within(Duration::from_secs(1), || {
        let (ea, _) = etag(&p.a, "/.well-known/jwks.json");
        let (eb, _) = etag(&p.b, "/.well-known/jwks.json");
        ea == eb && ea != before
    });
    println!("JWKS converged after {took:?}");
    assert!(
        took.is_some(),
        "both replicas must publish the rotated set within 1 s"
    );

    // A token revoked by jti through one replica's database is in both lists.
    let (_, key2) =
        p.b.create_key(&["--tenant", "beta", "--scope", "a", "--audience", AUD]);
    let tok = token_request(&p.b, &key2, None).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let payload = keymint_jwks::jws::decode_segment(tok.split('.').nth(1).unwrap(), "p").unwrap();
    let jti = serde_json::from_slice::<serde_json::Value>(&payload).unwrap()["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&p.a.cli(&["revoke", "token", &jti]));
    let took = within(Duration::from_secs(1), || {
        let (ea, ba) = etag(&p.a, "/v1/revocations");
        let (eb, _) = etag(&p.b, "/v1/revocations");
        ea == eb && {
            let payload =
                keymint_jwks::jws::decode_segment(ba.split('.').nth(1).unwrap(), "p").unwrap();
            String::from_utf8_lossy(&payload).contains(&jti)
        }
    });
    assert!(
        took.is_some(),
        "a jti revocation must reach both lists within 1 s"
    );
}

#[test]
fn a_change_made_through_one_replicas_admin_api_reaches_the_other_within_a_second() {
    let p = pair("admin-api");
    let out =
        p.a.cli(&["admin-keys", "create", "--scope", "admin:write", "--json"]);
    let admin_key = serde_json::from_slice::<serde_json::Value>(&ok_bytes(&out)).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_token = token_request(&p.a, &admin_key, None).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_call = |s: &Server, path: &str, body: &str| {
        reply(
            s.post(path)
                .set("Authorization", &format!("Bearer {admin_token}"))
                .set("Content-Type", "application/json")
                .send_string(body),
        )
    };
    // A key created through replica A works at replica B...
    let created = admin_call(
        &p.a,
        "/v1/admin/keys",
        &format!(r#"{{"tenant":"acme","scopes":["a"],"audiences":["{AUD}"]}}"#),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let (id, key) = (
        created.json()["key_id"].as_str().unwrap().to_owned(),
        created.json()["key"].as_str().unwrap().to_owned(),
    );
    assert_eq!(token_request(&p.b, &key, None).status, 200);
    // ...and, revoked through replica B's admin API (the admin token verifies there too), is
    // refused by replica A within a second.
    let revoked = admin_call(&p.b, &format!("/v1/admin/keys/{id}/revoke"), "{}");
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let took = within(Duration::from_secs(1), || {
        token_request(&p.a, &key, None).status == 401
    });
    println!("admin API revocation at B reached A after {took:?}");
    assert!(took.is_some());
}

fn ok_bytes(out: &std::process::Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.clone()
}

#[test]
fn a_dpop_proof_used_at_one_replica_is_refused_at_the_other() {
    use keymint_jwks::dpop::make_proof;
    use keymint_jwks::{Algorithm, SigningKey, UnixTime};
    let p = pair("dpop");
    let (_, key) =
        p.a.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let browser = SigningKey::generate(Algorithm::Es256).unwrap();
    let proof = make_proof(
        &browser,
        "POST",
        &format!("{ISSUER}/v1/token"),
        UnixTime::now(),
        "once",
        None,
        None,
    )
    .unwrap();
    let send = |s: &Server| {
        reply(
            s.post("/v1/token")
                .set("Authorization", &format!("Bearer {key}"))
                .set("DPoP", &proof)
                .call(),
        )
    };
    let first = send(&p.a);
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.json()["token_type"], "DPoP");
    let replay = send(&p.b);
    assert_eq!(replay.status, 400, "{}", replay.text);
    assert_eq!(replay.json()["error"], "invalid_dpop_proof");
}

#[test]
fn rate_limits_are_enforced_by_each_replica_on_its_own() {
    // Documented: a key's rate limit is per replica, so behind N replicas a client can reach up
    // to N times the limit. This test pins that behaviour down.
    let p = pair("ratelimit");
    let (_, key) = p.a.create_key(&[
        "--tenant",
        "acme",
        "--scope",
        "a",
        "--audience",
        AUD,
        "--rate-limit",
        "3/m",
    ]);
    for s in [&p.a, &p.b] {
        let statuses: Vec<u16> = (0..4)
            .map(|_| token_request(s, &key, None).status)
            .collect();
        assert_eq!(statuses, [200, 200, 200, 429], "at {}", s.url);
    }
}

#[test]
fn serve_refuses_a_shared_database_without_operator_supplied_secrets() {
    let url = fresh_pg_database();
    let dir = temp_dir("pg-nosecrets");
    let mut command = std::process::Command::new(BIN);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("KEYMINT_DATABASE_URL", &url)
        .env_remove("KEYMINT_ENCRYPTION_KEY")
        .env_remove("KEYMINT_PEPPER");
    let (code, err) = refused_serve(command);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("KEYMINT_ENCRYPTION_KEY is not set"), "{err}");
    assert!(
        !dir.join("encryption.key").exists(),
        "nothing may be generated for a shared database"
    );
}

/// A replica on a shared database keeps nothing in a data dir (its secrets come from the
/// environment), so it needs none: in a container without `$HOME` it used to fail with "no data
/// directory", and a `--data-dir` it was given (a directory of the operator's) was made 0700.
#[test]
fn a_shared_database_needs_no_data_dir_and_leaves_one_given_as_it_was() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = pg_env(&fresh_pg_database());
    let create = [
        "keys",
        "create",
        "--tenant",
        "acme",
        "--scope",
        "a",
        "--audience",
        AUD,
    ];
    let out = std::process::Command::new(BIN)
        .args(create)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("HOME")
        .env_remove("XDG_DATA_HOME")
        .env_remove("KEYMINT_DATA_DIR")
        .output()
        .unwrap();
    ok(&out);
    let dir = temp_dir("pg-own-dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
    let out = std::process::Command::new(BIN)
        .args(create)
        .arg("--data-dir")
        .arg(&dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    ok(&out);
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    let files = std::fs::read_dir(&dir).unwrap().count();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(mode, 0o750, "the directory's mode was changed");
    assert_eq!(files, 0, "something was written into it");
}

/// A replica given another `KEYMINT_PEPPER` than the others (a stale secret in one deploy) would
/// have served, refusing every customer's key as a wrong secret. The database keeps a fingerprint
/// of the secrets it was first used with, so that replica is refused at start, naming the pepper;
/// the replica with the right secrets goes on serving.
#[test]
fn a_replica_with_another_pepper_is_refused_at_start_and_the_others_keep_serving() {
    let Pair { a, b: _b } = pair("other-pepper");
    let (_, key) = a.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let dir = temp_dir("other-pepper-c");
    let env = a.env.iter().map(|(k, v)| {
        if k == "KEYMINT_PEPPER" {
            (
                k.clone(),
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
            )
        } else {
            (k.clone(), v.clone())
        }
    });
    let mut command = std::process::Command::new(BIN);
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--issuer-url",
            ISSUER,
            "--data-dir",
        ])
        .arg(&dir)
        .envs(env);
    let (code, err) = refused_serve(command);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("the pepper given")
            && err.contains("not the one this database was first used with"),
        "{err}"
    );
    assert!(!err.contains("internal error"), "{err}");
    assert_eq!(token_request(&a, &key, None).status, 200);
}

/// Issue #15, point 2: a replica started with another issuer URL than the one stored is refused
/// before it writes anything (the feed, the audit log and the lists are as they were, checked
/// through the database), naming both URLs and the command that changes it for every replica;
/// the one running adopts `keymint settings set` from the feed.
#[test]
fn a_replica_with_a_conflicting_setting_is_refused_before_writing_and_a_change_reaches_both() {
    let Pair { a, b } = pair("settings");
    let (_, key) = a.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let url = a
        .env
        .iter()
        .find(|(k, _)| k == "KEYMINT_DATABASE_URL")
        .unwrap()
        .1
        .clone();
    let snapshot = || -> (i64, i64, i64, Vec<(String, String)>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sqlx::Connection as _;
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            let n = |q: &'static str| sqlx::query_scalar::<_, i64>(q);
            (
                n("SELECT coalesce(max(id), 0) FROM changes")
                    .fetch_one(&mut c)
                    .await
                    .unwrap(),
                n("SELECT count(*) FROM audit")
                    .fetch_one(&mut c)
                    .await
                    .unwrap(),
                n("SELECT coalesce(max(serial), 0) FROM revocation_lists")
                    .fetch_one(&mut c)
                    .await
                    .unwrap(),
                sqlx::query_as("SELECT name, value FROM settings ORDER BY name")
                    .fetch_all(&mut c)
                    .await
                    .unwrap(),
            )
        })
    };
    let before = snapshot();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(temp_dir("settings-c"))
        .args(["--issuer-url", "https://other.example"])
        .envs(a.env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for needle in [
        "--issuer-url is http://keymint.test in the database, and https://other.example was given",
        "keymint settings set issuer-url https://other.example --database-url postgres://",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
    assert_eq!(snapshot(), before, "a refused start wrote to the database");

    ok(&a.cli(&["settings", "set", "issuer-url", "https://auth.example"]));
    for s in [&a, &b] {
        wait_until("the new issuer in tokens", Duration::from_secs(5), || {
            let r = token_request(s, &key, None);
            let t = r.json()["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let seg = t.split('.').nth(1).unwrap_or_default();
            let claims: serde_json::Value = keymint_jwks::jws::decode_segment(seg, "payload")
                .ok()
                .and_then(|p| serde_json::from_slice(&p).ok())
                .unwrap_or_default();
            (claims["iss"] == "https://auth.example").then_some(())
        });
    }
}

/// The change feed keeps a day (the hourly task prunes older changes). A replica that could not
/// read it while changes it had not read were pruned (cut off from the database for a day; here:
/// stopped with SIGSTOP while the feed is pruned under it) is told so when it reads again, and
/// reads its keys again: a key revoked meanwhile is refused, not served from its cache.
#[test]
fn a_replica_that_missed_pruned_changes_reloads_and_refuses_a_key_revoked_meanwhile() {
    let url = fresh_pg_database();
    let p = pair_on("pruned", &url);
    let (id, key) =
        p.a.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let r = token_request(&p.b, &key, None);
    assert_eq!(r.status, 200, "{}", r.text);

    p.b.signal("STOP");
    ok(&p.a.cli(&["keys", "revoke", &id]));
    // A later change, so that the revocation is not the newest change (which pruning keeps).
    p.a.create_key(&["--tenant", "other", "--scope", "a", "--audience", AUD]);
    // What the hourly task does to changes older than a day.
    pg_execute(
        &url,
        "DELETE FROM changes WHERE id < (SELECT max(id) FROM changes)",
    );
    p.b.signal("CONT");

    let took = within(Duration::from_secs(5), || {
        token_request(&p.b, &key, None).status == 401
    });
    assert!(
        took.is_some(),
        "the replica went on minting for a key revoked in changes it never read"
    );
    // Its log is written in batches and read by a thread: wait for the line.
    let said = within(Duration::from_secs(5), || {
        p.b.all_output()
            .contains("changes this server had not read were pruned")
    });
    assert!(
        said.is_some(),
        "the replica must say why it reloads:\n{}",
        p.b.all_output()
    );
}
