//! keymint's ring-backed jsonwebtoken provider (what the `keymint` binary installs) interoperates
//! with keymint's own signer and verifier in both directions, for both algorithms.

mod common;

use common::*;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use keymint_jwks::jwt_provider::RING_PROVIDER;
use keymint_jwks::{Algorithm, Claims, Signer, SigningKey};

fn jwt_alg(alg: Algorithm) -> jsonwebtoken::Algorithm {
    match alg {
        Algorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        _ => jsonwebtoken::Algorithm::ES256,
    }
}

#[test]
fn ring_provider_tokens_verify_and_keymint_tokens_decode() {
    let _ = RING_PROVIDER.install_default();
    for alg in [Algorithm::EdDsa, Algorithm::Es256] {
        let signer = Signer::new(SigningKey::generate(alg).unwrap());
        let v = verifier_for(&[&signer]);

        // jsonwebtoken (through the ring provider) → keymint verifier.
        let mut header = Header::new(jwt_alg(alg));
        header.typ = Some("at+jwt".into());
        header.kid = Some(signer.key().kid().to_string());
        let key = match alg {
            Algorithm::EdDsa => EncodingKey::from_ed_der(signer.key().pkcs8_der()),
            _ => EncodingKey::from_ec_der(signer.key().pkcs8_der()),
        };
        let token = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
        assert_eq!(v.verify_at(&token, NOW).unwrap().claims(), &claims());

        // keymint signer → jsonwebtoken decode (through the ring provider) with the published JWK.
        let ours = signer.sign_access_token(&claims()).unwrap();
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(signer.key().public_jwk().to_json_value()).unwrap();
        let mut validation = Validation::new(jwt_alg(alg));
        validation.set_audience(&[AUD]);
        validation.set_issuer(&[ISS]);
        validation.validate_exp = false;
        let decoded = jsonwebtoken::decode::<serde_json::Value>(
            ours.as_bytes(),
            &DecodingKey::from_jwk(&jwk).unwrap(),
            &validation,
        )
        .unwrap();
        let back = Claims::from_json(decoded.claims.to_string().as_bytes()).unwrap();
        assert_eq!(back, claims());
    }
}

#[test]
fn ring_provider_refuses_shared_secret_algorithms_without_panicking() {
    let _ = RING_PROVIDER.install_default();
    let err = jsonwebtoken::crypto::sign(
        b"m",
        &EncodingKey::from_secret(b"s"),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap_err();
    assert_eq!(
        err.kind(),
        &jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
    );
}
