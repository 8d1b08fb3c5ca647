//! The verifier works in a process whose jsonwebtoken provider is some other one: here a tripwire
//! that counts every call. keymint's signer and verifier never go through it.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind, new_error};
use jsonwebtoken::{Algorithm as JwtAlg, DecodingKey, EncodingKey};
use keymint_jwks::{Algorithm, Signer, SigningKey};

static CALLS: AtomicUsize = AtomicUsize::new(0);

fn tripwire_signer(_: &JwtAlg, _: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    Err(new_error(ErrorKind::InvalidAlgorithm))
}

fn tripwire_verifier(_: &JwtAlg, _: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    Err(new_error(ErrorKind::InvalidAlgorithm))
}

static TRIPWIRE: CryptoProvider = CryptoProvider {
    signer_factory: tripwire_signer,
    verifier_factory: tripwire_verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

#[test]
fn verifier_works_with_another_provider_installed_and_never_calls_it() {
    TRIPWIRE
        .install_default()
        .expect("first install in this process");
    // The tripwire is live: jsonwebtoken's own path reaches it.
    let _ = jsonwebtoken::crypto::sign(b"m", &EncodingKey::from_ed_der(b"x"), JwtAlg::EdDSA);
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);

    for alg in [Algorithm::EdDsa, Algorithm::Es256] {
        let signer = Signer::new(SigningKey::generate(alg).unwrap());
        let v = verifier_for(&[&signer]);
        let token = signer.sign_access_token(&claims()).unwrap();
        v.verify_at(&token, NOW).unwrap();
        v.verify_at(&token, NOW).unwrap();
    }
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        1,
        "keymint went through jsonwebtoken"
    );
}
