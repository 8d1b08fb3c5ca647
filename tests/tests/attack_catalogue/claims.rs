//! Claims: times, required claims, the token type, issuer and audience.

use keymint_jwks::*;
use keymint_verifier::VerifyError;
use serde_json::{Map, Value, json};

use crate::common::{AUD, ISS, NOW, claims, empty_list};
use crate::forge::{header_of, sign, with_claims, with_header};
use crate::harness::api;

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
