//! Signature edge cases: ECDSA.

use keymint_jwks::*;

use crate::common::{ISS, NOW, claims};
use crate::forge::{segments, signature_bytes, with_signature};
use crate::harness::api;

/// P-256's group order n, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// `a - b` on 32-byte big-endian numbers, `a >= b`.
fn sub_be(a: &[u8], b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    assert_eq!(borrow, 0);
    out
}

/// `a + b` on 32-byte big-endian numbers (the caller checks the carry).
fn add_be(a: &[u8], b: &[u8]) -> ([u8; 32], bool) {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let s = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = s as u8;
        carry = s >> 8;
    }
    (out, carry != 0)
}

#[test]
fn ecdsa_signatures_out_of_range_or_in_der_form_are_refused() {
    let api = api();
    let token = api.es.sign_access_token(&claims()).unwrap();
    let sig = signature_bytes(&token);
    let (r, s) = sig.split_at(32);
    let join = |r: &[u8], s: &[u8]| [r, s].concat();
    let one = {
        let mut b = [0u8; 32];
        b[31] = 1;
        b
    };
    let n_plus_one = add_be(&P256_N, &one).0;
    let (r_plus_n, r_overflows) = add_be(r, &P256_N);
    let (s_plus_n, s_overflows) = add_be(s, &P256_N);
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("r = 0", join(&[0; 32], s)),
        ("s = 0", join(r, &[0; 32])),
        ("r = s = 0", vec![0; 64]),
        ("r = n", join(&P256_N, s)),
        ("s = n", join(r, &P256_N)),
        ("r = s = n", join(&P256_N, &P256_N)),
        ("r = n + 1", join(&n_plus_one, s)),
        ("s = n + 1", join(r, &n_plus_one)),
        ("r = 2^256 - 1", join(&[0xff; 32], s)),
        ("s = 2^256 - 1", join(r, &[0xff; 32])),
        ("r = 1, s = 1", join(&one, &one)),
        ("r and s swapped", join(s, r)),
    ];
    // r + n and s + n name the same residues; only when they fit in 32 bytes.
    if !r_overflows {
        cases.push(("r + n", join(&r_plus_n, s)));
    }
    if !s_overflows {
        cases.push(("s + n", join(r, &s_plus_n)));
    }
    for (what, forged) in &cases {
        api.assert_refused(&with_signature(&token, forged), "bad_signature", what);
    }
    // The same key's signature in ASN.1 DER form (as OpenSSL and JCA produce it), and raw
    // signatures of the wrong length.
    let (h, p, _) = segments(&token);
    let input = format!("{h}.{p}");
    let der_key = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        api.es.key().pkcs8_der(),
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    let der = der_key
        .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
        .unwrap();
    assert!(der.as_ref().len() > 64 && der.as_ref()[0] == 0x30);
    api.assert_refused(
        &with_signature(&token, der.as_ref()),
        "bad_signature",
        "DER signature",
    );
    let mut der_truncated = der.as_ref().to_vec();
    der_truncated.truncate(64);
    api.assert_refused(
        &with_signature(&token, &der_truncated),
        "bad_signature",
        "DER signature cut to 64 bytes",
    );
    api.assert_refused(
        &with_signature(&token, &sig[..63]),
        "bad_signature",
        "63 bytes",
    );
    api.assert_refused(
        &with_signature(&token, &[sig.as_slice(), &[0]].concat()),
        "bad_signature",
        "65 bytes",
    );
    api.assert_refused(
        &with_signature(&token, &[&[0u8][..], sig.as_slice()].concat()),
        "bad_signature",
        "leading zero byte",
    );
}

/// ECDSA is malleable: `(r, n - s)` verifies wherever `(r, s)` does. JOSE (RFC 7518 §3.4) does not
/// ask for low-s, and ring signs with either half, so the verifier accepts both, as every JOSE
/// verifier does. What this test pins down is that the twin is not a different token to keymint:
/// it carries the same claims, and revocation, which is keyed by `jti`, `sub`, `tenant` and `kid`
/// (never by the token's bytes), refuses it together with the original.
#[test]
fn an_ecdsa_high_s_twin_verifies_but_is_revoked_with_its_original() {
    let api = api();
    let token = api.es.sign_access_token(&claims()).unwrap();
    let sig = signature_bytes(&token);
    let (r, s) = sig.split_at(32);
    let twin = with_signature(&token, &[r, &sub_be(&P256_N, s)[..]].concat());
    assert_ne!(twin, token);
    api.assert_accepted(&token, "the original");
    api.assert_accepted(&twin, "its (r, n - s) twin");
    let list = api
        .ed
        .sign_revocation_list(&RevocationList {
            v: 1,
            iss: Issuer::new(ISS).unwrap(),
            serial: 2,
            iat: NOW,
            exp: UnixTime(NOW.0 + 86_400),
            entries: vec![RevocationEntry {
                target: RevocationTarget::Jti(claims().jti),
                revoked_at: NOW,
                drop_after: UnixTime(NOW.0 + 3_600),
            }],
        })
        .unwrap();
    api.verifier.update_revocations_at(list.jws(), NOW).unwrap();
    api.assert_refused(&token, "revoked", "the original, revoked by jti");
    api.assert_refused(&twin, "revoked", "its twin, revoked by the same jti");
}
