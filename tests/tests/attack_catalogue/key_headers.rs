//! Header members that point at keys, kid injection, crit.

use std::time::Duration;

use base64::Engine as _;
use keymint_jwks::*;
use serde_json::{Value, json};

use crate::common::wait_until;
use crate::forge::with_header;
use crate::harness::api;

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
    // The verifier here has a static key set and no background work: a fetch would have been
    // made while a request above was verified, before its answer. A connection of our own, made
    // now, queues behind any such fetch; once it is accepted, it must be the first and only one.
    let marker = std::net::TcpStream::connect(attacker_server.local_addr().unwrap()).unwrap();
    let (_, first) = wait_until(
        "our own marker connection to the attacker's server",
        Duration::from_secs(3),
        || attacker_server.accept().ok(),
    );
    assert_eq!(
        first,
        marker.local_addr().unwrap(),
        "the attacker's key server was contacted before our marker"
    );
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
