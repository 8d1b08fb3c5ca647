//! Public points keymint refuses in a key set: Ed25519 points of small order (a signature "valid"
//! under such a key says nothing about who made it) and P-256 points that are not on the curve.

use crate::JwkError;

/// The `y` coordinates (little-endian, sign bit cleared) of the Ed25519 points of small order: the
/// eight such points have five distinct `y`, and `y = p` and `y = p + 1` are non-canonical
/// encodings of two of them. The same list as libsodium's `ge25519_has_small_order`.
pub(crate) const ED25519_SMALL_ORDER_Y: [[u8; 32]; 7] = {
    let mut p_minus_1 = [0xff; 32];
    p_minus_1[0] = 0xec;
    p_minus_1[31] = 0x7f;
    let mut p = p_minus_1;
    p[0] = 0xed;
    let mut p_plus_1 = p_minus_1;
    p_plus_1[0] = 0xee;
    let mut one = [0; 32];
    one[0] = 1;
    [
        // y = 0: the two points of order 4 (x = ±sqrt(-1)).
        [0; 32],
        // y = 1: the identity (order 1).
        one,
        // The points of order 8, two for each y.
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
        // y = p - 1 = -1: the point of order 2.
        p_minus_1,
        // y = p ≡ 0 and y = p + 1 ≡ 1: non-canonical encodings of the points above.
        p,
        p_plus_1,
    ]
};

/// Whether an encoded Ed25519 point has small order, with either sign bit (the sign bit of a
/// point with `x = 0` is itself a non-canonical encoding). ring verifies against any point it can
/// decode and has no check of its own; a public key's bytes are not secret, so a plain comparison
/// is fine.
pub(crate) fn ed25519_small_order(encoded: &[u8]) -> bool {
    let Some((&last, rest)) = encoded.split_last() else {
        return false;
    };
    ED25519_SMALL_ORDER_Y.iter().any(|y| {
        y.split_last()
            .is_some_and(|(&y_last, y_rest)| y_rest == rest && y_last == last & 0x7f)
    })
}

/// ring validates a peer's public point before ECDH, and has no other public way to do it: an
/// agreement with a throwaway key fails exactly when the point is not on P-256.
pub(crate) fn p256_point_on_curve(uncompressed: &[u8]) -> Result<(), JwkError> {
    use ring::agreement;
    let rng = ring::rand::SystemRandom::new();
    let ours = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng)
        .map_err(|_| JwkError::PointNotOnCurve)?;
    let theirs = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, uncompressed);
    agreement::agree_ephemeral(ours, &theirs, |_| ()).map_err(|_| JwkError::PointNotOnCurve)
}
