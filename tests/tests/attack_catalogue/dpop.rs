//! DPoP (RFC 9449).

use keymint_jwks::*;
use serde_json::json;

use crate::common::{NOW, claims};
use crate::forge::{b64, segments, sign_text};
use crate::harness::{Api, api, assert_invalid_dpop_proof, assert_invalid_token};

/// A token bound to `browser` (cnf.jkt), signed by the API's Ed25519 key.
fn bound_token(api: &Api, browser: &SigningKey) -> String {
    let mut c = claims();
    c.cnf = Some(Confirmation {
        jkt: keymint_jwks::Jkt::new(browser.kid().as_str()).unwrap(),
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
        jkt: keymint_jwks::Jkt::new(browser.kid().as_str()).unwrap(),
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
        ("6 s ahead", UnixTime(NOW.0 + 6)),
        (
            "30 s ahead (accepted before issue #13)",
            UnixTime(NOW.0 + 30),
        ),
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
        ("5 s ahead (clock skew)", UnixTime(NOW.0 + 5)),
    ] {
        let proof = proof_for(&api, &browser, &token, what, |_, _, t, _| *t = iat);
        assert_eq!(api.dpop("GET", &token, &proof).status, 200, "{what}");
    }
}
