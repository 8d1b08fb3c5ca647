//! The verifier and signer work in a process where no jsonwebtoken crypto provider is installed.
//! (Each file under tests/ is its own process, so nothing else installs one here.)

mod common;

use common::*;
use keymint_jwks::{Algorithm, Signer, SigningKey};

#[test]
fn verifier_works_without_any_jsonwebtoken_provider() {
    // Proof that no provider is installed: jsonwebtoken's own signing panics here.
    let key = jsonwebtoken::EncodingKey::from_ed_der(b"irrelevant");
    let panicked = std::panic::catch_unwind(|| {
        jsonwebtoken::crypto::sign(b"m", &key, jsonwebtoken::Algorithm::EdDSA)
    });
    assert!(panicked.is_err(), "a jsonwebtoken provider is installed");

    for alg in [Algorithm::EdDsa, Algorithm::Es256] {
        let signer = Signer::new(SigningKey::generate(alg).unwrap());
        let v = verifier_for(&[&signer]);
        let token = signer.sign_access_token(&claims()).unwrap();
        assert_eq!(v.verify_at(&token, NOW).unwrap().claims(), &claims());
    }
}
