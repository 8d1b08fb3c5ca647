//! The revocation push channel (server-sent events) and emergency signing-key revocation.
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

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use keymint_jwks::{Audience, Issuer, Jwks, RevocationTarget};
use keymint_verifier::{Verifier, VerifyError};
use support::*;

const AUD: &str = "https://api.example";

/// Reads SSE events (id, event, data) from `url` on a thread.
fn subscribe(url: &str, last_event_id: Option<&str>) -> mpsc::Receiver<(String, String, String)> {
    let mut req = ureq::get(url);
    if let Some(id) = last_event_id {
        req = req.set("Last-Event-ID", id);
    }
    let res = req.call().unwrap();
    assert_eq!(res.header("content-type"), Some("text/event-stream"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
        for line in BufReader::new(res.into_reader())
            .lines()
            .map_while(Result::ok)
        {
            if line.is_empty() {
                if !data.is_empty() && tx.send((id.clone(), event.clone(), data.clone())).is_err() {
                    return;
                }
                data.clear();
            } else if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("event:") {
                event = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim());
            }
        }
    });
    rx
}

#[test]
fn a_revocation_is_pushed_to_subscribers_within_a_second() {
    let s = Server::start("sse", &[]);
    let meta = reply(s.get("/.well-known/oauth-authorization-server").call()).json();
    let events_url = meta["keymint_revocation_events_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let (id, key) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let token = token_request(&s, &key, None).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // No sleep before subscribing: the server's first list already covers the signing keys made
    // at startup, and nothing here changes the list until the revocation below.
    let events = subscribe(&events_url, None);
    let (first_id, kind, first) = events.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(kind, "revocations");
    let served = reply(s.get("/v1/revocations").call());
    assert_eq!(
        first, served.text,
        "the pushed list is the served one, byte for byte"
    );
    assert_eq!(format!("\"{first_id}\""), served.header("etag").unwrap());
    // A subscriber that already has this serial gets nothing until the next list.
    let resumed = subscribe(&events_url, Some(&first_id));

    let v = Verifier::builder(
        Issuer::new(s.url.as_str()).unwrap(),
        Audience::new(AUD).unwrap(),
    )
    .jwks(
        Jwks::from_json(
            reply(s.get("/.well-known/jwks.json").call())
                .text
                .as_bytes(),
        )
        .unwrap(),
    )
    .build()
    .unwrap();
    v.update_revocations(&first).unwrap();
    v.verify(&token).unwrap();

    assert!(s.cli(&["keys", "revoke", &id]).status.success());
    let revoked = Instant::now();
    let (next_id, _, next) = events
        .recv_timeout(Duration::from_secs(3))
        .expect("no push after the revocation");
    v.update_revocations(&next).unwrap();
    assert!(matches!(
        v.verify(&token),
        Err(VerifyError::Revoked(RevocationTarget::Key(_)))
    ));
    let latency = revoked.elapsed();
    println!("revocation reached the subscriber in {latency:?}");
    assert!(latency < Duration::from_secs(1), "{latency:?}");
    assert!(next_id.parse::<i64>().unwrap() > first_id.parse::<i64>().unwrap());
    let (resumed_id, _, _) = resumed.recv_timeout(Duration::from_secs(3)).unwrap();
    assert_eq!(resumed_id, next_id, "Last-Event-ID was not honoured");
}

fn kid_of(token: &str) -> String {
    let h = keymint_jwks::jws::decode_segment(token.split('.').next().unwrap(), "header").unwrap();
    serde_json::from_slice::<serde_json::Value>(&h).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn emergency_signing_key_revocation_drops_the_key_and_its_tokens_within_a_second() {
    let s = Server::start("kid-revoke", &[]);
    let (_, key) = s.create_key(&["--tenant", "acme", "--scope", "a", "--audience", AUD]);
    let token = token_request(&s, &key, None).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_kid = kid_of(&token);
    let v = Verifier::builder(
        Issuer::new(s.url.as_str()).unwrap(),
        Audience::new(AUD).unwrap(),
    )
    .jwks(
        Jwks::from_json(
            reply(s.get("/.well-known/jwks.json").call())
                .text
                .as_bytes(),
        )
        .unwrap(),
    )
    .build()
    .unwrap();
    v.update_revocations(&reply(s.get("/v1/revocations").call()).text)
        .unwrap();
    v.verify(&token).unwrap();

    let out = s.cli(&["signing-keys", "revoke", &old_kid]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let revoked = Instant::now();
    wait_until(
        "the signing key's revocation to propagate (1 s)",
        Duration::from_secs(1),
        || {
            // What a verifier does: take the new JWKS (the new list is signed by the new key), then
            // the new list.
            let jwks = Jwks::from_json(
                reply(s.get("/.well-known/jwks.json").call())
                    .text
                    .as_bytes(),
            )
            .unwrap();
            v.set_keys(jwks.clone());
            let list_text = reply(s.get("/v1/revocations").call()).text;
            let _ = v.update_revocations(&list_text);
            let listed =
                keymint_jwks::SignedRevocationList::verify(&list_text, &jwks, v.issuer(), 1 << 20)
                    .is_ok_and(|l| {
                        l.list().entries.iter().any(|e| {
                            e.target
                                == RevocationTarget::Kid(
                                    keymint_jwks::Kid::new(old_kid.as_str()).unwrap(),
                                )
                        })
                    });
            let rejected = matches!(
                v.verify(&token),
                Err(VerifyError::Revoked(RevocationTarget::Kid(_)) | VerifyError::UnknownKid { .. })
            );
            if jwks.get(&old_kid).is_none() && listed && rejected {
                // The new key signs at once, and verifiers pick it up from the JWKS.
                let fresh = token_request(&s, &key, None).json()["access_token"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                assert_ne!(kid_of(&fresh), old_kid);
                assert!(jwks.get(&kid_of(&fresh)).is_some());
                return Some(());
            }
            None
        },
    );
    println!(
        "signing-key revocation took effect in {:?}",
        revoked.elapsed()
    );
    assert_eq!(
        s.cli(&["signing-keys", "revoke", &old_kid]).status.code(),
        Some(4)
    );
}
