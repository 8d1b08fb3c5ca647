//! Parser differentials: duplicate JSON members, non-canonical base64url, stripped or truncated
//! signatures.

use keymint_jwks::*;
use serde_json::Value;

use crate::common::{AUD, claims};
use crate::forge::{b64, header_of, segments, sign_text, with_claims};
use crate::harness::api;

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
