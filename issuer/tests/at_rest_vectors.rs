//! Known-answer vectors for what outlives a release: the printable key format and its CRC32
//! checksum, the keyed hash stored for a secret, and the sealed private signing key. A round trip
//! cannot catch a change to any of them (both ends change together), and such a change would
//! invalidate every key and signing key stored before an upgrade. The vectors in
//! `tests/fixtures/at-rest/vectors.json` are fixed, and were checked against an independent
//! implementation (`scripts/at-rest-vectors`). The README's key regex is checked as written there.

// Test code: a failed step should stop the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use keymint::domain::keys::api_key::{self, KeyEnv, KeyKind};
use keymint::domain::keys::key_hash::{KeyHasher, Pepper};
use keymint::domain::signing::secret_box::EncryptionKey;
use keymint_jwks::{Algorithm, SigningKey};
use serde_json::Value;
use zeroize::Zeroizing;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/at-rest/vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn text<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {name}"))
}

fn bytes32(v: &Value, name: &str) -> [u8; 32] {
    hex::decode(text(v, name)).unwrap().try_into().unwrap()
}

#[test]
fn printable_keys_and_their_checksums_are_the_fixed_vectors() {
    let all = vectors();
    let keys = all["printable_keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    for v in keys {
        let kind = KeyKind::parse(text(v, "kind")).unwrap();
        let env = KeyEnv::parse(text(v, "env")).unwrap();
        let printable = text(v, "printable");
        let made = api_key::assemble(kind, env, text(v, "key_id"), text(v, "secret"));
        assert_eq!(made.expose(), printable, "the printable key format changed");
        let parsed = api_key::parse(printable).unwrap();
        assert_eq!(parsed.key_id.as_str(), text(v, "key_id"));
        assert_eq!(parsed.secret.expose(), text(v, "secret"));
        assert_eq!((parsed.kind, parsed.env), (kind, env));
        // The last character is the checksum's: any other value there is a mistyped key.
        let mut wrong = printable.to_owned();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'a' { 'b' } else { 'a' });
        assert!(matches!(
            api_key::parse(&wrong),
            Err(api_key::KeyFormatError::Checksum)
        ));
    }
}

#[test]
fn the_stored_hash_of_a_secret_is_the_fixed_vector() {
    let all = vectors();
    let v = &all["key_hash"];
    let hasher = KeyHasher::new(&Pepper::new(bytes32(v, "pepper_hex")));
    let expected = hex::decode(text(v, "hmac_sha256_hex")).unwrap();
    let (id, secret) = (text(v, "key_id"), text(v, "secret"));
    assert_eq!(
        hasher.hash(id, secret),
        expected,
        "the stored hash changed: every existing key would stop working"
    );
    assert!(hasher.verify(id, secret, &expected));
}

#[test]
fn a_signing_key_sealed_by_an_earlier_release_still_opens() {
    let all = vectors();
    let v = &all["sealed_signing_key"];
    let enc = EncryptionKey::new(&Zeroizing::new(bytes32(v, "encryption_key_hex"))).unwrap();
    let sealed = hex::decode(text(v, "sealed_hex")).unwrap();
    let kid = text(v, "kid");
    let pkcs8 = enc.open(kid, &sealed).unwrap();
    assert_eq!(*pkcs8, hex::decode(text(v, "pkcs8_hex")).unwrap());
    // nonce || ciphertext || tag.
    assert_eq!(sealed.len(), 12 + pkcs8.len() + 16);
    let alg = Algorithm::from_name(text(v, "alg")).unwrap();
    let key = SigningKey::from_pkcs8(alg, &pkcs8).unwrap();
    assert_eq!(
        key.kid().as_str(),
        kid,
        "the kid is the key's RFC 7638 thumbprint"
    );
    assert!(
        enc.open("another-kid", &sealed).is_err(),
        "the kid is the associated data"
    );
}

/// The regex the README gives users and secret scanners, read from the README itself.
fn readme_regex() -> regex::Regex {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = readme
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("^km_") && l.ends_with('$'))
        .collect();
    assert_eq!(lines.len(), 1, "one key regex in the README: {lines:?}");
    regex::Regex::new(lines[0]).unwrap()
}

#[test]
fn the_readme_key_regex_matches_real_keys_and_nothing_malformed() {
    let re = readme_regex();
    let rng = ring::rand::SystemRandom::new();
    for kind in [KeyKind::Secret, KeyKind::Publishable] {
        for env in [KeyEnv::Live, KeyEnv::Test] {
            for _ in 0..50 {
                let (_, key) = api_key::generate(kind, env, &rng).unwrap();
                assert!(re.is_match(key.expose()), "{kind:?} {env:?}");
            }
        }
    }
    let all = vectors();
    for v in all["printable_keys"].as_array().unwrap() {
        let key = text(v, "printable");
        assert!(re.is_match(key));
        for bad in [
            format!("{key}x"),
            key[..key.len() - 1].to_owned(),
            key.replacen("km_", "kn_", 1),
            key.replacen('_', "-", 1),
            format!(" {key}"),
        ] {
            assert!(!re.is_match(&bad), "{bad}");
        }
    }
}
