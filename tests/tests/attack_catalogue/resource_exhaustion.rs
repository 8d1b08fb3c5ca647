//! Resource exhaustion: oversized tokens, a huge HTTP header, deeply nested JSON.

use keymint_jwks::*;
use serde_json::Value;

use crate::common::claims;
use crate::forge::{claims_of, header_of, segments, sign, sign_text, with_header};
use crate::harness::{api, api_with, exchange};

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
