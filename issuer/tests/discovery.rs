//! JWKS, RFC 8414 metadata, the revocation list and health, over real sockets.
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

use support::*;

#[test]
fn jwks_has_cache_headers_and_an_etag_that_revalidates() {
    let s = Server::start("jwks", &["--jwks-max-age", "2m"]);
    let r = reply(s.get("/.well-known/jwks.json").call());
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("public, max-age=120"));
    let etag = r.header("etag").unwrap().to_owned();
    let jwks = keymint_jwks::Jwks::from_json(r.text.as_bytes()).unwrap();
    // The active key and the standby *next* key an emergency revocation would hand signing to.
    assert_eq!(jwks.keys().len(), 2);
    // kid is the RFC 7638 thumbprint.
    for k in jwks.keys() {
        assert_eq!(k.kid(), &k.key().thumbprint());
    }
    let again = reply(
        s.get("/.well-known/jwks.json")
            .set("If-None-Match", &etag)
            .call(),
    );
    assert_eq!(again.status, 304);
}

#[test]
fn metadata_follows_rfc8414() {
    let s = Server::start("meta", &[]);
    let m = reply(s.get("/.well-known/oauth-authorization-server").call()).json();
    assert_eq!(m["issuer"], s.url.as_str());
    assert_eq!(m["token_endpoint"], format!("{}/oauth2/token", s.url));
    assert_eq!(m["jwks_uri"], format!("{}/.well-known/jwks.json", s.url));
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!(["client_credentials"])
    );
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(
        m["keymint_revocation_list_uri"],
        format!("{}/v1/revocations", s.url)
    );
    // Every advertised URL answers.
    for url in [&m["jwks_uri"], &m["keymint_revocation_list_uri"]] {
        assert_eq!(reply(ureq::get(url.as_str().unwrap()).call()).status, 200);
    }
}

#[test]
fn revocation_list_is_signed_for_this_issuer_and_revalidates() {
    let s = Server::start("list", &[]);
    let r = reply(s.get("/v1/revocations").call());
    assert_eq!(r.status, 200);
    let etag = r.header("etag").unwrap().to_owned();
    let jwks = keymint_jwks::Jwks::from_json(
        reply(s.get("/.well-known/jwks.json").call())
            .text
            .as_bytes(),
    )
    .unwrap();
    let list = keymint_jwks::SignedRevocationList::verify(
        &r.text,
        &jwks,
        &keymint_jwks::Issuer::new(s.url.as_str()).unwrap(),
        1 << 20,
    )
    .unwrap();
    assert_eq!(etag, format!("\"{}\"", list.list().serial));
    assert_eq!(
        list.list().exp.as_secs() - list.list().iat.as_secs(),
        86_400
    );
    assert_eq!(
        reply(s.get("/v1/revocations").set("If-None-Match", &etag).call()).status,
        304
    );
}

#[test]
fn health_and_readiness() {
    let s = Server::start("health", &[]);
    assert_eq!(reply(s.get("/healthz").call()).status, 200);
    assert_eq!(reply(s.get("/readyz").call()).status, 200);
}

#[test]
fn plain_http_on_a_public_address_is_refused() {
    let dir = temp_dir("public");
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--behind-tls-proxy"));
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 13, point 3: verifiers cap a list's validity at 7 days, so an issuer signing longer lists
/// would be refused everywhere; `serve` says so at start instead.
#[test]
fn a_revocation_list_validity_above_the_cap_is_refused_naming_the_cap() {
    let dir = temp_dir("validity-cap");
    for too_long in ["8d", "1000years"] {
        let mut child = std::process::Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .args(["--revocation-list-validity", too_long])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Exits at once; a server that started instead is stopped and the test fails.
        let status = try_wait_until(std::time::Duration::from_secs(10), || {
            child.try_wait().unwrap()
        });
        let status = status.unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve started with {too_long}")
        });
        assert_eq!(status.code(), Some(2), "{too_long}");
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(
            stderr.contains("--revocation-list-validity") && stderr.contains("cap of 604800s (7d)"),
            "{stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn https_with_a_certificate_and_key_on_ring() {
    use std::sync::Arc;
    let dir = temp_dir("tls");
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).unwrap();
    let data = dir.join("data");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let s = Server::start_in(
        data,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(s.url.starts_with("https://"), "{}", s.url);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let agent = ureq::AgentBuilder::new().tls_config(Arc::new(tls)).build();
    let meta: serde_json::Value = serde_json::from_str(
        &agent
            .get(&format!("{}/.well-known/oauth-authorization-server", s.url))
            .call()
            .unwrap()
            .into_string()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(meta["issuer"], s.url.as_str());
    let (_, api_key) = s.create_key(&[
        "--tenant",
        "acme",
        "--scope",
        "a",
        "--audience",
        "https://api.example",
    ]);
    let res = agent
        .post(&format!("{}/v1/token", s.url))
        .set("Authorization", &format!("Bearer {api_key}"))
        .call()
        .unwrap();
    assert_eq!(res.status(), 200);
    // Plain HTTP to the TLS port gets nowhere.
    assert!(
        ureq::get(&format!("{}/healthz", s.url.replacen("https", "http", 1)))
            .call()
            .is_err()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn metrics_count_issued_and_refused_tokens_by_reason_and_time_requests_by_route() {
    let s = Server::start("metrics", &[]);
    let (_, key) = s.create_key(&[
        "--tenant",
        "acme",
        "--scope",
        "a",
        "--audience",
        "https://api.example",
    ]);
    assert_eq!(token_request(&s, &key, None).status, 200);
    assert_eq!(
        token_request(&s, &key, Some(r#"{"scope":"zzz"}"#)).status,
        400
    );
    assert_eq!(token_request(&s, "km_sk_live_nope", None).status, 401);
    let m = reply(s.get("/metrics").call());
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    for line in [
        "keymint_tokens_issued_total{type=\"Bearer\"} 1",
        "keymint_tokens_refused_total{reason=\"invalid_scope\"} 1",
        "keymint_tokens_refused_total{reason=\"malformed_key\"} 1",
    ] {
        assert!(m.text.contains(line), "missing {line:?} in\n{}", m.text);
    }
    assert!(
        m.text
            .contains("keymint_http_request_duration_seconds_bucket{route=\"/v1/token\"")
    );
    assert!(!m.text.contains(&key), "a key reached the metrics");
}

#[test]
fn methods_a_client_invents_share_one_metrics_label() {
    let s = Server::start("metrics-methods", &[]);
    for method in ["FOOBAR1", "FOOBAR2", "FOOBAR3"] {
        let r = reply(ureq::request(method, &format!("{}/v1/token", s.url)).call());
        assert_eq!(r.status, 405, "{method}");
    }
    let m = reply(s.get("/metrics").call());
    assert_eq!(m.status, 200);
    // Named as sent, each invented method would be a series for the life of the process.
    assert!(!m.text.contains("FOOBAR"), "{}", m.text);
    let line = "keymint_http_requests_total{route=\"/v1/token\",method=\"other\",status=\"405\"} 3";
    assert!(m.text.contains(line), "missing {line:?} in\n{}", m.text);
}

#[test]
fn sigterm_drains_and_ends_event_streams_cleanly() {
    let mut s = Server::start("sigterm", &[]);
    // An open push stream must not keep the server from stopping.
    let res = ureq::get(&format!("{}/v1/revocations/events", s.url))
        .call()
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut res.into_reader(), &mut sink);
    });
    let status = s.terminate_and_wait(std::time::Duration::from_secs(10));
    assert_eq!(status, Some(0), "did not exit cleanly on SIGTERM");
    reader.join().unwrap();
}

/// Sends `request` on a new connection to `s` and reads until `want` shows (returned with the
/// stream, still open) or the connection ends (what was read, as an error).
fn open_until(s: &Server, request: &str, want: &str) -> Result<std::net::TcpStream, String> {
    use std::io::{Read, Write};
    let addr = s.url.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    // A refused connection may be closed before the request is even written.
    let _ = c.write_all(request.as_bytes());
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return Err(String::from_utf8_lossy(&seen).into_owned()),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        if String::from_utf8_lossy(&seen).contains(want) {
            return Ok(c);
        }
    }
}

/// Without a bound, one client holding a few thousand push streams or idle connections used up
/// the process's open files, and no one else could connect. A client holds at most
/// `--max-connections-per-client` open connections: one more is closed at once, with an audit line
/// naming the client; once one of its connections closes, it may open another.
#[test]
fn a_client_holds_at_most_its_share_of_connections_and_a_refused_one_is_audited() {
    let s = Server::start("conn-cap", &["--max-connections-per-client", "2"]);
    let stream = open_until(
        &s,
        "GET /v1/revocations/events HTTP/1.1\r\nHost: t\r\n\r\n",
        "event: revocations",
    )
    .expect("a push stream");
    // The start-up check's own connection (closed by now) may still count until the server has
    // seen it go: seen under load in the full suite.
    let idle = wait_until(
        "a keep-alive connection",
        std::time::Duration::from_secs(10),
        || open_until(&s, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", "200 OK").ok(),
    );

    let third = open_until(&s, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", "200 OK");
    assert!(third.is_err(), "a third connection was served");
    let line = wait_until(
        "the refusal's audit line",
        std::time::Duration::from_secs(10),
        || {
            s.all_output()
                .lines()
                .find(|l| l.contains("too_many_connections_from_client"))
                .map(str::to_owned)
        },
    );
    assert!(line.contains("client_ip=127.0.0.1"), "{line}");
    assert!(line.contains("action=\"connection\""), "{line}");

    // The idle one closes: its place is free again (once the server has seen it go).
    drop(idle);
    wait_until(
        "a connection in the freed place",
        std::time::Duration::from_secs(10),
        || open_until(&s, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", "200 OK").ok(),
    );
    drop(stream);
}

/// A connection that never sends a byte, one that sends half a request head and one that sends
/// half a request body are closed by the server (30 s after they connected: nothing was answered
/// in that time), so idle or trickling sockets cannot hold the connection limits for good, while a
/// push stream opened at the same time stays open (its keep-alive comments are answers). Waits
/// for the server's close (end of stream), up to 45 s.
#[test]
fn connections_that_send_no_whole_request_are_closed() {
    use std::io::{Read, Write};
    let s = Server::start("idle-close", &[]);
    let addr = s.url.trim_start_matches("http://").to_owned();
    let mut push = open_until(
        &s,
        "GET /v1/revocations/events HTTP/1.1\r\nHost: t\r\n\r\n",
        "event: revocations",
    )
    .unwrap();
    let silent = std::net::TcpStream::connect(&addr).unwrap();
    let mut half_head = std::net::TcpStream::connect(&addr).unwrap();
    half_head
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    // The OAuth2 endpoint reads its body before anything else (the credentials are in it).
    let mut half_body = std::net::TcpStream::connect(&addr).unwrap();
    half_body
        .write_all(
            b"POST /oauth2/token HTTP/1.1\r\nHost: t\r\n\
              Content-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 100\r\n\r\ngrant_type=client_credentials&client_id=",
        )
        .unwrap();
    for (name, mut c) in [
        ("silent", silent),
        ("half a head", half_head),
        ("half a body", half_body),
    ] {
        c.set_read_timeout(Some(std::time::Duration::from_secs(45)))
            .unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            match c.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("{name}: not closed within 45 s ({e})"),
            }
        }
        // Closed, possibly after an error answer: never a token.
        let text = String::from_utf8_lossy(&answer);
        assert!(!text.contains("200 OK"), "{name}: {text}");
    }
    // Over 30 s later the push stream still gets its keep-alive comments (`:` lines).
    push.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 256];
    let n = push.read(&mut buf).expect("the push stream is still open");
    assert!(n > 0, "the push stream was closed");
    // A chunk holding a comment line (`3\r\n:\n\n\r\n`).
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.contains("\r\n:\n"), "{text:?}");
}
