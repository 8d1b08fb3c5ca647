//! Signature edge cases: Ed25519.

use keymint_jwks::*;
use keymint_verifier::{BuildError, Verifier};
use serde_json::json;

use crate::common::{AUD, ISS, NOW, claims};
use crate::forge::{b64, signature_bytes, with_signature};
use crate::harness::{api, assert_invalid_dpop_proof};

/// Ed25519's group order L, little-endian.
const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

/// The encodings of the eight points of small order on edwards25519 (canonical), plus their
/// non-canonical encodings (`y` >= p, or the sign bit set on `x = 0`).
fn small_order_ed25519_encodings() -> Vec<[u8; 32]> {
    let mut y_values: Vec<[u8; 32]> = vec![
        // y = 0 (order 4), y = 1 (the identity), y = p - 1 (order 2).
        [0; 32],
        {
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        },
        {
            let mut b = [0xff; 32];
            b[0] = 0xec;
            b[31] = 0x7f;
            b
        },
        // The two y of the points of order 8.
        [
            0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef,
            0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88,
            0x6d, 0x53, 0xfc, 0x05,
        ],
        [
            0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10,
            0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77,
            0x92, 0xac, 0x03, 0x7a,
        ],
    ];
    // y = p (≡ 0) and y = p + 1 (≡ 1): non-canonical.
    for low in [0xed, 0xee] {
        let mut b = [0xff; 32];
        b[0] = low;
        b[31] = 0x7f;
        y_values.push(b);
    }
    // Each with the sign bit clear and set.
    y_values
        .iter()
        .flat_map(|y| {
            let mut neg = *y;
            neg[31] |= 0x80;
            [*y, neg]
        })
        .collect()
}

#[test]
fn ed25519_non_canonical_s_and_small_order_r_are_refused() {
    let api = api();
    let token = api.good();
    let sig = signature_bytes(&token);
    let (r, s) = sig.split_at(32);
    // S + L: the same scalar mod L, non-canonical (RFC 8032 §5.1.7 requires S < L).
    let mut s_plus_l = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(s[i]) + u16::from(ED25519_L[i]) + carry;
        s_plus_l[i] = v as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0, "S + L fits in 32 bytes since S < L < 2^253");
    api.assert_refused(
        &with_signature(&token, &[r, &s_plus_l[..]].concat()),
        "bad_signature",
        "S + L",
    );
    api.assert_refused(
        &with_signature(&token, &[r, &ED25519_L[..]].concat()),
        "bad_signature",
        "S = L",
    );
    api.assert_refused(
        &with_signature(&token, &[r, &[0xff; 32][..]].concat()),
        "bad_signature",
        "S = 2^256 - 1",
    );
    // R replaced by a point of small order (canonically encoded or not), with the genuine S and
    // with S = 0.
    for point in small_order_ed25519_encodings() {
        for s in [s, &[0u8; 32][..]] {
            api.assert_refused(
                &with_signature(&token, &[&point[..], s].concat()),
                "bad_signature",
                &format!("small-order R {}", b64(&point)),
            );
        }
    }
    // R with its sign bit flipped (a different point, or a non-canonical encoding).
    let mut flipped = r.to_vec();
    flipped[31] ^= 0x80;
    api.assert_refused(
        &with_signature(&token, &[&flipped[..], s].concat()),
        "bad_signature",
        "R with the sign bit flipped",
    );
}

/// A small-order Ed25519 public key verifies forged signatures: with the identity as the key,
/// `R = identity, S = 0` passes for every message. No such key may enter a key set, or be the key
/// of a DPoP proof.
#[test]
fn small_order_ed25519_keys_are_refused_at_jwk_parse_time() {
    for point in small_order_ed25519_encodings() {
        let x = b64(&point);
        let jwk = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}"}}"#);
        assert_eq!(
            Jwk::from_json(jwk.as_bytes()),
            Err(JwkError::SmallOrderPoint),
            "{x}"
        );
        let set = format!(r#"{{"keys":[{jwk}]}}"#);
        assert!(
            matches!(
                Jwks::from_json(set.as_bytes()),
                Err(JwksError::Key {
                    index: 0,
                    error: JwkError::SmallOrderPoint
                })
            ),
            "{x}"
        );
        // A verifier configured from such a published key set does not start.
        let dir = std::env::temp_dir().join(format!(
            "keymint-attack-{}-{}",
            std::process::id(),
            x.replace('-', "m")
        ));
        std::fs::write(&dir, &set).unwrap();
        let built = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
            .jwks_file(&dir)
            .build();
        std::fs::remove_file(&dir).unwrap();
        assert!(
            matches!(
                built,
                Err(BuildError::Keys(JwksError::Key {
                    index: 0,
                    error: JwkError::SmallOrderPoint
                }))
            ),
            "{x}: {built:?}"
        );
    }
}

/// A token bound (`cnf.jkt`) to the identity point, presented with a "proof" whose signature is
/// `R = identity, S = 0`: without the small-order check that proof verifies, for any request.
/// The issuer cannot tell a small-order key from its thumbprint (a client asks for `dpop_jkt`),
/// so the verifier must refuse the proof's key itself.
#[test]
fn a_dpop_proof_under_a_small_order_key_is_refused() {
    let api = api();
    let identity = small_order_ed25519_encodings()[2];
    assert_eq!(identity[0], 1);
    let x = b64(&identity);
    let jkt = thumbprint(&[("crv", "Ed25519"), ("kty", "OKP"), ("x", &x)]);
    let mut c = claims();
    c.cnf = Some(Confirmation {
        jkt: keymint_jwks::Jkt::new(jkt.to_string()).unwrap(),
    });
    let token = api.ed.sign_access_token(&c).unwrap();
    let proof_header =
        json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": x}});
    let proof_claims = json!({
        "jti": "small-order", "htm": "GET", "htu": api.orders_url(), "iat": NOW.0,
        "ath": dpop::access_token_hash(&token),
    });
    let mut forged_signature = [0u8; 64];
    forged_signature[0] = 1;
    let proof = format!(
        "{}.{}.{}",
        b64(proof_header.to_string().as_bytes()),
        b64(proof_claims.to_string().as_bytes()),
        b64(&forged_signature)
    );
    assert_invalid_dpop_proof(&api.dpop("GET", &token, &proof), "a small-order DPoP key");
}
