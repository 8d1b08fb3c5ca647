//! Tokens as a whole: both algorithms round trip, and a table of forged and malformed tokens,
//! each refused with its typed error. (The attack catalogue in `tests/tests/attack_catalogue/`
//! throws the same families at an API server over HTTP and checks the answers it gives.)

use super::*;

#[test]
fn round_trip_both_algorithms() {
    let f = fixture();
    let v = verifier(&f);
    for signer in [&f.ed, &f.es] {
        let token = signer.sign_access_token(&claims()).unwrap();
        let ok = v.verify_at(&token, NOW).unwrap();
        assert_eq!(ok.claims(), &claims());
        assert_eq!(ok.kid(), signer.key().kid());
        assert_eq!(ok.algorithm(), signer.key().algorithm());
    }
}

#[test]
fn fully_specified_ed25519_alg_and_application_typ_are_accepted() {
    let f = fixture();
    let v = verifier(&f);
    let t = with_header(&f.ed, |h| {
        h.insert("alg".into(), "Ed25519".into());
        h.insert("typ".into(), "Application/AT+JWT".into());
    });
    v.verify_at(&t, NOW).unwrap();
}

#[test]
fn forged_and_malformed_tokens_are_rejected_with_the_expected_error() {
    let f = fixture();
    let v = verifier(&f);
    let good = f.ed.sign_access_token(&claims()).unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let ed_kid = f.ed.key().kid().as_str().to_owned();

    // HS256 with the public key bytes as the HMAC secret (key confusion).
    let hs256 = {
        let h = encode_segment(
            serde_json::json!({"alg":"HS256","typ":"at+jwt","kid":ed_kid})
                .to_string()
                .as_bytes(),
        );
        let input = format!("{h}.{}", parts[1]);
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, f.ed.key().public_key().as_bytes());
        let tag = ring::hmac::sign(&key, input.as_bytes());
        format!("{input}.{}", encode_segment(tag.as_ref()))
    };
    // A payload changed after signing: tenant swapped, signature kept.
    let tampered = {
        let mut c: serde_json::Value = serde_json::from_slice(&claims().to_json()).unwrap();
        c["tenant"] = "evil".into();
        format!(
            "{}.{}.{}",
            parts[0],
            encode_segment(c.to_string().as_bytes()),
            parts[2]
        )
    };
    // Signed by a key outside the set, under a kid that is in the set.
    let other_key = {
        let h = encode_segment(header(&f.ed).to_string().as_bytes());
        f.other.sign_compact(&h, &claims().to_json()).unwrap()
    };
    // An ES256 token whose signature is all zeros.
    let es_zero = {
        let t = f.es.sign_access_token(&claims()).unwrap();
        let (input, _) = t.rsplit_once('.').unwrap();
        format!("{input}.{}", encode_segment(&[0u8; 64]))
    };
    // The revocation list itself, presented as a token.
    let the_list = list(&f.ed, 1, vec![]).jws().to_owned();
    let dup_payload = {
        let json = String::from_utf8(claims().to_json()).unwrap();
        let dup = json.replacen(
            "\"tenant\":\"acme\"",
            "\"tenant\":\"acme\",\"tenant\":\"evil\"",
            1,
        );
        sign_raw(&f.ed, &header(&f.ed), dup.as_bytes())
    };
    let dup_header = {
        let h = format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{ed_kid}","kid":"{ed_kid}"}}"#);
        f.ed.sign_compact(&encode_segment(h.as_bytes()), &claims().to_json())
            .unwrap()
    };

    use VerifyError as E;
    type Case = (&'static str, String, fn(&VerifyError) -> bool);
    let cases: Vec<Case> = vec![
        (
            "alg none",
            with_header(&f.ed, |h| {
                h.insert("alg".into(), "none".into());
            }),
            |e| matches!(e, E::UnsupportedAlgorithm { .. }),
        ),
        (
            "alg NONE",
            with_header(&f.ed, |h| {
                h.insert("alg".into(), "NONE".into());
            }),
            |e| matches!(e, E::UnsupportedAlgorithm { .. }),
        ),
        (
            "alg nOnE",
            with_header(&f.ed, |h| {
                h.insert("alg".into(), "nOnE".into());
            }),
            |e| matches!(e, E::UnsupportedAlgorithm { .. }),
        ),
        (
            "alg none, no signature",
            format!(
                "{}.{}.",
                encode_segment(br#"{"alg":"none","typ":"at+jwt"}"#),
                parts[1]
            ),
            |e| matches!(e, E::MissingKid),
        ),
        ("HS256 with the public key", hs256, |e| {
            matches!(e, E::UnsupportedAlgorithm { .. })
        }),
        (
            "ES256 header on an Ed25519 key",
            with_header(&f.ed, |h| {
                h.insert("alg".into(), "ES256".into());
            }),
            |e| {
                matches!(
                    e,
                    E::AlgorithmMismatch {
                        expected: Algorithm::EdDsa,
                        ..
                    }
                )
            },
        ),
        (
            "EdDSA header on a P-256 key",
            with_header(&f.es, |h| {
                h.insert("alg".into(), "EdDSA".into());
            }),
            |e| {
                matches!(
                    e,
                    E::AlgorithmMismatch {
                        expected: Algorithm::Es256,
                        ..
                    }
                )
            },
        ),
        (
            "unknown kid",
            with_header(&f.ed, |h| {
                h.insert("kid".into(), "nope".into());
            }),
            |e| matches!(e, E::UnknownKid { .. }),
        ),
        (
            "missing kid",
            with_header(&f.ed, |h| {
                h.remove("kid");
            }),
            |e| matches!(e, E::MissingKid),
        ),
        ("signature from another key", other_key, |e| {
            matches!(e, E::BadSignature)
        }),
        ("payload changed after signing", tampered, |e| {
            matches!(e, E::BadSignature)
        }),
        ("ECDSA signature of zeros", es_zero, |e| {
            matches!(e, E::BadSignature)
        }),
        (
            "missing typ",
            with_header(&f.ed, |h| {
                h.remove("typ");
            }),
            |e| matches!(e, E::WrongType { found: None }),
        ),
        (
            "typ JWT",
            with_header(&f.ed, |h| {
                h.insert("typ".into(), "JWT".into());
            }),
            |e| matches!(e, E::WrongType { found: Some(_) }),
        ),
        (
            "typ of the revocation list",
            with_header(&f.ed, |h| {
                h.insert("typ".into(), "keymint-revocations+jwt".into());
            }),
            |e| matches!(e, E::WrongType { .. }),
        ),
        ("the revocation list as a token", the_list, |e| {
            matches!(e, E::WrongType { .. })
        }),
        (
            "typ of a DPoP proof",
            with_header(&f.ed, |h| {
                h.insert("typ".into(), "dpop+jwt".into());
            }),
            |e| matches!(e, E::WrongType { .. }),
        ),
        (
            "jku header",
            with_header(&f.ed, |h| {
                h.insert("jku".into(), "https://evil.example/jwks".into());
            }),
            |e| matches!(e, E::ForbiddenHeader("jku")),
        ),
        (
            "embedded jwk",
            with_header(&f.ed, |h| {
                h.insert("jwk".into(), f.other.key().public_jwk().to_json_value());
            }),
            |e| matches!(e, E::ForbiddenHeader("jwk")),
        ),
        (
            "x5u header",
            with_header(&f.ed, |h| {
                h.insert("x5u".into(), "https://evil".into());
            }),
            |e| matches!(e, E::ForbiddenHeader("x5u")),
        ),
        (
            "x5c header",
            with_header(&f.ed, |h| {
                h.insert("x5c".into(), serde_json::json!(["MIIB"]));
            }),
            |e| matches!(e, E::ForbiddenHeader("x5c")),
        ),
        (
            "unknown crit",
            with_header(&f.ed, |h| {
                h.insert("crit".into(), serde_json::json!(["zip2"]));
                h.insert("zip2".into(), 1.into());
            }),
            |e| matches!(e, E::UnknownCritical),
        ),
        ("duplicate payload member", dup_payload, |e| {
            matches!(e, E::DuplicateMember { .. })
        }),
        ("duplicate header member", dup_header, |e| {
            matches!(e, E::DuplicateMember { .. })
        }),
        (
            "expired",
            with_claims(&f.ed, |c| {
                c.insert("exp".into(), (NOW.0 - 61).into());
            }),
            |e| matches!(e, E::Expired { .. }),
        ),
        (
            "nbf in the future",
            with_claims(&f.ed, |c| {
                c.insert("nbf".into(), (NOW.0 + 61).into());
            }),
            |e| matches!(e, E::NotYetValid { .. }),
        ),
        (
            "iat in the future",
            with_claims(&f.ed, |c| {
                c.insert("iat".into(), (NOW.0 + 61).into());
                c.remove("nbf");
            }),
            |e| matches!(e, E::IssuedInFuture { .. }),
        ),
        (
            "wrong iss",
            with_claims(&f.ed, |c| {
                c.insert("iss".into(), "https://evil.example".into());
            }),
            |e| matches!(e, E::WrongIssuer),
        ),
        (
            "wrong aud",
            with_claims(&f.ed, |c| {
                c.insert("aud".into(), "https://other-api.example".into());
            }),
            |e| matches!(e, E::WrongAudience),
        ),
        (
            "two audiences",
            with_claims(&f.ed, |c| {
                c.insert("aud".into(), serde_json::json!([AUD, "https://other"]));
            }),
            |e| matches!(e, E::InvalidClaim { claim: "aud", .. }),
        ),
        (
            "oversize",
            format!("{}.{}.{}", parts[0], "A".repeat(9000), parts[2]),
            |e| matches!(e, E::Oversize { .. }),
        ),
        (
            "bad base64url: padding",
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            |e| matches!(e, E::Malformed(_)),
        ),
        (
            "bad base64url: standard alphabet",
            format!("{}.{}+/.{}", parts[0], parts[1], parts[2]),
            |e| matches!(e, E::Malformed(_)),
        ),
        (
            "bad base64url: whitespace",
            format!("{}.{} .{}", parts[0], parts[1], parts[2]),
            |e| matches!(e, E::Malformed(_)),
        ),
        ("two segments", format!("{}.{}", parts[0], parts[1]), |e| {
            matches!(e, E::Malformed(_))
        }),
        ("four segments", format!("{good}.{}", parts[2]), |e| {
            matches!(e, E::Malformed(_))
        }),
        (
            "payload not a JSON object",
            sign_raw(&f.ed, &header(&f.ed), b"[1,2,3]"),
            |e| matches!(e, E::Malformed(_)),
        ),
        (
            "payload not JSON",
            sign_raw(&f.ed, &header(&f.ed), b"\xff\xfe"),
            |e| matches!(e, E::Malformed(_)),
        ),
        (
            "header not JSON",
            format!("{}.{}.{}", encode_segment(b"not json"), parts[1], parts[2]),
            |e| matches!(e, E::Malformed(_)),
        ),
        (
            "stripped signature",
            format!("{}.{}.", parts[0], parts[1]),
            |e| matches!(e, E::BadSignature),
        ),
        ("empty", String::new(), |e| matches!(e, E::Malformed(_))),
    ];
    for (name, token, expected) in cases {
        let err = v.verify_at(&token, NOW).expect_err(name);
        assert!(expected(&err), "{name}: got {err:?}");
        let msg = err.to_string();
        if token.len() > 20 {
            assert!(
                !msg.contains(&token),
                "{name}: error message contains the token"
            );
        }
        assert!(
            !msg.contains(parts[2]),
            "{name}: error message contains a signature"
        );
    }
}
