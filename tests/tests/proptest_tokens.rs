//! Property tests: arbitrary bytes and mutated valid tokens never panic and never verify; key sets
//! and revocation lists made of garbage are typed errors.

mod common;

use common::*;
use keymint_jwks::*;
use proptest::prelude::*;

fn setup() -> (Signer, keymint_verifier::Verifier, String) {
    let signer = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let v = verifier_for(&[&signer]);
    let token = signer.sign_access_token(&claims()).unwrap();
    (signer, v, token)
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(token: &str, muts: &[Mutation]) -> Vec<u8> {
    let mut bytes = token.as_bytes().to_vec();
    for m in muts {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Replace(i, b) if !bytes.is_empty() => bytes[i % len] = b,
            Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Mutation::Delete(i) if !bytes.is_empty() => {
                bytes.remove(i % len);
            }
            Mutation::Truncate(i) => bytes.truncate(i % len),
            _ => {}
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_input_never_verifies(s in ".{0,600}") {
        let (_, v, _) = setup_cached();
        prop_assert!(v.verify_at(&s, NOW).is_err());
    }

    #[test]
    fn arbitrary_jws_shaped_input_never_verifies(h in "[A-Za-z0-9_-]{0,80}", p in "[A-Za-z0-9_-]{0,200}", s in "[A-Za-z0-9_-]{0,90}") {
        let (_, v, _) = setup_cached();
        let token = format!("{}.{}.{}", h, p, s);
        prop_assert!(v.verify_at(&token, NOW).is_err());
    }

    #[test]
    fn mutated_tokens_never_verify(muts in proptest::collection::vec(mutation(), 1..4)) {
        let (_, v, token) = setup_cached();
        let bytes = apply(&token, &muts);
        if bytes != token.as_bytes()
            && let Ok(s) = std::str::from_utf8(&bytes)
        {
            prop_assert!(v.verify_at(s, NOW).is_err(), "mutation verified: {:?}", muts);
        }
    }

    #[test]
    fn garbage_key_sets_are_typed_errors(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Jwks::from_json(&bytes);
    }

    #[test]
    fn garbage_revocation_lists_are_typed_errors(s in ".{0,400}") {
        let (signer, v, _) = setup_cached();
        let jwks = Jwks::new(vec![signer.key().public_jwk()]).unwrap();
        prop_assert!(SignedRevocationList::verify(&s, &jwks, &Issuer::new(ISS).unwrap(), 1 << 20).is_err());
        prop_assert!(v.update_revocations_at(&s, NOW).is_err());
    }

    #[test]
    fn claims_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Claims::from_json(&bytes);
    }
}

/// One signer, verifier and token per test thread: key generation is not what is being tested.
fn setup_cached() -> (Signer, keymint_verifier::Verifier, String) {
    thread_local! {
        static SETUP: (Signer, keymint_verifier::Verifier, String) = setup();
    }
    SETUP.with(|s| s.clone())
}

#[test]
fn the_unmutated_token_does_verify() {
    // Guards the properties above against passing vacuously.
    let (_, v, token) = setup_cached();
    assert!(v.verify_at(&token, NOW).is_ok());
}
