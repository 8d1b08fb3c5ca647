//! Leaked keys from outside: `keymint keys check` offline, and secret-scanning reports to a real
//! `keymint serve` (started with the recorded public-key document) revoking or flagging keys by
//! the tenant's policy, set with the CLI.
#![allow(clippy::disallowed_methods)]
// tests read the clock: they are the edge
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use support::*;

const AUD: &str = "https://api.example";
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/secret-scanning"
);
const SCANNER_KEY_ID: &str = "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c";

/// `keymint keys check [--json]` with `input` on stdin, against a data dir that does not exist.
fn check(input: &str, json: bool) -> std::process::Output {
    let nowhere = temp_dir("check").join("absent");
    let mut cmd = Command::new(BIN);
    cmd.args(["keys", "check", "--data-dir"]).arg(&nowhere);
    if json {
        cmd.arg("--json");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!nowhere.exists(), "keys check must not create a database");
    out
}

#[test]
fn keys_check_names_a_well_formed_key_offline_and_refuses_a_mistyped_one() {
    let s = Server::start("check", &[]);
    let (id, key) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let out = check(&format!("{key}\n"), true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"valid": true, "key_id": id, "kind": "secret", "env": "live"})
    );
    let text = check(&key, false);
    assert!(text.status.success());
    let shown = String::from_utf8_lossy(&text.stdout);
    assert!(shown.contains(&id) && shown.contains("secret") && shown.contains("live"));
    let secret = &key[key.len() - 49..];
    assert!(!shown.contains(secret), "the secret part is never printed");

    let mut typo = key.clone().into_bytes();
    typo[40] = if typo[40] == b'x' { b'y' } else { b'x' };
    let typo = String::from_utf8(typo).unwrap();
    for (input, why) in [
        (typo.as_str(), "checksum"),
        ("hello", "not a keymint API key"),
        ("", "not a keymint API key"),
    ] {
        let out = check(input, false);
        assert_eq!(out.status.code(), Some(1), "{input:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{err}");
        assert!(!err.contains(secret) && out.stdout.is_empty());
    }
    let out = check(&typo, true);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
}

fn sign(body: &str) -> String {
    let pem = std::fs::read_to_string(format!("{FIXTURES}/scanner-key.pk8.pem")).unwrap();
    let der = pem::parse(pem).unwrap();
    let rng = ring::rand::SystemRandom::new();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der.contents(), &rng).unwrap();
    base64::engine::general_purpose::STANDARD.encode(pair.sign(&rng, body.as_bytes()).unwrap())
}

fn report(s: &Server, keys: &[&str], signature: Option<String>) -> Reply {
    let body = serde_json::to_string(
        &keys
            .iter()
            .map(|k| {
                serde_json::json!({"token": k, "type": "keymint_api_key",
                "url": "https://github.com/octo/leaky/blob/main/.env", "source": "content"})
            })
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let sig = signature.unwrap_or_else(|| sign(&body));
    reply(
        s.post("/v1/secret-scanning/github")
            .set("Content-Type", "application/json")
            .set("Github-Public-Key-Identifier", SCANNER_KEY_ID)
            .set("Github-Public-Key-Signature", &sig)
            .send_string(&body),
    )
}

#[test]
fn a_signed_report_revokes_a_key_unless_its_tenants_policy_is_flag_set_with_the_cli() {
    let doc = format!("{FIXTURES}/public-keys.json");
    let s = Server::start("leaks", &["--secret-scanning-keys", &doc]);
    let (_, revoke_me) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let (_, flag_me) = s.create_key(&["--tenant", "calm", "--scope", "a", "--audience", AUD]);
    let out = s.cli(&["tenants", "policy", "calm", "--on-leak", "flag", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["on_leak"], "flag");

    let forged = report(&s, &[&revoke_me], Some(sign("something else")));
    assert_eq!(forged.status, 401, "{}", forged.text);
    assert_eq!(token_request(&s, &revoke_me, None).status, 200);

    let r = report(&s, &[&revoke_me, &flag_me], None);
    assert_eq!(r.status, 200, "{}", r.text);
    let labels: Vec<_> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["label"].clone())
        .collect();
    assert_eq!(labels, ["true_positive", "true_positive"]);
    // The server's key cache learns of the revocation through the change feed, like any other.
    wait_until(
        "the issuer to refuse the reported key",
        Duration::from_secs(5),
        || (token_request(&s, &revoke_me, None).status == 401).then_some(()),
    );
    assert_eq!(token_request(&s, &flag_me, None).status, 200);
    let audit = s.cli(&["audit"]);
    let text = String::from_utf8_lossy(&audit.stdout);
    assert!(
        text.contains("key.leak_revoke") && text.contains("key.leak_flag"),
        "{text}"
    );
    assert!(text.contains("https://github.com/octo/leaky/blob/main/.env"));
    wait_until("the refusal audit line", Duration::from_secs(5), || {
        s.all_output()
            .contains("bad_report_signature")
            .then_some(())
    });
    let logs = s.all_output();
    assert!(
        !logs.contains(&revoke_me) && !logs.contains(&flag_me),
        "no key in the logs"
    );
}

/// A loopback receiver answering 500 while `failing` is set and 200 otherwise; the bodies,
/// signature headers and whether it answered 200, for every call.
fn webhook_receiver(
    failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (String, std::sync::mpsc::Receiver<(String, String, bool)>) {
    use std::io::{BufRead, BufReader, Read};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let (mut len, mut sig) = (0usize, String::new());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("keymint-signature:") {
                    sig = line["keymint-signature:".len()..].trim().to_owned();
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let ok = !failing.load(std::sync::atomic::Ordering::SeqCst);
            let status = if ok {
                "200 OK"
            } else {
                "500 Internal Server Error"
            };
            let _ = conn.write_all(
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .as_bytes(),
            );
            let _ = tx.send((String::from_utf8_lossy(&body).into_owned(), sig, ok));
        }
    });
    (url, rx)
}

#[test]
fn the_tenants_webhook_set_with_the_cli_hears_of_a_revoked_key_with_a_signed_call() {
    let doc = format!("{FIXTURES}/public-keys.json");
    let s = Server::start("leakhook", &["--secret-scanning-keys", &doc]);
    let (id, key) = s.create_key(&["--tenant", "hooked", "--scope", "a", "--audience", AUD]);
    let (url, calls) = webhook_receiver(Default::default());
    let out = s.cli(&[
        "tenants",
        "policy",
        "hooked",
        "--webhook-url",
        &url,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let secret = v["webhook_secret"].as_str().unwrap().to_owned();
    let shown = s.cli(&["tenants", "policy", "hooked", "--json"]);
    assert!(
        !String::from_utf8_lossy(&shown.stdout).contains(&secret),
        "shown once"
    );

    let r = report(&s, &[&key], None);
    assert_eq!(r.status, 200, "{}", r.text);
    let (body, sig, _) = calls
        .recv_timeout(Duration::from_secs(10))
        .expect("no webhook call");
    let call: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(call["key_id"], id.as_str());
    assert_eq!(call["action"], "revoked");
    let (t, v1) = sig.split_once(",v1=").unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes()),
        format!("{t}.{body}").as_bytes(),
    );
    let want: String = mac.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(v1, want);
    assert!(
        !s.all_output().contains(&secret),
        "the webhook secret is never logged"
    );
}

#[test]
fn a_webhook_call_failing_before_a_restart_is_delivered_by_the_restarted_issuer() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let doc = format!("{FIXTURES}/public-keys.json");
    let mut first = Server::start("leakrestart", &["--secret-scanning-keys", &doc]);
    let (id, key) = first.create_key(&["--tenant", "restart", "--scope", "a", "--audience", AUD]);
    let failing = std::sync::Arc::new(AtomicBool::new(true));
    let (url, calls) = webhook_receiver(std::sync::Arc::clone(&failing));
    let out = first.cli(&["tenants", "policy", "restart", "--webhook-url", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report(&first, &[&key], None).status, 200);
    // The first attempt fails (500); then the issuer stops, with the call still pending.
    let (body, _, ok) = calls
        .recv_timeout(Duration::from_secs(10))
        .expect("no first attempt");
    assert!(!ok);
    first.stop();
    // From now on the receiver answers 200: whatever succeeds was sent by the restarted issuer.
    failing.store(false, Ordering::SeqCst);
    let second = Server::start_in(first.dir.clone(), &["--secret-scanning-keys", &doc]);
    let delivered = loop {
        let (b, _, ok) = calls
            .recv_timeout(Duration::from_secs(15))
            .expect("the restarted issuer did not retry the call");
        if ok {
            break b;
        }
    };
    assert_eq!(delivered, body, "the same call, from the database");
    let call: serde_json::Value = serde_json::from_str(&delivered).unwrap();
    assert_eq!(call["key_id"], id.as_str());
    // `second` goes first: both remove the shared directory when dropped.
    drop(second);
}
