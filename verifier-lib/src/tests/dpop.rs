//! Sender-constrained tokens: a DPoP-bound token needs a proof of its key for each request.

use super::*;

#[test]
fn a_dpop_bound_token_is_refused_as_a_bearer_token() {
    let f = fixture();
    let v = verifier(&f);
    let mut c = claims();
    c.cnf = Some(Confirmation {
        jkt: keymint_jwks::Jkt::new("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I").unwrap(),
    });
    let t = f.ed.sign_access_token(&c).unwrap();
    assert_eq!(v.verify_at(&t, NOW), Err(VerifyError::SenderConstrained));
    // Asking again (now from the cache) gives the same answer.
    assert_eq!(v.verify_at(&t, NOW), Err(VerifyError::SenderConstrained));
}

#[test]
fn a_dpop_bound_token_verifies_with_a_fresh_proof_of_its_key_for_this_request() {
    use keymint_jwks::dpop::{access_token_hash, make_proof};
    let f = fixture();
    let v = verifier(&f);
    let browser_key = SigningKey::generate(Algorithm::Es256).unwrap();
    let mut c = claims();
    c.cnf = Some(Confirmation {
        jkt: keymint_jwks::Jkt::new(browser_key.kid().as_str()).unwrap(),
    });
    let t = f.ed.sign_access_token(&c).unwrap();
    let ath = access_token_hash(&t);
    let url = "https://api.example/orders";
    let proof = |jti: &str, method: &str, key: &SigningKey| {
        make_proof(key, method, url, NOW, jti, Some(&ath), None).unwrap()
    };
    let ok = v
        .verify_dpop_at(&t, &proof("p1", "GET", &browser_key), "GET", url, NOW)
        .unwrap();
    assert_eq!(ok.claims().tenant.as_str(), "acme");
    // The same proof again is a replay.
    assert!(
        matches!(v.verify_dpop_at(&t, &proof("p1", "GET", &browser_key), "GET", url, NOW), Err(VerifyError::InvalidDpopProof(m)) if m.contains("replayed"))
    );
    // A proof for another method, or from another key, does not fit.
    assert!(matches!(
        v.verify_dpop_at(&t, &proof("p2", "POST", &browser_key), "GET", url, NOW),
        Err(VerifyError::InvalidDpopProof(_))
    ));
    let thief = SigningKey::generate(Algorithm::Es256).unwrap();
    assert!(matches!(
        v.verify_dpop_at(&t, &proof("p3", "GET", &thief), "GET", url, NOW),
        Err(VerifyError::InvalidDpopProof(_))
    ));
    // An unbound token cannot be presented with DPoP, and a bound one never as a bearer token.
    let unbound = f.ed.sign_access_token(&claims()).unwrap();
    let ath2 = access_token_hash(&unbound);
    let p = make_proof(&browser_key, "GET", url, NOW, "p4", Some(&ath2), None).unwrap();
    assert!(matches!(
        v.verify_dpop_at(&unbound, &p, "GET", url, NOW),
        Err(VerifyError::InvalidDpopProof(_))
    ));
    assert_eq!(v.verify_at(&t, NOW), Err(VerifyError::SenderConstrained));
}
