//! DPoP proofs (RFC 9449): parsing and checking the proof JWS itself. Comparing it with the request
//! (method, URL, time window, replay, token hash, nonce) is the caller's job, because only the caller
//! knows the request and keeps the replay cache.

use serde::Deserialize;

use crate::jws::{Compact, JwsError};
use crate::strict_json::{self, JsonError};
use crate::{Algorithm, Jkt, Jwk, UnixTime};

/// `typ` of a DPoP proof.
pub const TYP_DPOP: &str = "dpop+jwt";

/// Why a DPoP proof was refused (RFC 9449 §4.3). The caller answers `invalid_dpop_proof`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// Not a compact JWS, or oversized.
    #[error("DPoP proof: {0}")]
    Jws(JwsError),
    /// The header or claims are not valid JSON, or repeat a member.
    #[error("DPoP proof JSON: {0}")]
    Json(JsonError),
    /// `typ` is not `dpop+jwt`.
    #[error("DPoP proof `typ` must be dpop+jwt")]
    WrongType,
    /// The header has no usable public `jwk`.
    #[error("DPoP proof `jwk`: {0}")]
    BadKey(String),
    /// `alg` is missing, symmetric, `none`, or does not fit the key.
    #[error("DPoP proof `alg` is not EdDSA/ES256 matching its jwk")]
    BadAlgorithm,
    /// The signature does not verify with the header's key.
    #[error("DPoP proof signature does not verify")]
    BadSignature,
    /// A required claim is missing or has the wrong type.
    #[error("DPoP proof claim `{0}` is missing or invalid")]
    Claim(&'static str),
}

/// A proof whose signature checked out against its own embedded key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopProof {
    /// RFC 7638 thumbprint of the proof's key: what `cnf.jkt` binds a token to.
    pub jkt: Jkt,
    /// Unique proof ID, for the replay cache.
    pub jti: String,
    /// HTTP method the proof is for.
    pub htm: String,
    /// HTTP URL (without query and fragment) the proof is for.
    pub htu: String,
    /// When the proof was made.
    pub iat: UnixTime,
    /// base64url SHA-256 of the access token, for requests to a resource server.
    pub ath: Option<String>,
    /// The server-provided nonce, if any.
    pub nonce: Option<String>,
}

#[derive(Deserialize)]
struct RawHeader {
    typ: Option<String>,
    alg: Option<String>,
    jwk: Option<serde_json::Value>,
    /// Whether `crit` is there at all (even `null`): keymint understands no critical extension,
    /// and RFC 7515 §4.1.11 says to refuse a JWS that lists one.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

#[derive(Deserialize)]
struct RawClaims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<u64>,
    ath: Option<String>,
    nonce: Option<String>,
}

/// Largest proof accepted.
pub const MAX_PROOF_LEN: usize = 4096;

/// Parses a proof and checks its signature against the key in its own header, with the algorithm
/// pinned by that key. Nothing about the request is checked here.
pub fn parse_proof(proof: &str) -> Result<DpopProof, DpopError> {
    let compact = Compact::split(proof, MAX_PROOF_LEN).map_err(DpopError::Jws)?;
    let header_bytes =
        crate::jws::decode_segment(compact.header, "header").map_err(DpopError::Jws)?;
    let header: RawHeader = strict_json::from_slice(&header_bytes).map_err(DpopError::Json)?;
    if header.typ.as_deref() != Some(TYP_DPOP) {
        return Err(DpopError::WrongType);
    }
    if header.crit {
        return Err(DpopError::Jws(JwsError::UnknownCritical));
    }
    let jwk_json = header
        .jwk
        .ok_or_else(|| DpopError::BadKey("missing".into()))?
        .to_string();
    let jwk = Jwk::from_json(jwk_json.as_bytes()).map_err(|e| DpopError::BadKey(e.to_string()))?;
    let alg = header.alg.ok_or(DpopError::BadAlgorithm)?;
    let key_alg = jwk.key().algorithm();
    if !key_alg.matches_header(&alg) || !matches!(key_alg, Algorithm::EdDsa | Algorithm::Es256) {
        return Err(DpopError::BadAlgorithm);
    }
    let signature = compact
        .decode_signature64()
        .map_err(|_| DpopError::BadSignature)?;
    jwk.key()
        .verify(compact.signing_input.as_bytes(), &signature)
        .map_err(|_| DpopError::BadSignature)?;
    let payload = compact.decode_payload().map_err(DpopError::Jws)?;
    let c: RawClaims = strict_json::from_slice(&payload).map_err(DpopError::Json)?;
    let short = |v: Option<String>, name: &'static str, max: usize| {
        v.filter(|s| !s.is_empty() && s.len() <= max)
            .ok_or(DpopError::Claim(name))
    };
    Ok(DpopProof {
        // The thumbprint of the key as presented, whatever `kid` it may carry.
        jkt: Jkt::from_validated(jwk.key().thumbprint().to_string()),
        jti: short(c.jti, "jti", 256)?,
        htm: short(c.htm, "htm", 16)?,
        htu: short(c.htu, "htu", 2048)?,
        iat: UnixTime(c.iat.ok_or(DpopError::Claim("iat"))?),
        ath: c.ath,
        nonce: c.nonce,
    })
}

/// base64url(SHA-256(access token)), the `ath` a proof for a resource request must carry.
pub fn access_token_hash(token: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    crate::jws::encode_segment(d.as_ref())
}

/// Normalises a URL for `htu` comparison (RFC 9449 §4.3): scheme and host lowercase, no query, no
/// fragment.
pub fn normalize_htu(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            format!(
                "{}://{}{}",
                scheme.to_ascii_lowercase(),
                authority.to_ascii_lowercase(),
                if path.is_empty() { "/" } else { path }
            )
        }
        None => url.to_owned(),
    }
}

/// Makes a proof: for clients and tests. Signs with `key` and embeds its public JWK.
pub fn make_proof(
    key: &crate::SigningKey,
    htm: &str,
    htu: &str,
    iat: UnixTime,
    jti: &str,
    ath: Option<&str>,
    nonce: Option<&str>,
) -> Result<String, crate::KeyError> {
    let mut jwk = key.public_jwk().to_json_value();
    if let Some(obj) = jwk.as_object_mut() {
        obj.remove("kid");
        obj.remove("use");
    }
    let header = serde_json::json!({"typ": TYP_DPOP, "alg": key.algorithm().as_str(), "jwk": jwk});
    let mut claims = serde_json::json!({"jti": jti, "htm": htm, "htu": htu, "iat": iat.0});
    if let (Some(obj), Some(a)) = (claims.as_object_mut(), ath) {
        obj.insert("ath".into(), a.into());
    }
    if let (Some(obj), Some(n)) = (claims.as_object_mut(), nonce) {
        obj.insert("nonce".into(), n.into());
    }
    let signer = crate::Signer::new(crate::SigningKey::from_pkcs8(
        key.algorithm(),
        key.pkcs8_der(),
    )?);
    signer.sign_compact(
        &crate::jws::encode_segment(header.to_string().as_bytes()),
        claims.to_string().as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningKey;

    #[test]
    fn proofs_round_trip_for_both_algorithms() {
        for alg in [Algorithm::EdDsa, Algorithm::Es256] {
            let key = SigningKey::generate(alg).unwrap();
            let p = make_proof(
                &key,
                "POST",
                "https://as.example/token",
                UnixTime(100),
                "j1",
                Some("ath"),
                None,
            )
            .unwrap();
            let parsed = parse_proof(&p).unwrap();
            assert_eq!(parsed.jkt.as_str(), key.kid().as_str());
            assert_eq!(
                (parsed.htm.as_str(), parsed.htu.as_str(), parsed.iat),
                ("POST", "https://as.example/token", UnixTime(100))
            );
            assert_eq!(parsed.ath.as_deref(), Some("ath"));
        }
    }

    #[test]
    fn tampered_foreign_and_malformed_proofs_are_refused() {
        let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let p = make_proof(
            &key,
            "POST",
            "https://as.example/token",
            UnixTime(100),
            "j1",
            None,
            None,
        )
        .unwrap();
        let mut parts: Vec<String> = p.split('.').map(str::to_owned).collect();
        parts[1] = crate::jws::encode_segment(
            br#"{"jti":"j2","htm":"POST","htu":"https://as.example/token","iat":100}"#,
        );
        assert_eq!(parse_proof(&parts.join(".")), Err(DpopError::BadSignature));
        assert!(matches!(parse_proof("a.b"), Err(DpopError::Jws(_))));
        // An access token is not a proof.
        let signer = crate::Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
        let h = crate::jws::encode_segment(br#"{"typ":"at+jwt","alg":"EdDSA","jwk":{}}"#);
        assert_eq!(
            parse_proof(&signer.sign_compact(&h, b"{}").unwrap()),
            Err(DpopError::WrongType)
        );
        // A private key in the header is refused.
        let h = crate::jws::encode_segment(
            br#"{"typ":"dpop+jwt","alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}}"#,
        );
        assert!(matches!(
            parse_proof(&signer.sign_compact(&h, b"{}").unwrap()),
            Err(DpopError::BadKey(_))
        ));
        // HS256 and alg/key mismatches.
        let jwk = key.public_jwk().to_json_value();
        for alg in ["HS256", "none", "ES256"] {
            let h = serde_json::json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk});
            let t = signer
                .sign_compact(&crate::jws::encode_segment(h.to_string().as_bytes()), b"{}")
                .unwrap();
            assert_eq!(parse_proof(&t), Err(DpopError::BadAlgorithm), "{alg}");
        }
    }

    #[test]
    fn a_proof_with_critical_extensions_is_refused() {
        let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let signer =
            crate::Signer::new(SigningKey::from_pkcs8(key.algorithm(), key.pkcs8_der()).unwrap());
        let jwk = key.public_jwk().to_json_value();
        let claims = br#"{"jti":"j1","htm":"POST","htu":"https://as.example/token","iat":100}"#;
        for crit in [
            serde_json::json!(["b64"]),
            serde_json::json!([]),
            serde_json::Value::Null,
        ] {
            let h = serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk, "crit": crit, "b64": false});
            let p = signer
                .sign_compact(
                    &crate::jws::encode_segment(h.to_string().as_bytes()),
                    claims,
                )
                .unwrap();
            assert_eq!(
                parse_proof(&p),
                Err(DpopError::Jws(JwsError::UnknownCritical)),
                "crit {crit}"
            );
        }
        // The same proof without `crit` is fine.
        let h = serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk});
        let p = signer
            .sign_compact(
                &crate::jws::encode_segment(h.to_string().as_bytes()),
                claims,
            )
            .unwrap();
        assert!(parse_proof(&p).is_ok());
    }

    #[test]
    fn htu_normalisation() {
        assert_eq!(
            normalize_htu("HTTPS://API.Example/Orders?x=1#f"),
            "https://api.example/Orders"
        );
        assert_eq!(normalize_htu("https://api.example"), "https://api.example/");
    }

    #[test]
    fn ath_is_the_sha256_of_the_token() {
        // RFC 9449 §7.1 example: the hash of "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU".
        assert_eq!(
            access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }
}
