//! Issue #15, point 2: one settings contract. The shared settings are stored on the first start;
//! a later start takes them when its flags are omitted and refuses, before writing anything, when
//! a flag differs; `keymint settings set` changes one and a running server adopts it.
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

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use keymint_jwks::{Audience, Issuer, Jwks, UnixTime};
use keymint_verifier::{Verifier, VerifyError};
use support::*;

const AUD: &str = "https://api.example";

/// Every file of the embedded database (the database, its write-ahead log, its index), by name.
fn database_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("keymint.db"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// The payload of a compact JWS (a token or a list), unverified: the test made it.
fn payload(jws: &str) -> serde_json::Value {
    let seg = jws.split('.').nth(1).unwrap();
    serde_json::from_slice(&keymint_jwks::jws::decode_segment(seg, "payload").unwrap()).unwrap()
}

/// Runs `keymint serve` on `dir` with `extra`, expecting it to refuse: its exit code and stderr.
fn refused_start(dir: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra);
    refused_serve(command)
}

/// Waits until `s` answers. The listening line already comes only once the start has stored its
/// settings; this also proves the server serves before a test stops it.
fn serving(s: &Server) {
    wait_until("the server to answer", Duration::from_secs(10), || {
        (reply(s.get("/healthz").call()).status == 200).then_some(())
    });
}

fn token(s: &Server, key: &str) -> String {
    let r = token_request(s, key, None);
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["access_token"].as_str().unwrap().to_owned()
}

fn cli_ok(s: &Server, args: &[&str]) -> String {
    let out = s.cli(args);
    assert!(
        out.status.success(),
        "{args:?}: exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_start_with_a_conflicting_setting_is_refused_and_changes_nothing() {
    let mut s = Server::start("settings-refused", &[]);
    let stored_issuer = s.url.clone();
    serving(&s);
    s.stop();
    let before = database_files(&s.dir);
    assert!(before.contains_key("keymint.db"), "{:?}", before.keys());

    let (code, stderr) = refused_start(&s.dir, &["--issuer-url", "https://other.example"]);
    assert_eq!(code, Some(2), "{stderr}");
    let dir = s.dir.display().to_string();
    for needle in [
        "--issuer-url",
        stored_issuer.as_str(),
        "https://other.example",
        &format!("keymint settings set issuer-url https://other.example --data-dir {dir}"),
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
    assert!(!stderr.contains("internal error"), "{stderr}");

    let (code, stderr) = refused_start(&s.dir, &["--max-token-ttl", "2h"]);
    assert_eq!(code, Some(2), "{stderr}");
    for needle in [
        "--max-token-ttl is 1h in the database, and 2h was given",
        &format!("keymint settings set max-token-ttl 2h --data-dir {dir}"),
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }

    // The database and its write-ahead log are byte for byte as they were, and no file came or
    // went. (`-shm` is SQLite's shared-memory index of the log, rebuilt by whoever opens it: a
    // reader marks its place there. It holds no data.)
    let after = database_files(&s.dir);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    for name in ["keymint.db", "keymint.db-wal"] {
        assert!(
            after.get(name) == before.get(name),
            "a refused start changed {name}"
        );
    }
}

#[test]
fn a_restart_on_another_address_without_flags_keeps_the_stored_settings() {
    let mut first = Server::start("settings-restart", &["--jwks-max-age", "2m"]);
    let stored_issuer = first.url.clone();
    serving(&first);
    first.stop();
    // Another port (127.0.0.1:0 again), no --issuer-url, no --jwks-max-age.
    let second = Server::start_in(first.dir.clone(), &[]);
    assert_ne!(second.url, stored_issuer);
    let metadata = reply(second.get("/.well-known/oauth-authorization-server").call()).json();
    assert_eq!(metadata["issuer"], stored_issuer.as_str());
    let jwks = reply(second.get("/.well-known/jwks.json").call());
    assert_eq!(jwks.header("cache-control"), Some("public, max-age=120"));
    let (_, key) = second.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    assert_eq!(
        payload(&token(&second, &key))["iss"],
        stored_issuer.as_str()
    );
    // `second` goes first: both remove the shared directory when dropped.
    drop(second);
}

/// The common path: a first run on localhost, then the real URL, without stopping the server.
#[test]
fn a_new_issuer_url_set_from_the_cli_reaches_a_running_server() {
    let s = Server::start("settings-issuer", &[]);
    let (_, key) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let old_token = token(&s, &key);
    assert_eq!(payload(&old_token)["iss"], s.url.as_str());

    // Another name for the same server, so that the admin CLI below can reach it under it.
    let new_url = s.url.replace("127.0.0.1", "localhost");
    let out = cli_ok(&s, &["settings", "set", "issuer-url", &new_url]);
    assert!(out.contains("carry the old iss"), "{out}");

    let new_token = wait_until(
        "new tokens to carry the new iss",
        Duration::from_secs(5),
        || {
            let t = token(&s, &key);
            (payload(&t)["iss"] == new_url.as_str()).then_some(t)
        },
    );
    let list = wait_until(
        "the list to be re-signed under the new issuer",
        Duration::from_secs(5),
        || {
            let jws = reply(s.get("/v1/revocations").call()).text;
            (payload(&jws)["iss"] == new_url.as_str()).then_some(jws)
        },
    );
    let metadata = reply(s.get("/.well-known/oauth-authorization-server").call()).json();
    assert_eq!(metadata["issuer"], new_url.as_str());
    assert_eq!(
        metadata["jwks_uri"],
        format!("{new_url}/.well-known/jwks.json").as_str()
    );

    // A verifier configured for the new issuer: it accepts the list (it refuses one signed under
    // another issuer at build time) and the new token, and refuses the old one.
    let jwks = Jwks::from_json(
        reply(s.get("/.well-known/jwks.json").call())
            .text
            .as_bytes(),
    )
    .unwrap();
    let verifier = Verifier::builder(
        Issuer::new(new_url.as_str()).unwrap(),
        Audience::new(AUD).unwrap(),
    )
    .jwks(jwks)
    .revocation_list(list)
    .build()
    .unwrap();
    let now = UnixTime::now();
    verifier.verify_at(&new_token, now).unwrap();
    assert!(
        matches!(
            verifier.verify_at(&old_token, now),
            Err(VerifyError::WrongIssuer)
        ),
        "{:?}",
        verifier.verify_at(&old_token, now)
    );

    // The admin API follows too: an admin token for the new issuer (audience
    // <new issuer>/v1/admin) is accepted there.
    let admin = s.cli(&["admin-keys", "create", "--scope", "admin:read", "--json"]);
    assert!(admin.status.success());
    let admin_key = serde_json::from_slice::<serde_json::Value>(&admin.stdout).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = Command::new(BIN)
        .args(["settings", "show", "--issuer-url", &new_url])
        .env("KEYMINT_ADMIN_KEY", &admin_key)
        .env("KEYMINT_DATA_DIR", s.dir.join("not-used"))
        .output()
        .unwrap();
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["issuer_url"], new_url.as_str());
}

#[test]
fn a_longer_max_token_ttl_keeps_existing_revocations_listed_long_enough() {
    let s = Server::start("settings-ttl", &[]);
    let (key_id, _) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    cli_ok(&s, &["keys", "revoke", &key_id]);
    let entry = |min_span: u64| {
        let jws = reply(s.get("/v1/revocations").call()).text;
        payload(&jws)["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == key_id.as_str())
            .map(|e| {
                (
                    e["revoked_at"].as_u64().unwrap(),
                    e["drop_after"].as_u64().unwrap(),
                )
            })
            .filter(|(at, drop)| drop - at >= min_span)
    };
    // Propagation bound (5 s), the lifetime, the verifiers' largest leeway (300 s).
    let (at, drop) = wait_until("the key's entry", Duration::from_secs(5), || entry(0));
    assert_eq!(drop - at, 5 + 3600 + 300);

    let out = cli_ok(&s, &["settings", "set", "max-token-ttl", "2h"]);
    assert!(out.contains("max-token-ttl is now 2h"), "{out}");
    let (at2, drop2) = wait_until(
        "the entry to cover a 2h token",
        Duration::from_secs(5),
        || entry(5 + 7200 + 300),
    );
    assert_eq!((at2, drop2 - at2), (at, 5 + 7200 + 300));
    let shown = cli_ok(&s, &["settings", "show", "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["max_token_ttl"], 7200);
}

/// An operator mistake in a serve flag (a retention shorter than the hour being counted, a usage
/// flush interval outside 1s..1h, a maximum token lifetime of days) is refused with the flag's
/// name, exit 2, before the data dir is created.
#[test]
fn out_of_range_flags_are_refused_before_the_data_dir_is_created() {
    let dir = std::env::temp_dir().join(format!("keymint-serve-flags-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (flags, needle) in [
        (
            ["--audit-retention", "30m"],
            "--audit-retention 1800s is under an hour",
        ),
        (
            ["--usage-flush-interval", "0s"],
            "--usage-flush-interval 0s is outside 1s..1h",
        ),
        (
            ["--usage-flush-interval", "2h"],
            "--usage-flush-interval 7200s is outside 1s..1h",
        ),
        (
            ["--max-token-ttl", "10d"],
            "--max-token-ttl: 864000s is above the cap of 86400s (24h)",
        ),
        (
            ["--jwks-max-age", "5d"],
            "--jwks-max-age: 432000s is above the cap of 86400s (24h)",
        ),
        // An unencoded `#` in the password: the URL cannot work, so it is the operator's to fix
        // (exit 2), not "the database is unavailable" (exit 5, retried by a supervisor forever).
        (
            ["--database-url", "postgres://km:p#ss@db.invalid/km"],
            "--database-url is not a database URL keymint can use",
        ),
        (
            ["--issuer-url", "https://km:hunter2@issuer.example"],
            "no user name or password",
        ),
        (
            ["--issuer-url", "https://km:p#ss@issuer.example"],
            "--issuer-url: the value is not a URL",
        ),
        (
            ["--database-url", "mysql://db.invalid/km"],
            "--database-url must start with postgres://, postgresql:// or sqlite:",
        ),
    ] {
        let (code, stderr) = refused_start(&dir, &flags);
        assert_eq!(code, Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
        assert!(!stderr.contains("internal error"), "{stderr}");
        assert!(
            !stderr.contains("p#ss") && !stderr.contains("hunter2"),
            "the password was printed: {stderr}"
        );
        assert!(!dir.exists(), "{flags:?} created {}", dir.display());
    }
    // Nor does the help, which shows the environment's values.
    let help = Command::new(BIN)
        .args(["serve", "--help"])
        .env(
            "KEYMINT_DATABASE_URL",
            "postgres://km:hunter2@db.invalid/km",
        )
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(!String::from_utf8_lossy(&help.stdout).contains("hunter2"));
}

/// Writes `text` as a secret file (mode 0600, as keymint makes them).
fn write_secret(path: &Path, text: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
}

/// A data dir whose `pepper.key` went missing (a database restored without it) used to get a new
/// pepper quietly: every customer's key then failed as a wrong secret while the server looked
/// healthy. Now the start is refused, naming the file, and no new one is made; the same for any
/// other command on that data dir.
#[test]
fn a_data_dir_that_lost_its_pepper_file_refuses_to_start_and_makes_no_new_one() {
    let mut s = Server::start("secret-lost", &[]);
    serving(&s);
    s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    s.stop();
    let pepper = s.dir.join("pepper.key");
    std::fs::remove_file(&pepper).unwrap();

    let (code, stderr) = refused_start(&s.dir, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    for needle in [
        pepper.display().to_string().as_str(),
        "is missing",
        "Restore",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
    assert!(!stderr.contains("internal error"), "{stderr}");
    assert!(!pepper.exists(), "a new pepper was made");

    let out = cli(&s.dir, &["keys", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!pepper.exists(), "a new pepper was made");
}

/// A database remembers a fingerprint of the secrets it was first used with: a start given
/// another pepper or another encryption key is refused before anything is written, naming which;
/// with its own secrets back it starts and its keys work.
#[test]
fn a_start_with_another_pepper_or_encryption_key_is_refused_and_changes_nothing() {
    let mut s = Server::start("secret-other", &[]);
    serving(&s);
    let (_, key) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    s.stop();
    let before = database_files(&s.dir);
    let other = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";
    for (file, needle) in [
        ("pepper.key", "the pepper given"),
        ("encryption.key", "the encryption key given"),
    ] {
        let path = s.dir.join(file);
        let own = std::fs::read_to_string(&path).unwrap();
        write_secret(&path, other);
        let (code, stderr) = refused_start(&s.dir, &[]);
        assert_eq!(code, Some(2), "{stderr}");
        for n in [
            needle,
            "not the one this database was first used with",
            "Nothing was written",
        ] {
            assert!(stderr.contains(n), "{n:?} not in {stderr}");
        }
        assert!(!stderr.contains("internal error"), "{stderr}");
        write_secret(&path, &own);
    }
    let after = database_files(&s.dir);
    for name in ["keymint.db", "keymint.db-wal"] {
        assert!(
            after.get(name) == before.get(name),
            "a refused start changed {name}"
        );
    }

    let s2 = Server::start_in(s.dir.clone(), &[]);
    serving(&s2);
    token(&s2, &key);
}

/// An issuer URL in plain http off loopback starts (a mesh may encrypt it) but is warned of in
/// the log, naming the fix, by `settings set` and in the settings as shown (CLI and admin API);
/// the local default says nothing.
#[test]
fn a_plain_http_issuer_off_loopback_is_warned_of_at_start() {
    let warning = "is plain http on a host other than loopback";
    // The log line "keymint listening" comes after the warning would: once it is read, the
    // warning is too, if there was one.
    let started = |s: &Server| {
        wait_until("the start in the log", Duration::from_secs(10), || {
            s.all_output()
                .contains("keymint listening")
                .then(|| s.all_output())
        })
    };
    let s = Server::start("http-issuer", &["--issuer-url", "http://issuer.example"]);
    let out = started(&s);
    assert!(
        out.lines().any(|l| l.contains("WARN")
            && l.contains(warning)
            && l.contains("http://issuer.example")),
        "{out}"
    );
    let local = Server::start("local-issuer", &[]);
    assert!(!started(&local).contains(warning));
    // `settings set` says the same when it stores such a URL, and stores it.
    let out = local.cli(&["settings", "set", "issuer-url", "http://issuer.example"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(warning), "{err}");
    // The settings as shown (`settings show --json`, and the admin API's GET and PUT, which
    // answer the same view) carry it too, for as long as the URL is stored.
    let shown = |s: &Server| -> serde_json::Value {
        let out = s.cli(&["settings", "show", "--json"]);
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let view = shown(&local);
    assert!(
        view["warnings"][0].as_str().unwrap().contains(warning),
        "{view}"
    );
    let text = local.cli(&["settings", "show"]);
    assert!(String::from_utf8_lossy(&text.stderr).contains(warning));
    // The admin API, once the running server has adopted the URL (its admin audience with it).
    let admin = local.cli(&["admin-keys", "create", "--scope", "admin:read", "--json"]);
    let admin_key = serde_json::from_slice::<serde_json::Value>(&admin.stdout).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let view = wait_until("the admin API's settings", Duration::from_secs(10), || {
        let token = token_request(&local, &admin_key, None).json()["access_token"]
            .as_str()?
            .to_owned();
        let r = reply(
            local
                .get("/v1/admin/settings")
                .set("Authorization", &format!("Bearer {token}"))
                .call(),
        );
        (r.status == 200).then(|| r.json())
    });
    assert!(
        view["warnings"][0].as_str().unwrap().contains(warning),
        "{view}"
    );
    let out = local.cli(&["settings", "set", "issuer-url", "https://issuer.example"]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains(warning));
    assert!(shown(&local).get("warnings").is_none());
}
