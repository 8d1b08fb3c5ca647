//! RFC 7638 JWK thumbprints, keymint's `kid`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;

use crate::Kid;

/// Computes the RFC 7638 SHA-256 thumbprint of a JWK from its required members.
///
/// `members` must be the key type's required members (RFC 7638 §3.2), already in lexicographic
/// order by name, as the RFC's canonical form demands; values are JSON strings. The result is
/// base64url without padding, which always makes a valid [`Kid`].
///
/// This is generic so that the RFC 7638 §3.1 RSA vector can be checked even though keymint does not
/// accept RSA keys.
pub fn thumbprint(members: &[(&str, &str)]) -> Kid {
    debug_assert!(members.is_sorted_by_key(|(name, _)| *name));
    let mut canonical = String::with_capacity(128);
    canonical.push('{');
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 {
            canonical.push(',');
        }
        push_json_string(&mut canonical, name);
        canonical.push(':');
        push_json_string(&mut canonical, value);
    }
    canonical.push('}');
    let hash = digest::digest(&digest::SHA256, canonical.as_bytes());
    let encoded = URL_SAFE_NO_PAD.encode(hash.as_ref());
    // 43 base64url characters are always a valid kid.
    Kid::from_validated(encoded)
}

fn push_json_string(out: &mut String, s: &str) {
    // serde_json never fails to serialize a &str.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1: the thumbprint of the RSA key from RFC 7517 Appendix A.1.
    #[test]
    fn rfc7638_section_3_1_vector() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let kid = thumbprint(&[("e", "AQAB"), ("kty", "RSA"), ("n", n)]);
        assert_eq!(kid.as_str(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    /// RFC 8037 Appendix A.3: the thumbprint of the Ed25519 key from Appendix A.2.
    #[test]
    fn rfc8037_appendix_a3_vector() {
        let kid = thumbprint(&[
            ("crv", "Ed25519"),
            ("kty", "OKP"),
            ("x", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
        ]);
        assert_eq!(kid.as_str(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }
}
