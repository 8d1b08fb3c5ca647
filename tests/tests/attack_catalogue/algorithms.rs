//! alg: none and algorithm confusion.

use keymint_jwks::*;
use serde_json::{Value, json};

use crate::forge::{b64, segments, with_header};
use crate::harness::api;

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
