//! A full scenario at trace log level: no API key secret, token, pepper or encryption key appears in
//! any server output or in the database files.

// Test code: a failed step should stop the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use base64::Engine as _;
use support::*;

const AUD: &str = "https://api.example";

#[test]
fn no_secret_or_token_in_logs_or_database() {
    let mut s = Server::start("hygiene", &[]);
    let mut keys = Vec::new();
    let mut tokens = Vec::new();
    let mut cli_stderr = String::new();
    for tenant in ["acme", "globex"] {
        let (id, key) = s.create_key(&["--tenant", tenant, "--scope", "a", "--audience", AUD]);
        keys.push((id, key));
    }
    for (id, key) in &keys {
        let r = token_request(&s, key, Some(r#"{"scope":"a"}"#));
        assert_eq!(r.status, 200);
        tokens.push(r.json()["access_token"].as_str().unwrap().to_owned());
        let r = reply(s.post("/oauth2/token").send_form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", key),
        ]));
        assert_eq!(r.status, 200);
        tokens.push(r.json()["access_token"].as_str().unwrap().to_owned());
        // A failed attempt with the right ID and a wrong secret.
        let _ = token_request(&s, &format!("{}0", &key[..key.len() - 1]), None);
    }
    let rotated = s.cli(&["keys", "rotate", &keys[0].0, "--json"]);
    cli_stderr.push_str(&String::from_utf8_lossy(&rotated.stderr));
    let new: serde_json::Value = serde_json::from_slice(&rotated.stdout).unwrap();
    keys.push((
        new["key_id"].as_str().unwrap().to_owned(),
        new["key"].as_str().unwrap().to_owned(),
    ));
    let published_keys = || {
        reply(s.get("/.well-known/jwks.json").call()).json()["keys"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let before_rotation = published_keys();
    for args in [
        vec!["keys", "revoke", keys[1].0.as_str()],
        vec!["revoke", "tenant", "acme"],
        vec!["signing-keys", "rotate"],
    ] {
        let out = s.cli(&args);
        cli_stderr.push_str(&String::from_utf8_lossy(&out.stderr));
        cli_stderr.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    // The admin path: an admin key, its token, and a key created through the admin API.
    let out = s.cli(&["admin-keys", "create", "--scope", "admin:write", "--json"]);
    cli_stderr.push_str(&String::from_utf8_lossy(&out.stderr));
    let admin: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let admin_key = admin["key"].as_str().unwrap().to_owned();
    keys.push((
        admin["key_id"].as_str().unwrap().to_owned(),
        admin_key.clone(),
    ));
    let admin_token = token_request(&s, &admin_key, None).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    tokens.push(admin_token.clone());
    let created = reply(
        s.post("/v1/admin/keys")
            .set("Authorization", &format!("Bearer {admin_token}"))
            .set("Content-Type", "application/json")
            .send_string(
                &serde_json::json!({"tenant": "initech", "scopes": ["a"], "audiences": [AUD]})
                    .to_string(),
            ),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let created = created.json();
    keys.push((
        created["key_id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    ));
    let audit = reply(
        s.get("/v1/admin/audit")
            .set("Authorization", &format!("Bearer {admin_token}"))
            .call(),
    );
    assert_eq!(audit.status, 200);
    // The server has applied the CLI's changes (and logged what it logs about them) once it
    // publishes the key the last one, the signing-key rotation, made.
    wait_until(
        "the server to publish the rotated-in signing key",
        Duration::from_secs(3),
        || (published_keys() > before_rotation).then_some(()),
    );
    // A graceful stop writes the queued audit records, and all the output is read once it is done.
    s.stop();

    let server_output = s.all_output();
    assert!(
        server_output.contains("token.issue"),
        "the audit lines are missing"
    );
    // Issue #15: the log went to a pipe here, so it must be plain text (no ANSI colour codes).
    assert!(
        !server_output.contains('\u{1b}'),
        "ANSI escape codes in a log written to a pipe: {}",
        server_output
            .lines()
            .find(|l| l.contains('\u{1b}'))
            .unwrap_or_default()
    );
    let mut db = Vec::new();
    for f in ["keymint.db", "keymint.db-wal"] {
        if let Ok(bytes) = std::fs::read(s.dir.join(f)) {
            db.extend(bytes);
        }
    }
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(
        contains(&db, b"token.issue"),
        "issuance audit records were not written to the database"
    );

    let mut secrets: Vec<(String, Vec<u8>)> = Vec::new();
    for (id, key) in &keys {
        secrets.push((format!("key {id}"), key.clone().into_bytes()));
        secrets.push((
            format!("secret of {id}"),
            key.as_bytes()[key.len() - 49..key.len() - 6].to_vec(),
        ));
    }
    for (i, t) in tokens.iter().enumerate() {
        secrets.push((format!("token {i}"), t.clone().into_bytes()));
        secrets.push((
            format!("signature of token {i}"),
            t.rsplit('.').next().unwrap().as_bytes().to_vec(),
        ));
    }
    for f in ["pepper.key", "encryption.key"] {
        let text = std::fs::read_to_string(s.dir.join(f))
            .unwrap()
            .trim()
            .to_owned();
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&text)
            .unwrap();
        secrets.push((f.to_owned(), text.into_bytes()));
        // The raw bytes, as they would appear in a binary file.
        secrets.push((format!("{f} (raw)"), raw));
    }
    // The private signing keys, opened with the encryption key the way the server does: neither
    // the PKCS#8 document nor the 32-byte seed in it may show anywhere.
    for (kid, der) in private_signing_keys(&s.dir) {
        // Ed25519 PKCS#8 (RFC 8410), v1 or ring's v2: the 32-byte seed is the OCTET STRING at
        // offset 16 (v2 appends the public key, which is public).
        assert_eq!(der[14..16], [0x04, 0x20], "not an Ed25519 PKCS#8 document");
        let seed = der[16..48].to_vec();
        secrets.push((format!("PKCS#8 of {kid}"), der.clone()));
        secrets.push((format!("seed of {kid}"), seed.clone()));
        secrets.push((
            format!("seed of {kid} (base64url)"),
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(&seed)
                .into_bytes(),
        ));
    }
    assert!(
        secrets.iter().any(|(w, _)| w.starts_with("PKCS#8")),
        "no private signing key was checked"
    );
    for (what, secret) in &secrets {
        assert!(
            !contains(server_output.as_bytes(), secret),
            "{what} in the server output"
        );
        assert!(
            !contains(cli_stderr.as_bytes(), secret),
            "{what} in CLI output"
        );
        assert!(!contains(&db, secret), "{what} in the database");
    }
}

/// The data dir's private signing keys, opened the way the server opens them: (kid, PKCS#8 DER).
fn private_signing_keys(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    use keymint::domain::signing::secret_box::EncryptionKey;
    use keymint::store::{SqliteStore, Store as _};
    let text = std::fs::read_to_string(dir.join("encryption.key")).unwrap();
    let raw: [u8; 32] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .unwrap()
        .try_into()
        .unwrap();
    let key = EncryptionKey::new(&zeroize::Zeroizing::new(raw)).unwrap();
    let records = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = SqliteStore::open(&dir.join("keymint.db")).await.unwrap();
            store.signing_keys().await.unwrap()
        });
    records
        .into_iter()
        .filter(|r| !r.encrypted_pkcs8.is_empty())
        .map(|r| {
            let der = key
                .open(r.kid.as_str(), &r.encrypted_pkcs8)
                .unwrap()
                .to_vec();
            (r.kid.to_string(), der)
        })
        .collect()
}
