//! The JWT attack catalogue, run against the example API server (`examples/api-server`) over real
//! HTTP on a loopback port (issue #8).
//!
//! Each test serves the api-server's own router, protected by a verifier with a static key set (an
//! Ed25519 key and a P-256 key), a signed revocation list and a clock pinned at [`NOW`], then sends
//! crafted tokens with a plain HTTP/1.1 client and checks the answer: 401 with
//! `WWW-Authenticate: Bearer realm="api", error="invalid_token", error_description="<code>"` (or
//! the DPoP scheme and `invalid_dpop_proof` for proofs, or no `error` at all when no token was
//! presented in the `Authorization` header). Every test also sends a correctly signed control token
//! and expects 200, so a server that refused everything would fail them.
//!
//! The stable `error_description` code is asserted too, so a token is refused for the reason the
//! test is about and not by accident (a test of `alg: none` that only ever met an unknown `kid`
//! would prove nothing).

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use keymint_jwks::jws::encode_segment;
use keymint_jwks::*;
use keymint_verifier::clock::FixedClock;
use keymint_verifier::{Verifier, VerifierBuilder, VerifyError};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------
// The server and a minimal HTTP/1.1 client.

/// A running api-server and what the tests need to attack it.
struct Api {
    addr: SocketAddr,
    verifier: Verifier,
    /// The Ed25519 signing key of the key set (it also signs the revocation list).
    ed: Signer,
    /// The P-256 signing key of the key set.
    es: Signer,
}

/// One HTTP answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    raw: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn api() -> Api {
    api_with(|b| b)
}

/// Serves the api-server router on 127.0.0.1:0, with a verifier built from the published form of
/// the key set (JSON, parsed like any API server would) and the `tweak`s a test needs.
fn api_with(tweak: impl FnOnce(VerifierBuilder) -> VerifierBuilder) -> Api {
    let ed = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let es = Signer::new(SigningKey::generate(Algorithm::Es256).unwrap());
    let published = Jwks::new(vec![ed.key().public_jwk(), es.key().public_jwk()])
        .unwrap()
        .to_json();
    let builder = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
        .jwks(Jwks::from_json(published.as_bytes()).unwrap())
        .clock(Arc::new(FixedClock(NOW)))
        .revocation_list(empty_list(&ed, 1).jws());
    let verifier = tweak(builder).build().unwrap();
    let app = api_server::router(&verifier);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let api = Api {
        addr,
        verifier,
        ed,
        es,
    };
    // The control: both keys' genuine tokens are accepted, so every refusal below is the
    // attack's doing.
    api.assert_accepted(&api.good(), "control token (Ed25519)");
    api.assert_accepted(
        &api.es.sign_access_token(&claims()).unwrap(),
        "control token (ES256)",
    );
    api
}

/// Sends `request` as is and reads the whole answer (`Connection: close`).
fn exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.set_write_timeout(Some(Duration::from_secs(20)))?;
    stream.write_all(request)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let head = raw.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP status line in {raw:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Reply {
        status,
        headers,
        raw,
    })
}

impl Api {
    fn request(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n",
            self.addr
        );
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        req.push_str("\r\n");
        exchange(self.addr, req.as_bytes()).unwrap()
    }

    fn bearer(&self, token: &str) -> Reply {
        self.request(
            "GET",
            "/orders",
            &[("Authorization", &format!("Bearer {token}"))],
        )
    }

    fn dpop(&self, method: &str, token: &str, proof: &str) -> Reply {
        self.request(
            method,
            "/orders",
            &[("Authorization", &format!("DPoP {token}")), ("DPoP", proof)],
        )
    }

    /// The URL a DPoP proof for `/orders` on this server names (`htu`).
    fn orders_url(&self) -> String {
        format!("http://{}/orders", self.addr)
    }

    /// A genuine Ed25519 token with the standard claims.
    fn good(&self) -> String {
        self.ed.sign_access_token(&claims()).unwrap()
    }

    #[track_caller]
    fn assert_accepted(&self, token: &str, what: &str) {
        let reply = self.bearer(token);
        assert_eq!(reply.status, 200, "{what}: {}", reply.raw);
        assert!(
            reply.raw.contains("\"tenant\":\"acme\""),
            "{what}: {}",
            reply.raw
        );
    }

    /// `token` as a bearer token is refused with 401 `invalid_token` for the reason `code`, and the
    /// answer never echoes it.
    #[track_caller]
    fn assert_refused(&self, token: &str, code: &str, what: &str) {
        let reply = self.bearer(token);
        assert_invalid_token(&reply, code, what);
        if token.len() > 16 {
            assert!(
                !reply.raw.contains(token),
                "{what}: the answer echoes the token"
            );
        }
    }
}

#[track_caller]
fn assert_invalid_token(reply: &Reply, code: &str, what: &str) {
    assert_eq!(reply.status, 401, "{what}: {}", reply.raw);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(
            format!("Bearer realm=\"api\", error=\"invalid_token\", error_description=\"{code}\"")
                .as_str()
        ),
        "{what}"
    );
}

#[track_caller]
fn assert_invalid_dpop_proof(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 401, "{what}: {}", reply.raw);
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("DPoP realm=\"api\", error=\"invalid_dpop_proof\""),
        "{what}: {challenge}"
    );
}

// ---------------------------------------------------------------------------------------------
// Crafting tokens.

fn b64(bytes: &[u8]) -> String {
    encode_segment(bytes)
}

fn header_of(signer: &Signer) -> Map<String, Value> {
    let h = json!({"alg": signer.key().algorithm().as_str(), "typ": "at+jwt", "kid": signer.key().kid().as_str()});
    h.as_object().unwrap().clone()
}

fn claims_of(c: &Claims) -> Map<String, Value> {
    serde_json::from_slice(&c.to_json()).unwrap()
}

/// Signs `payload` under a header given as raw JSON text (so that it can say what serde_json
/// would not: duplicate members, escapes).
fn sign_text(signer: &Signer, header: &str, payload: &[u8]) -> String {
    signer
        .sign_compact(&b64(header.as_bytes()), payload)
        .unwrap()
}

fn sign(signer: &Signer, header: &Map<String, Value>, claims: &Map<String, Value>) -> String {
    sign_text(
        signer,
        &Value::Object(header.clone()).to_string(),
        Value::Object(claims.clone()).to_string().as_bytes(),
    )
}

/// A token from `signer` with its header edited.
fn with_header(signer: &Signer, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut h = header_of(signer);
    edit(&mut h);
    sign(signer, &h, &claims_of(&claims()))
}

/// A token from `signer` with its claims edited.
fn with_claims(signer: &Signer, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut c = claims_of(&claims());
    edit(&mut c);
    sign(signer, &header_of(signer), &c)
}

fn segments(token: &str) -> (String, String, String) {
    let mut it = token.split('.').map(str::to_owned);
    (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
}

fn signature_bytes(token: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segments(token).2)
        .unwrap()
}

fn with_signature(token: &str, signature: &[u8]) -> String {
    let (h, p, _) = segments(token);
    format!("{h}.{p}.{}", b64(signature))
}

// ---------------------------------------------------------------------------------------------
// alg: none and algorithm confusion.

#[test]
fn alg_none_in_any_case_is_refused_with_or_without_a_signature() {
    let api = api();
    let (_, payload, _) = segments(&api.good());
    for alg in ["none", "None", "NONE", "nOnE"] {
        // With a genuine Ed25519 signature over the very input.
        let signed = with_header(&api.ed, |h| {
            h.insert("alg".into(), alg.into());
        });
        api.assert_refused(&signed, "unsupported_alg", &format!("alg {alg}, signed"));
        // Unsecured JWS (RFC 7515 §A.5): empty signature, with and without a kid.
        let h = b64(
            json!({"alg": alg, "typ": "at+jwt", "kid": api.ed.key().kid().as_str()})
                .to_string()
                .as_bytes(),
        );
        api.assert_refused(
            &format!("{h}.{payload}."),
            "unsupported_alg",
            &format!("alg {alg}, empty signature"),
        );
        let h = b64(json!({"alg": alg, "typ": "at+jwt"}).to_string().as_bytes());
        api.assert_refused(
            &format!("{h}.{payload}."),
            "missing_kid",
            &format!("alg {alg}, no kid, empty signature"),
        );
        // Without the final dot at all.
        api.assert_refused(
            &format!("{h}.{payload}"),
            "malformed",
            &format!("alg {alg}, two segments"),
        );
    }
    // Missing alg, and alg of the wrong JSON type.
    api.assert_refused(
        &with_header(&api.ed, |h| {
            h.remove("alg");
        }),
        "malformed",
        "no alg",
    );
    for alg in [
        Value::Null,
        json!(0),
        json!(["EdDSA"]),
        json!({"EdDSA": true}),
    ] {
        api.assert_refused(
            &with_header(&api.ed, |h| {
                h.insert("alg".into(), alg.clone());
            }),
            "malformed",
            &format!("alg {alg}"),
        );
    }
}

#[test]
fn hmac_signed_with_the_public_key_as_the_secret_is_refused() {
    let api = api();
    let (_, payload, _) = segments(&api.good());
    for signer in [&api.ed, &api.es] {
        let kid = signer.key().kid().as_str();
        let jwk = signer.key().public_jwk().to_json_value().to_string();
        let point = signer.key().public_key().as_bytes().to_vec();
        let x_b64 = signer.key().public_jwk().to_json_value()["x"]
            .as_str()
            .unwrap()
            .to_owned();
        let jwks = Jwks::new(vec![signer.key().public_jwk()])
            .unwrap()
            .to_json();
        let secrets: [(&str, Vec<u8>); 5] = [
            ("raw public key bytes", point),
            ("JWK JSON", jwk.clone().into_bytes()),
            ("JWK JSON, pretty", {
                let v: Value = serde_json::from_str(&jwk).unwrap();
                serde_json::to_vec_pretty(&v).unwrap()
            }),
            ("JWKS JSON", jwks.into_bytes()),
            ("the x member as text", x_b64.into_bytes()),
        ];
        for (alg, hmac) in [
            ("HS256", ring::hmac::HMAC_SHA256),
            ("HS384", ring::hmac::HMAC_SHA384),
            ("HS512", ring::hmac::HMAC_SHA512),
        ] {
            for (what, secret) in &secrets {
                let h = b64(json!({"alg": alg, "typ": "at+jwt", "kid": kid})
                    .to_string()
                    .as_bytes());
                let input = format!("{h}.{payload}");
                let tag = ring::hmac::sign(&ring::hmac::Key::new(hmac, secret), input.as_bytes());
                api.assert_refused(
                    &format!("{input}.{}", b64(tag.as_ref())),
                    "unsupported_alg",
                    &format!(
                        "{alg} keyed with the {} key's {what}",
                        signer.key().algorithm()
                    ),
                );
            }
        }
    }
}

#[test]
fn the_key_pins_the_algorithm_and_only_its_exact_names_pass() {
    let api = api();
    let ed_kid = api.ed.key().kid().as_str().to_owned();
    let es_kid = api.es.key().kid().as_str().to_owned();
    // An EdDSA token (signed by the Ed25519 key) naming the P-256 key, and the reverse.
    api.assert_refused(
        &with_header(&api.ed, |h| {
            h.insert("kid".into(), es_kid.clone().into());
        }),
        "alg_mismatch",
        "EdDSA token under the ES256 key's kid",
    );
    api.assert_refused(
        &with_header(&api.es, |h| {
            h.insert("kid".into(), ed_kid.clone().into());
        }),
        "alg_mismatch",
        "ES256 token under the Ed25519 key's kid",
    );
    // Each key's header claiming the other's algorithm, signed by the right key.
    api.assert_refused(
        &with_header(&api.ed, |h| {
            h.insert("alg".into(), "ES256".into());
        }),
        "alg_mismatch",
        "alg ES256 on the Ed25519 key",
    );
    api.assert_refused(
        &with_header(&api.es, |h| {
            h.insert("alg".into(), "EdDSA".into());
        }),
        "alg_mismatch",
        "alg EdDSA on the P-256 key",
    );
    // The fully specified `Ed25519` (RFC 9864) is the Ed25519 key's alone.
    api.assert_accepted(
        &with_header(&api.ed, |h| {
            h.insert("alg".into(), "Ed25519".into());
        }),
        "alg Ed25519 on the Ed25519 key",
    );
    api.assert_refused(
        &with_header(&api.es, |h| {
            h.insert("alg".into(), "Ed25519".into());
        }),
        "alg_mismatch",
        "alg Ed25519 on the P-256 key",
    );
    // Names are compared exactly: other spellings and other algorithms are not accepted.
    for (signer, alg) in [
        (&api.ed, "eddsa"),
        (&api.ed, "EDDSA"),
        (&api.ed, "ed25519"),
        (&api.ed, "EdDSA "),
        (&api.ed, "Ed448"),
        (&api.es, "es256"),
        (&api.es, "ES256K"),
        (&api.es, "ES384"),
        (&api.es, "ESP256"),
        (&api.es, "RS256"),
        (&api.es, "PS256"),
        (&api.es, ""),
    ] {
        api.assert_refused(
            &with_header(signer, |h| {
                h.insert("alg".into(), alg.into());
            }),
            "unsupported_alg",
            &format!("alg {alg:?}"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Header members that point at keys, kid injection, crit.

#[test]
fn embedded_and_remote_key_headers_are_refused_and_never_fetched() {
    // A listener standing in for the attacker's key server: it must never see a connection.
    let attacker_server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    attacker_server.set_nonblocking(true).unwrap();
    let url = format!("http://{}", attacker_server.local_addr().unwrap());
    let api = api();
    let attacker = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let attacker_p256 = Signer::new(SigningKey::generate(Algorithm::Es256).unwrap());
    let legit_kid = api.ed.key().kid().as_str().to_owned();
    let attacker_der = base64::engine::general_purpose::STANDARD.encode(b"0\x82\x01\x00 fake cert");
    for (member, value) in [
        ("jwk", attacker.key().public_jwk().to_json_value()),
        ("jku", json!(format!("{url}/jwks.json"))),
        ("x5u", json!(format!("{url}/cert.pem"))),
        ("x5c", json!([attacker_der])),
    ] {
        for signer in [&attacker, &attacker_p256] {
            for kid in [
                Some(signer.key().kid().as_str().to_owned()),
                Some(legit_kid.clone()),
                None,
            ] {
                let token = with_header(signer, |h| {
                    h.insert(member.into(), value.clone());
                    match &kid {
                        Some(k) => h.insert("kid".into(), k.clone().into()),
                        None => h.remove("kid"),
                    };
                });
                api.assert_refused(
                    &token,
                    "forbidden_header",
                    &format!("{member} header, signed by the attacker, kid {kid:?}"),
                );
            }
        }
        // Even on a token the genuine key signed: the member alone is enough to refuse.
        let token = with_header(&api.ed, |h| {
            h.insert(member.into(), value.clone());
        });
        api.assert_refused(
            &token,
            "forbidden_header",
            &format!("{member} on a genuine token"),
        );
    }
    // All four at once, and the jwk of the genuine key itself.
    api.assert_refused(
        &with_header(&api.ed, |h| {
            h.insert("jwk".into(), api.ed.key().public_jwk().to_json_value());
        }),
        "forbidden_header",
        "the genuine key embedded",
    );
    std::thread::sleep(Duration::from_millis(300));
    match attacker_server.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the attacker's key server was contacted: {other:?}"),
    }
}

#[test]
fn kid_injection_finds_no_key() {
    let api = api();
    let ed_kid = api.ed.key().kid().as_str().to_owned();
    for (kid, code) in [
        ("../../etc/passwd".to_owned(), "unknown_kid"),
        ("../../../../../../dev/zero".to_owned(), "unknown_kid"),
        ("file:///etc/passwd".to_owned(), "unknown_kid"),
        ("' OR 1=1 --".to_owned(), "unknown_kid"),
        ("\" OR \"\"=\"".to_owned(), "unknown_kid"),
        ("x'; DROP TABLE keys; --".to_owned(), "unknown_kid"),
        (String::new(), "unknown_kid"),
        ("\0".to_owned(), "unknown_kid"),
        (format!("{ed_kid}\0"), "unknown_kid"),
        (format!("\0{ed_kid}"), "unknown_kid"),
        (format!("{ed_kid} "), "unknown_kid"),
        (ed_kid.to_ascii_uppercase(), "unknown_kid"),
        (format!("{ed_kid}/../{ed_kid}"), "unknown_kid"),
        ("%00".to_owned(), "unknown_kid"),
        ("k".repeat(5_000), "unknown_kid"),
        // 10 kB: the token is over the 8 KiB limit and refused before its header is read.
        ("k".repeat(10_000), "oversize"),
    ] {
        let token = with_header(&api.ed, |h| {
            h.insert("kid".into(), kid.clone().into());
        });
        let shown: String = kid.chars().take(40).collect();
        api.assert_refused(&token, code, &format!("kid {shown:?}"));
    }
    // A kid that is not a string, and no kid.
    for kid in [
        Value::Null,
        json!(1),
        json!([ed_kid]),
        json!({"kid": ed_kid}),
    ] {
        api.assert_refused(
            &with_header(&api.ed, |h| {
                h.insert("kid".into(), kid.clone());
            }),
            "malformed",
            &format!("kid {kid}"),
        );
    }
    api.assert_refused(
        &with_header(&api.ed, |h| {
            h.remove("kid");
        }),
        "missing_kid",
        "no kid",
    );
}

#[test]
fn unknown_critical_header_extensions_are_refused() {
    let api = api();
    for (crit, extra) in [
        (json!(["exp"]), Some(("exp", json!(1)))),
        // RFC 7797: an unencoded payload would change what the signature covers.
        (json!(["b64"]), Some(("b64", json!(false)))),
        (
            json!(["urn:example:unknown"]),
            Some(("urn:example:unknown", json!(1))),
        ),
        (json!(["missing-member"]), None),
        (json!([]), None),
        (json!("b64"), None),
        (Value::Null, None),
    ] {
        let token = with_header(&api.ed, |h| {
            h.insert("crit".into(), crit.clone());
            if let Some((name, value)) = &extra {
                h.insert((*name).into(), value.clone());
            }
        });
        api.assert_refused(&token, "unknown_crit", &format!("crit {crit}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Parser differentials and resource exhaustion.

#[test]
fn duplicate_json_members_are_refused_in_header_and_payload() {
    let api = api();
    let kid = api.ed.key().kid().as_str().to_owned();
    let payload = claims().to_json();
    for header in [
        format!(r#"{{"alg":"EdDSA","alg":"none","typ":"at+jwt","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"none","alg":"EdDSA","typ":"at+jwt","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","kid":"other"}}"#),
        format!(r#"{{"alg":"EdDSA","typ":"JWT","typ":"at+jwt","kid":"{kid}"}}"#),
        // The same name spelled with an escape.
        format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","a\u006cg":"none"}}"#),
        // Inside an ignored member, too.
        format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","x":{{"a":1,"a":2}}}}"#),
        format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","crit":[],"crit":[]}}"#),
    ] {
        api.assert_refused(
            &sign_text(&api.ed, &header, &payload),
            "duplicate_member",
            &format!("header {header}"),
        );
    }
    // The payload: signed by the genuine key, as an issuer bug or a parser differential would
    // produce it. Both orders, since parsers disagree on which duplicate wins.
    let text = String::from_utf8(payload.clone()).unwrap();
    let body = text.strip_prefix('{').unwrap().strip_suffix('}').unwrap();
    let header = Value::Object(header_of(&api.ed)).to_string();
    for dup in [
        r#""aud":"https://evil.example""#.to_owned(),
        format!(r#""aud":["{AUD}","https://evil.example"]"#),
        r#""exp":4102444800"#.to_owned(),
        r#""iss":"https://evil.example""#.to_owned(),
        r#""sub":"someone-else""#.to_owned(),
        r#""tenant":"evil""#.to_owned(),
        r#""scope":"orders:read orders:write orders:admin""#.to_owned(),
        r#""jti":"another""#.to_owned(),
        r#""t\u0065nant":"evil""#.to_owned(),
    ] {
        for doc in [format!("{{{dup},{body}}}"), format!("{{{body},{dup}}}")] {
            api.assert_refused(
                &sign_text(&api.ed, &header, doc.as_bytes()),
                "duplicate_member",
                &format!("payload {doc}"),
            );
        }
    }
    for nested in [
        r#""cnf":{"jkt":"a","jkt":"b"}"#,
        r#""ext":[{"a":1},{"b":1,"b":2}]"#,
    ] {
        let doc = format!("{{{body},{nested}}}");
        api.assert_refused(
            &sign_text(&api.ed, &header, doc.as_bytes()),
            "duplicate_member",
            &format!("payload {doc}"),
        );
    }
}

#[test]
fn oversized_tokens_are_refused_before_parsing() {
    let api = api();
    let (h, p, s) = segments(&api.good());
    // 64 kB: valid base64url, garbage, and a genuine token padded with a huge header member.
    let valid_alphabet = "A".repeat(64 * 1024);
    let garbage = "!\"#$%&'()*".repeat(6554);
    let padded = with_header(&api.ed, |hd| {
        hd.insert("pad".into(), "x".repeat(48 * 1024).into());
    });
    let long_signature = format!("{h}.{p}.{s}{}", "A".repeat(64 * 1024));
    for (what, token) in [
        ("64 kB of base64url", valid_alphabet),
        ("64 kB that is not base64url", garbage),
        (
            "a genuinely signed token with a 48 kB header member",
            padded,
        ),
        ("a genuine token with a 64 kB signature", long_signature),
    ] {
        assert!(token.len() > 8 * 1024);
        // "oversize", not "malformed": nothing was decoded or scanned.
        api.assert_refused(&token, "oversize", what);
    }
}

#[test]
fn a_huge_http_header_is_refused_by_the_server_which_stays_up() {
    let api = api();
    // 1 MiB in one header: hyper's request-head limit (about 400 kB) answers 431, or resets the
    // connection if it closes before reading all we sent. Either way nothing reaches a handler.
    let request = format!(
        "GET /orders HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {}\r\nX-Pad: {}\r\n\r\n",
        api.addr,
        api.good(),
        "p".repeat(1024 * 1024)
    );
    match exchange(api.addr, request.as_bytes()) {
        Ok(reply) => assert_eq!(reply.status, 431, "{}", reply.raw),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionAborted
            ),
            "{e:?}"
        ),
    }
    // A 64 kB Authorization header gets through HTTP and is the verifier's to refuse.
    api.assert_refused(&"A".repeat(64 * 1024), "oversize", "64 kB bearer token");
    // Still serving.
    api.assert_accepted(&api.good(), "after the huge header");
}

#[test]
fn deeply_nested_json_is_refused_without_exhausting_the_stack() {
    fn nested(depth: usize) -> Value {
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
    let deep = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    // Under the default 8 KiB limit, 10,000 nested arrays never reach a parser.
    let api = api();
    let header = Value::Object(header_of(&api.ed)).to_string();
    let body = String::from_utf8(claims().to_json()).unwrap();
    let body = body.strip_suffix('}').unwrap();
    let in_payload = |depth: usize| format!("{body},\"x\":{}}}", deep(depth));
    let in_header = |signer: &Signer, depth: usize| {
        let h = Value::Object(header_of(signer)).to_string();
        format!("{},\"x\":{}}}", h.strip_suffix('}').unwrap(), deep(depth))
    };
    api.assert_refused(
        &sign_text(&api.ed, &header, in_payload(10_000).as_bytes()),
        "oversize",
        "10,000 nested arrays in a claim",
    );
    // With the limit raised far enough for them, the JSON depth limit refuses them: an error,
    // not a stack overflow. In the header (read before the signature) and in a genuinely signed
    // payload.
    let api = api_with(|b| b.max_token_len(256 * 1024));
    let header = Value::Object(header_of(&api.ed)).to_string();
    for depth in [200, 10_000, 50_000] {
        api.assert_refused(
            &sign_text(&api.ed, &header, in_payload(depth).as_bytes()),
            "malformed",
            &format!("{depth} nested arrays in a claim"),
        );
        api.assert_refused(
            &sign_text(&api.ed, &in_header(&api.ed, depth), &claims().to_json()),
            "malformed",
            &format!("{depth} nested arrays in the header"),
        );
    }
    // Nesting that any JSON reader handles is just an ignored claim.
    let mut c = claims_of(&claims());
    c.insert("x".into(), nested(20));
    api.assert_accepted(&sign(&api.ed, &header_of(&api.ed), &c), "20 nested arrays");
}

#[test]
fn non_canonical_base64url_is_refused() {
    let api = api();
    // A genuine token whose payload and signature use `-` or `_`, so that their standard-alphabet
    // twins differ from them (a lenient decoder would read both the same). Three `~` in a row
    // encode as `fn5-`, and one signature in sixteen has neither character.
    let token = (0..100)
        .map(|i| {
            with_claims(&api.ed, |c| {
                c.insert("jti".into(), format!("jti-{i}").into());
                c.insert("x".into(), "~~~~~~~~~".into());
            })
        })
        .find(|t| {
            let (_, p, s) = segments(t);
            p.contains('-') && (s.contains('-') || s.contains('_'))
        })
        .unwrap();
    api.assert_accepted(&token, "the chosen token");
    let (h, p, s) = segments(&token);
    let standard = |seg: &str| seg.replace('-', "+").replace('_', "/");
    let padded = |seg: &str| format!("{seg}{}", "=".repeat(((4 - seg.len() % 4) % 4).max(1)));
    // The signature's last character carries 2 bits and 4 zero bits: flipping a zero bit gives
    // the same bytes to a decoder that ignores trailing bits.
    let mut non_canonical_sig = s.clone().into_bytes();
    let last = non_canonical_sig.pop().unwrap();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let value = alphabet.iter().position(|&c| c == last).unwrap();
    assert_eq!(
        value & 0b1111,
        0,
        "a canonical 64-byte signature ends in A, Q, g or w"
    );
    non_canonical_sig.push(alphabet[value | 1]);
    let non_canonical_sig = String::from_utf8(non_canonical_sig).unwrap();
    for (what, forged) in [
        ("padding on the header", format!("{}.{p}.{s}", padded(&h))),
        ("padding on the payload", format!("{h}.{}.{s}", padded(&p))),
        (
            "padding on the signature",
            format!("{h}.{p}.{}", padded(&s)),
        ),
        (
            "standard alphabet in the payload",
            format!("{h}.{}.{s}", standard(&p)),
        ),
        (
            "standard alphabet in the signature",
            format!("{h}.{p}.{}", standard(&s)),
        ),
        (
            "a space inside the payload",
            format!("{h}.{} {}.{s}", &p[..10], &p[10..]),
        ),
        (
            "a tab inside the signature",
            format!("{h}.{p}.{}\t{}", &s[..10], &s[10..]),
        ),
        ("a percent-encoded dot", format!("{h}%2E{p}.{s}")),
        (
            "non-canonical trailing bits in the signature",
            format!("{h}.{p}.{non_canonical_sig}"),
        ),
        (
            "a signature one character short",
            format!("{h}.{p}.{}", &s[..85]),
        ),
        ("a signature one character long", format!("{h}.{p}.{s}A")),
        ("an empty header", format!(".{p}.{s}")),
        ("an empty payload", format!("{h}..{s}")),
        ("a header with one more character", format!("{h}A.{p}.{s}")),
        ("four segments", format!("{h}.{p}.{s}.{s}")),
    ] {
        // The signature covers the encoded text, so an edit after the header that still decodes
        // is a bad signature; anything that does not decode is malformed.
        let code = match what {
            "a signature one character short"
            | "a signature one character long"
            | "an empty payload" => "bad_signature",
            _ => "malformed",
        };
        api.assert_refused(&forged, code, what);
    }
    // The payload is decoded after the signature check, so test its strictness on a payload
    // segment the genuine key signed with non-canonical trailing bits.
    let header = b64(Value::Object(header_of(&api.ed)).to_string().as_bytes());
    let canonical = (0..)
        .map(|i| {
            let mut c = claims();
            c.jti = Jti::new(format!("pad-{i}")).unwrap();
            b64(&c.to_json())
        })
        .find(|seg| seg.len() % 4 != 0)
        .unwrap();
    let mut bytes = canonical.into_bytes();
    let last = bytes.pop().unwrap();
    let value = alphabet.iter().position(|&c| c == last).unwrap();
    bytes.push(alphabet[value | 1]);
    let input = format!("{header}.{}", String::from_utf8(bytes).unwrap());
    let signature = api.ed.key().sign(input.as_bytes()).unwrap();
    api.assert_refused(
        &format!("{input}.{}", b64(&signature)),
        "malformed",
        "a genuinely signed payload with non-canonical trailing bits",
    );
}

#[test]
fn a_stripped_or_truncated_signature_is_refused() {
    let api = api();
    for signer in [&api.ed, &api.es] {
        let token = signer.sign_access_token(&claims()).unwrap();
        let (h, p, s) = segments(&token);
        api.assert_refused(&format!("{h}.{p}."), "bad_signature", "header.payload.");
        api.assert_refused(&format!("{h}.{p}"), "malformed", "header.payload");
        api.assert_refused(
            &format!("{h}.{p}.{}", &s[..43]),
            "bad_signature",
            "half a signature",
        );
        api.assert_refused(
            &format!("{h}.{p}.{}", b64(&[0; 64])),
            "bad_signature",
            "zeros",
        );
        api.assert_refused(
            &format!("{h}.{p}.{}", b64(&[0xff; 64])),
            "bad_signature",
            "all ones",
        );
        // Another genuine token's signature.
        let mut c = claims();
        c.jti = Jti::new("another").unwrap();
        let (_, _, other) = segments(&signer.sign_access_token(&c).unwrap());
        api.assert_refused(
            &format!("{h}.{p}.{other}"),
            "bad_signature",
            "another signature",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Signature edge cases: ECDSA and Ed25519.

/// P-256's group order n, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// Ed25519's group order L, little-endian.
const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

/// `a - b` on 32-byte big-endian numbers, `a >= b`.
fn sub_be(a: &[u8], b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    assert_eq!(borrow, 0);
    out
}

/// `a + b` on 32-byte big-endian numbers (the caller checks the carry).
fn add_be(a: &[u8], b: &[u8]) -> ([u8; 32], bool) {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let s = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = s as u8;
        carry = s >> 8;
    }
    (out, carry != 0)
}

#[test]
fn ecdsa_signatures_out_of_range_or_in_der_form_are_refused() {
    let api = api();
    let token = api.es.sign_access_token(&claims()).unwrap();
    let sig = signature_bytes(&token);
    let (r, s) = sig.split_at(32);
    let join = |r: &[u8], s: &[u8]| [r, s].concat();
    let one = {
        let mut b = [0u8; 32];
        b[31] = 1;
        b
    };
    let n_plus_one = add_be(&P256_N, &one).0;
    let (r_plus_n, r_overflows) = add_be(r, &P256_N);
    let (s_plus_n, s_overflows) = add_be(s, &P256_N);
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("r = 0", join(&[0; 32], s)),
        ("s = 0", join(r, &[0; 32])),
        ("r = s = 0", vec![0; 64]),
        ("r = n", join(&P256_N, s)),
        ("s = n", join(r, &P256_N)),
        ("r = s = n", join(&P256_N, &P256_N)),
        ("r = n + 1", join(&n_plus_one, s)),
        ("s = n + 1", join(r, &n_plus_one)),
        ("r = 2^256 - 1", join(&[0xff; 32], s)),
        ("s = 2^256 - 1", join(r, &[0xff; 32])),
        ("r = 1, s = 1", join(&one, &one)),
        ("r and s swapped", join(s, r)),
    ];
    // r + n and s + n name the same residues; only when they fit in 32 bytes.
    if !r_overflows {
        cases.push(("r + n", join(&r_plus_n, s)));
    }
    if !s_overflows {
        cases.push(("s + n", join(r, &s_plus_n)));
    }
    for (what, forged) in &cases {
        api.assert_refused(&with_signature(&token, forged), "bad_signature", what);
    }
    // The same key's signature in ASN.1 DER form (as OpenSSL and JCA produce it), and raw
    // signatures of the wrong length.
    let (h, p, _) = segments(&token);
    let input = format!("{h}.{p}");
    let der_key = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        api.es.key().pkcs8_der(),
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    let der = der_key
        .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
        .unwrap();
    assert!(der.as_ref().len() > 64 && der.as_ref()[0] == 0x30);
    api.assert_refused(
        &with_signature(&token, der.as_ref()),
        "bad_signature",
        "DER signature",
    );
    let mut der_truncated = der.as_ref().to_vec();
    der_truncated.truncate(64);
    api.assert_refused(
        &with_signature(&token, &der_truncated),
        "bad_signature",
        "DER signature cut to 64 bytes",
    );
    api.assert_refused(
        &with_signature(&token, &sig[..63]),
        "bad_signature",
        "63 bytes",
    );
    api.assert_refused(
        &with_signature(&token, &[sig.as_slice(), &[0]].concat()),
        "bad_signature",
        "65 bytes",
    );
    api.assert_refused(
        &with_signature(&token, &[&[0u8][..], sig.as_slice()].concat()),
        "bad_signature",
        "leading zero byte",
    );
}

/// ECDSA is malleable: `(r, n - s)` verifies wherever `(r, s)` does. JOSE (RFC 7518 §3.4) does not
/// ask for low-s, and ring signs with either half, so the verifier accepts both, as every JOSE
/// verifier does. What this test pins down is that the twin is not a different token to keymint:
/// it carries the same claims, and revocation, which is keyed by `jti`, `sub`, `tenant` and `kid`
/// (never by the token's bytes), refuses it together with the original.
#[test]
fn an_ecdsa_high_s_twin_verifies_but_is_revoked_with_its_original() {
    let api = api();
    let token = api.es.sign_access_token(&claims()).unwrap();
    let sig = signature_bytes(&token);
    let (r, s) = sig.split_at(32);
    let twin = with_signature(&token, &[r, &sub_be(&P256_N, s)[..]].concat());
    assert_ne!(twin, token);
    api.assert_accepted(&token, "the original");
    api.assert_accepted(&twin, "its (r, n - s) twin");
    let list = api
        .ed
        .sign_revocation_list(&RevocationList {
            v: 1,
            iss: Issuer::new(ISS).unwrap(),
            serial: 2,
            iat: NOW,
            exp: UnixTime(NOW.0 + 86_400),
            entries: vec![RevocationEntry {
                target: RevocationTarget::Jti(claims().jti),
                revoked_at: NOW,
                drop_after: UnixTime(NOW.0 + 3_600),
            }],
        })
        .unwrap();
    api.verifier.update_revocations_at(list.jws(), NOW).unwrap();
    api.assert_refused(&token, "revoked", "the original, revoked by jti");
    api.assert_refused(&twin, "revoked", "its twin, revoked by the same jti");
}

/// The encodings of the eight points of small order on edwards25519 (canonical), plus their
/// non-canonical encodings (`y` >= p, or the sign bit set on `x = 0`).
fn small_order_ed25519_encodings() -> Vec<[u8; 32]> {
    let mut y_values: Vec<[u8; 32]> = vec![
        // y = 0 (order 4), y = 1 (the identity), y = p - 1 (order 2).
        [0; 32],
        {
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        },
        {
            let mut b = [0xff; 32];
            b[0] = 0xec;
            b[31] = 0x7f;
            b
        },
        // The two y of the points of order 8.
        [
            0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef,
            0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88,
            0x6d, 0x53, 0xfc, 0x05,
        ],
        [
            0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10,
            0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77,
            0x92, 0xac, 0x03, 0x7a,
        ],
    ];
    // y = p (≡ 0) and y = p + 1 (≡ 1): non-canonical.
    for low in [0xed, 0xee] {
        let mut b = [0xff; 32];
        b[0] = low;
        b[31] = 0x7f;
        y_values.push(b);
    }
    // Each with the sign bit clear and set.
    y_values
        .iter()
        .flat_map(|y| {
            let mut neg = *y;
            neg[31] |= 0x80;
            [*y, neg]
        })
        .collect()
}

#[test]
fn ed25519_non_canonical_s_and_small_order_r_are_refused() {
    let api = api();
    let token = api.good();
    let sig = signature_bytes(&token);
    let (r, s) = sig.split_at(32);
    // S + L: the same scalar mod L, non-canonical (RFC 8032 §5.1.7 requires S < L).
    let mut s_plus_l = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(s[i]) + u16::from(ED25519_L[i]) + carry;
        s_plus_l[i] = v as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0, "S + L fits in 32 bytes since S < L < 2^253");
    api.assert_refused(
        &with_signature(&token, &[r, &s_plus_l[..]].concat()),
        "bad_signature",
        "S + L",
    );
    api.assert_refused(
        &with_signature(&token, &[r, &ED25519_L[..]].concat()),
        "bad_signature",
        "S = L",
    );
    api.assert_refused(
        &with_signature(&token, &[r, &[0xff; 32][..]].concat()),
        "bad_signature",
        "S = 2^256 - 1",
    );
    // R replaced by a point of small order (canonically encoded or not), with the genuine S and
    // with S = 0.
    for point in small_order_ed25519_encodings() {
        for s in [s, &[0u8; 32][..]] {
            api.assert_refused(
                &with_signature(&token, &[&point[..], s].concat()),
                "bad_signature",
                &format!("small-order R {}", b64(&point)),
            );
        }
    }
    // R with its sign bit flipped (a different point, or a non-canonical encoding).
    let mut flipped = r.to_vec();
    flipped[31] ^= 0x80;
    api.assert_refused(
        &with_signature(&token, &[&flipped[..], s].concat()),
        "bad_signature",
        "R with the sign bit flipped",
    );
}

/// A small-order Ed25519 public key verifies forged signatures: with the identity as the key,
/// `R = identity, S = 0` passes for every message. No such key may enter a key set, or be the key
/// of a DPoP proof.
#[test]
fn small_order_ed25519_keys_are_refused_at_jwk_parse_time() {
    for point in small_order_ed25519_encodings() {
        let x = b64(&point);
        let jwk = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}"}}"#);
        assert_eq!(
            Jwk::from_json(jwk.as_bytes()),
            Err(JwkError::SmallOrderPoint),
            "{x}"
        );
        let set = format!(r#"{{"keys":[{jwk}]}}"#);
        assert!(
            matches!(
                Jwks::from_json(set.as_bytes()),
                Err(JwksError::Key {
                    index: 0,
                    error: JwkError::SmallOrderPoint
                })
            ),
            "{x}"
        );
        // A verifier configured from such a published key set does not start.
        let dir = std::env::temp_dir().join(format!(
            "keymint-attack-{}-{}",
            std::process::id(),
            x.replace('-', "m")
        ));
        std::fs::write(&dir, &set).unwrap();
        let built = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
            .jwks_file(&dir)
            .build();
        std::fs::remove_file(&dir).unwrap();
        assert!(built.is_err(), "{x}");
    }
}

/// A token bound (`cnf.jkt`) to the identity point, presented with a "proof" whose signature is
/// `R = identity, S = 0`: without the small-order check that proof verifies, for any request.
/// The issuer cannot tell a small-order key from its thumbprint (a client asks for `dpop_jkt`),
/// so the verifier must refuse the proof's key itself.
#[test]
fn a_dpop_proof_under_a_small_order_key_is_refused() {
    let api = api();
    let identity = small_order_ed25519_encodings()[2];
    assert_eq!(identity[0], 1);
    let x = b64(&identity);
    let jkt = thumbprint(&[("crv", "Ed25519"), ("kty", "OKP"), ("x", &x)]);
    let mut c = claims();
    c.cnf = Some(Confirmation {
        jkt: jkt.to_string(),
    });
    let token = api.ed.sign_access_token(&c).unwrap();
    let proof_header =
        json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": x}});
    let proof_claims = json!({
        "jti": "small-order", "htm": "GET", "htu": api.orders_url(), "iat": NOW.0,
        "ath": dpop::access_token_hash(&token),
    });
    let mut forged_signature = [0u8; 64];
    forged_signature[0] = 1;
    let proof = format!(
        "{}.{}.{}",
        b64(proof_header.to_string().as_bytes()),
        b64(proof_claims.to_string().as_bytes()),
        b64(&forged_signature)
    );
    assert_invalid_dpop_proof(&api.dpop("GET", &token, &proof), "a small-order DPoP key");
}

// ---------------------------------------------------------------------------------------------
// Claims.

#[test]
fn expired_not_yet_valid_and_future_tokens_are_refused_beyond_the_leeway() {
    let api = api();
    let leeway = 60;
    let at = |edit: &dyn Fn(&mut Claims)| {
        let mut c = claims();
        edit(&mut c);
        api.ed.sign_access_token(&c).unwrap()
    };
    for (what, token, code) in [
        (
            "expired long ago",
            at(&|c| c.exp = UnixTime(NOW.0 - 3_600)),
            "expired",
        ),
        (
            "exp + leeway = now",
            at(&|c| c.exp = UnixTime(NOW.0 - leeway)),
            "expired",
        ),
        ("exp = 0", at(&|c| c.exp = UnixTime(0)), "expired"),
        (
            "nbf beyond the leeway",
            at(&|c| c.nbf = Some(UnixTime(NOW.0 + leeway + 1))),
            "not_yet_valid",
        ),
        (
            "nbf far ahead",
            at(&|c| c.nbf = Some(UnixTime(u64::MAX))),
            "not_yet_valid",
        ),
        (
            "iat beyond the leeway",
            at(&|c| {
                c.iat = UnixTime(NOW.0 + leeway + 1);
                c.nbf = None;
            }),
            "iat_in_future",
        ),
        (
            "iat far ahead",
            at(&|c| {
                c.iat = UnixTime(u64::MAX);
                c.nbf = None;
            }),
            "iat_in_future",
        ),
    ] {
        api.assert_refused(&token, code, what);
    }
    // Within the leeway they are accepted: the leeway is what it says, not more.
    api.assert_accepted(
        &at(&|c| c.exp = UnixTime(NOW.0 - leeway + 1)),
        "exp within the leeway",
    );
    api.assert_accepted(
        &at(&|c| c.nbf = Some(UnixTime(NOW.0 + leeway))),
        "nbf within the leeway",
    );
    // Times of the wrong JSON type.
    for (claim, value) in [
        ("exp", json!("1800000600")),
        ("exp", json!(1.8e9)),
        ("exp", json!(-1)),
        ("exp", Value::Null),
        ("nbf", json!("0")),
        ("iat", json!(true)),
    ] {
        api.assert_refused(
            &with_claims(&api.ed, |c| {
                c.insert(claim.into(), value.clone());
            }),
            "malformed",
            &format!("{claim}: {value}"),
        );
    }
}

#[test]
fn each_required_claim_missing_is_refused_by_name() {
    let api = api();
    for claim in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "jti",
        "client_id",
        "scope",
        "tenant",
    ] {
        let token = with_claims(&api.ed, |c| {
            c.remove(claim);
        });
        api.assert_refused(&token, "missing_claim", &format!("without {claim}"));
        assert_eq!(
            api.verifier.verify_at(&token, NOW).unwrap_err(),
            VerifyError::MissingClaim(claim),
            "the error names {claim}"
        );
        // Null is not a value either.
        let token = with_claims(&api.ed, |c| {
            c.insert(claim.into(), Value::Null);
        });
        api.assert_refused(&token, "malformed", &format!("{claim}: null"));
    }
    // nbf is optional.
    api.assert_accepted(
        &with_claims(&api.ed, |c| {
            c.remove("nbf");
        }),
        "without nbf",
    );
    // An empty object and an empty string for claims that are identifiers.
    api.assert_refused(
        &sign(&api.ed, &header_of(&api.ed), &Map::new()),
        "missing_claim",
        "{}",
    );
    for claim in ["iss", "sub", "jti", "client_id", "tenant", "aud"] {
        api.assert_refused(
            &with_claims(&api.ed, |c| {
                c.insert(claim.into(), "".into());
            }),
            "invalid_claim",
            &format!("{claim}: \"\""),
        );
    }
}

#[test]
fn tokens_of_another_type_are_refused() {
    let api = api();
    // The signed revocation list, by the very key that signs tokens.
    let list = empty_list(&api.ed, 1);
    api.assert_refused(list.jws(), "wrong_typ", "the revocation list");
    // A real DPoP proof (it carries its jwk, which is refused before its typ is even read).
    let browser = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let proof = dpop::make_proof(&browser, "GET", &api.orders_url(), NOW, "p", None, None).unwrap();
    api.assert_refused(&proof, "forbidden_header", "a DPoP proof");
    // The genuine key's signature on access-token claims under other typ values.
    for typ in [
        Some(json!("keymint-revocations+jwt")),
        Some(json!("application/keymint-revocations+jwt")),
        Some(json!("dpop+jwt")),
        Some(json!("JWT")),
        Some(json!("jwt")),
        Some(json!("application/jwt")),
        Some(json!("at+jwt ")),
        Some(json!(" at+jwt")),
        Some(json!("at+jwt\u{0}")),
        Some(json!("application/at+jwt; charset=utf-8")),
        Some(json!("application/")),
        Some(json!("")),
        None,
    ] {
        let token = with_header(&api.ed, |h| match &typ {
            Some(t) => {
                h.insert("typ".into(), t.clone());
            }
            None => {
                h.remove("typ");
            }
        });
        api.assert_refused(&token, "wrong_typ", &format!("typ {typ:?}"));
    }
    api.assert_refused(
        &with_header(&api.ed, |h| {
            h.insert("typ".into(), json!(["at+jwt"]));
        }),
        "malformed",
        "typ as an array",
    );
    // RFC 9068 §4: the media type, in any case, with or without `application/`.
    for typ in [
        "at+jwt",
        "AT+JWT",
        "application/at+jwt",
        "Application/AT+JWT",
    ] {
        api.assert_accepted(
            &with_header(&api.ed, |h| {
                h.insert("typ".into(), typ.into());
            }),
            typ,
        );
    }
}

#[test]
fn tokens_for_another_issuer_or_audience_are_refused() {
    let api = api();
    for iss in [
        "https://evil.example",
        "https://issuer.example/",
        "HTTPS://ISSUER.EXAMPLE",
        "https://issuer.example.evil.example",
        "http://issuer.example",
    ] {
        api.assert_refused(
            &with_claims(&api.ed, |c| {
                c.insert("iss".into(), iss.into());
            }),
            "wrong_issuer",
            &format!("iss {iss}"),
        );
    }
    let admin = format!("{ISS}/v1/admin");
    for (aud, code) in [
        (json!("https://other-api.example"), "wrong_audience"),
        (json!(admin), "wrong_audience"),
        (json!([admin]), "wrong_audience"),
        (json!("https://api.example/"), "wrong_audience"),
        (json!([AUD, "https://other-api.example"]), "invalid_claim"),
        (json!(["https://other-api.example", AUD]), "invalid_claim"),
        (json!([AUD, AUD]), "invalid_claim"),
        (json!([]), "invalid_claim"),
        // More audiences than anyone reads through.
        (json!(vec![AUD; 100]), "malformed"),
    ] {
        let shown: String = aud.to_string().chars().take(80).collect();
        api.assert_refused(
            &with_claims(&api.ed, |c| {
                c.insert("aud".into(), aud.clone());
            }),
            code,
            &format!("aud {shown}"),
        );
    }
    // One audience in an array is one audience (RFC 7519 §4.1.3).
    api.assert_accepted(
        &with_claims(&api.ed, |c| {
            c.insert("aud".into(), json!([AUD]));
        }),
        "aud [api]",
    );
}

#[test]
fn a_token_outside_the_authorization_header_does_not_authenticate() {
    let api = api();
    let token = api.good();
    let no_token = |reply: &Reply, what: &str| {
        assert_eq!(reply.status, 401, "{what}: {}", reply.raw);
        // No error code: no token was presented (RFC 6750 §3.1).
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Bearer realm=\"api\""),
            "{what}"
        );
    };
    no_token(
        &api.request("GET", &format!("/orders?access_token={token}"), &[]),
        "access_token in the query string",
    );
    no_token(
        &api.request("GET", &format!("/orders?token={token}&bearer={token}"), &[]),
        "other query parameters",
    );
    no_token(
        &api.request(
            "GET",
            "/orders",
            &[("Cookie", &format!("access_token={token}"))],
        ),
        "a cookie",
    );
    no_token(
        &api.request("GET", "/orders", &[("X-Access-Token", &token)]),
        "a custom header",
    );
    no_token(
        &api.request(
            "GET",
            "/orders",
            &[("Authorization", &format!("Basic {token}"))],
        ),
        "another scheme",
    );
    no_token(
        &api.request("GET", "/orders", &[("Authorization", &token)]),
        "no scheme",
    );
    // A form body (RFC 6750 §2.2) is not read either.
    let body = format!("access_token={token}");
    let request = format!(
        "POST /orders HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        api.addr,
        body.len()
    );
    no_token(
        &exchange(api.addr, request.as_bytes()).unwrap(),
        "a form body",
    );
    // The same token in the header works, and a bad token in the header next to a good one in the
    // query string is refused as bad.
    api.assert_accepted(&token, "the header");
    let reply = api.request(
        "GET",
        &format!("/orders?access_token={token}"),
        &[("Authorization", "Bearer not.a.token")],
    );
    assert_invalid_token(&reply, "malformed", "bad header, good query");
}

// ---------------------------------------------------------------------------------------------
// DPoP (RFC 9449).

/// A token bound to `browser` (cnf.jkt), signed by the API's Ed25519 key.
fn bound_token(api: &Api, browser: &SigningKey) -> String {
    let mut c = claims();
    c.cnf = Some(Confirmation {
        jkt: browser.kid().to_string(),
    });
    api.ed.sign_access_token(&c).unwrap()
}

fn proof_for(
    api: &Api,
    key: &SigningKey,
    token: &str,
    jti: &str,
    edit: impl FnOnce(&mut String, &mut String, &mut UnixTime, &mut Option<String>),
) -> String {
    let mut htm = "GET".to_owned();
    let mut htu = api.orders_url();
    let mut iat = NOW;
    let mut ath = Some(dpop::access_token_hash(token));
    edit(&mut htm, &mut htu, &mut iat, &mut ath);
    dpop::make_proof(key, &htm, &htu, iat, jti, ath.as_deref(), None).unwrap()
}

#[test]
fn a_dpop_bound_token_presented_as_bearer_is_refused() {
    let api = api();
    for alg in [Algorithm::EdDsa, Algorithm::Es256] {
        let browser = SigningKey::generate(alg).unwrap();
        let token = bound_token(&api, &browser);
        api.assert_refused(&token, "dpop_bound", "a bound token as Bearer");
        // Not even with a valid proof next to it: the Bearer scheme never checks one.
        let proof = proof_for(&api, &browser, &token, "b1", |_, _, _, _| {});
        let reply = api.request(
            "GET",
            "/orders",
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("DPoP", &proof),
            ],
        );
        assert_invalid_token(&reply, "dpop_bound", "Bearer with a proof");
        // Its rightful use works.
        let proof = proof_for(&api, &browser, &token, "b2", |_, _, _, _| {});
        assert_eq!(api.dpop("GET", &token, &proof).status, 200);
    }
}

#[test]
fn a_replayed_dpop_proof_is_refused() {
    let api = api();
    let browser = SigningKey::generate(Algorithm::Es256).unwrap();
    let token = bound_token(&api, &browser);
    let proof = proof_for(&api, &browser, &token, "once", |_, _, _, _| {});
    assert_eq!(api.dpop("GET", &token, &proof).status, 200, "first use");
    assert_invalid_dpop_proof(&api.dpop("GET", &token, &proof), "the same proof again");
    assert_invalid_dpop_proof(&api.dpop("GET", &token, &proof), "and a third time");
    // A fresh proof still works: the replay cache holds proof IDs, not the token.
    let fresh = proof_for(&api, &browser, &token, "twice", |_, _, _, _| {});
    assert_eq!(api.dpop("GET", &token, &fresh).status, 200, "a fresh proof");
}

#[test]
fn a_dpop_proof_for_another_method_or_url_is_refused() {
    let api = api();
    let browser = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let token = bound_token(&api, &browser);
    let other_host = format!("http://127.0.0.2:{}/orders", api.addr.port());
    let https = api.orders_url().replace("http://", "https://");
    let url = api.orders_url();
    // (what, htm, htu)
    let cases = [
        ("htm POST on a GET", "POST", url.clone()),
        ("htm get (lowercase)", "get", url.clone()),
        ("htm HEAD", "HEAD", url.clone()),
        ("htu another path", "GET", format!("{url}/other")),
        ("htu a path prefix", "GET", url.replace("/orders", "/order")),
        ("htu another host", "GET", other_host),
        ("htu https", "GET", https),
        ("htu relative", "GET", "/orders".to_owned()),
    ];
    for (i, (what, htm, htu)) in cases.into_iter().enumerate() {
        let proof = proof_for(&api, &browser, &token, &format!("m{i}"), |m, u, _, _| {
            *m = htm.to_owned();
            *u = htu;
        });
        assert_invalid_dpop_proof(&api.dpop("GET", &token, &proof), what);
    }
    // The proof for GET is refused on POST, and a GET proof with a query string in htu is fine
    // (RFC 9449 §4.3 compares without query and fragment).
    let proof = proof_for(&api, &browser, &token, "get", |_, _, _, _| {});
    assert_invalid_dpop_proof(&api.dpop("POST", &token, &proof), "a GET proof on POST");
    let proof = proof_for(&api, &browser, &token, "query", |_, u, _, _| {
        u.push_str("?page=2")
    });
    assert_eq!(api.dpop("GET", &token, &proof).status, 200);
}

#[test]
fn a_dpop_proof_for_another_token_is_refused() {
    let api = api();
    let browser = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let token = bound_token(&api, &browser);
    let mut c = claims();
    c.jti = Jti::new("second-token").unwrap();
    c.cnf = Some(Confirmation {
        jkt: browser.kid().to_string(),
    });
    let sibling = api.ed.sign_access_token(&c).unwrap();
    let cases: Vec<(&str, Option<String>)> = vec![
        (
            "ath of another token of the same key",
            Some(dpop::access_token_hash(&sibling)),
        ),
        ("no ath", None),
        (
            "ath of the token with a trailing space",
            Some(dpop::access_token_hash(&format!("{token} "))),
        ),
        ("ath as hex", Some("00".repeat(32))),
        ("ath empty", Some(String::new())),
    ];
    for (i, (what, ath)) in cases.into_iter().enumerate() {
        let proof = proof_for(&api, &browser, &token, &format!("a{i}"), |_, _, _, a| {
            *a = ath
        });
        assert_invalid_dpop_proof(&api.dpop("GET", &token, &proof), what);
    }
}

#[test]
fn a_dpop_proof_by_a_key_other_than_the_bound_one_is_refused() {
    let api = api();
    let browser = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let token = bound_token(&api, &browser);
    let thief = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let thief_p256 = SigningKey::generate(Algorithm::Es256).unwrap();
    for (what, key) in [
        ("another Ed25519 key", &thief),
        ("a P-256 key", &thief_p256),
        ("the API's own signing key", api.ed.key()),
    ] {
        let proof = proof_for(&api, key, &token, what, |_, _, _, _| {});
        assert_invalid_dpop_proof(&api.dpop("GET", &token, &proof), what);
    }
    // The browser's jwk in the header with the thief's signature.
    let genuine = proof_for(&api, &browser, &token, "swap", |_, _, _, _| {});
    let thiefs = proof_for(&api, &thief, &token, "swap", |_, _, _, _| {});
    let (h, p, _) = segments(&genuine);
    let (_, _, s) = segments(&thiefs);
    assert_invalid_dpop_proof(
        &api.dpop("GET", &token, &format!("{h}.{p}.{s}")),
        "the bound key's jwk, the thief's signature",
    );
    // An unbound token cannot be presented under DPoP with any key's proof.
    let unbound = api.good();
    let proof = proof_for(&api, &thief, &unbound, "unbound", |_, _, _, _| {});
    assert_invalid_dpop_proof(
        &api.dpop("GET", &unbound, &proof),
        "an unbound token under DPoP",
    );
    // The control: the browser's own proof.
    let proof = proof_for(&api, &browser, &token, "ok", |_, _, _, _| {});
    assert_eq!(api.dpop("GET", &token, &proof).status, 200);
}

#[test]
fn a_dpop_proof_with_a_bad_header_is_refused() {
    let api = api();
    let browser = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let token = bound_token(&api, &browser);
    let jwk = browser.public_jwk().to_json_value();
    let claims = json!({"jti": "hdr", "htm": "GET", "htu": api.orders_url(), "iat": NOW.0,
        "ath": dpop::access_token_hash(&token)});
    let browser_signer =
        Signer::new(SigningKey::from_pkcs8(Algorithm::EdDsa, browser.pkcs8_der()).unwrap());
    for (what, header) in [
        (
            "alg none",
            json!({"typ": "dpop+jwt", "alg": "none", "jwk": jwk}),
        ),
        (
            "alg HS256",
            json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}),
        ),
        (
            "alg ES256 on an Ed25519 jwk",
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}),
        ),
        ("typ JWT", json!({"typ": "JWT", "alg": "EdDSA", "jwk": jwk})),
        (
            "typ at+jwt",
            json!({"typ": "at+jwt", "alg": "EdDSA", "jwk": jwk}),
        ),
        ("no typ", json!({"alg": "EdDSA", "jwk": jwk})),
        ("no jwk", json!({"typ": "dpop+jwt", "alg": "EdDSA"})),
        (
            "a key by reference only",
            json!({"typ": "dpop+jwt", "alg": "EdDSA", "jku": "http://127.0.0.1:1/jwks"}),
        ),
        ("a private key in the jwk", {
            let mut private = jwk.clone();
            private["d"] = json!(b64(&[7; 32]));
            json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": private})
        }),
        // RFC 7515 §4.1.11: a JWS listing an extension the recipient does not understand is
        // refused. (Proofs with `crit` were accepted before issue #8.)
        (
            "an unknown crit",
            json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk, "crit": ["b64"], "b64": false}),
        ),
        (
            "an empty crit",
            json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk, "crit": []}),
        ),
    ] {
        let proof = sign_text(
            &browser_signer,
            &header.to_string(),
            claims.to_string().as_bytes(),
        );
        assert_invalid_dpop_proof(&api.dpop("GET", &token, &proof), what);
    }
    // A duplicate member in the proof's header or claims.
    let header = json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk}).to_string();
    let dup_header = header.replacen('{', r#"{"typ":"JWT","#, 1);
    let proof = sign_text(&browser_signer, &dup_header, claims.to_string().as_bytes());
    assert_invalid_dpop_proof(&api.dpop("GET", &token, &proof), "a duplicate typ");
    let dup_claims = claims.to_string().replacen('{', r#"{"htm":"POST","#, 1);
    let proof = sign_text(&browser_signer, &header, dup_claims.as_bytes());
    assert_invalid_dpop_proof(&api.dpop("GET", &token, &proof), "a duplicate htm");
    // The control: the same proof with a clean header.
    let proof = sign_text(&browser_signer, &header, claims.to_string().as_bytes());
    assert_eq!(api.dpop("GET", &token, &proof).status, 200);
}

#[test]
fn a_dpop_proof_outside_its_time_window_is_refused() {
    let api = api();
    let browser = SigningKey::generate(Algorithm::Es256).unwrap();
    let token = bound_token(&api, &browser);
    for (what, iat) in [
        ("an hour old", UnixTime(NOW.0 - 3_600)),
        ("61 s old", UnixTime(NOW.0 - 61)),
        ("61 s ahead", UnixTime(NOW.0 + 61)),
        ("an hour ahead", UnixTime(NOW.0 + 3_600)),
        ("at the epoch", UnixTime(0)),
        ("at the end of time", UnixTime(u64::MAX)),
    ] {
        let proof = proof_for(&api, &browser, &token, what, |_, _, t, _| *t = iat);
        assert_invalid_dpop_proof(&api.dpop("GET", &token, &proof), what);
    }
    for (what, iat) in [
        ("60 s old", UnixTime(NOW.0 - 60)),
        ("60 s ahead", UnixTime(NOW.0 + 60)),
    ] {
        let proof = proof_for(&api, &browser, &token, what, |_, _, t, _| *t = iat);
        assert_eq!(api.dpop("GET", &token, &proof).status, 200, "{what}");
    }
}
