//! Crafting tokens.

use base64::Engine as _;
use keymint_jwks::jws::encode_segment;
use keymint_jwks::*;
use serde_json::{Map, Value, json};

use crate::common::claims;

pub(crate) fn b64(bytes: &[u8]) -> String {
    encode_segment(bytes)
}

pub(crate) fn header_of(signer: &Signer) -> Map<String, Value> {
    let h = json!({"alg": signer.key().algorithm().as_str(), "typ": "at+jwt", "kid": signer.key().kid().as_str()});
    h.as_object().unwrap().clone()
}

pub(crate) fn claims_of(c: &Claims) -> Map<String, Value> {
    serde_json::from_slice(&c.to_json()).unwrap()
}

/// Signs `payload` under a header given as raw JSON text (so that it can say what serde_json
/// would not: duplicate members, escapes).
pub(crate) fn sign_text(signer: &Signer, header: &str, payload: &[u8]) -> String {
    signer
        .sign_compact(&b64(header.as_bytes()), payload)
        .unwrap()
}

pub(crate) fn sign(
    signer: &Signer,
    header: &Map<String, Value>,
    claims: &Map<String, Value>,
) -> String {
    sign_text(
        signer,
        &Value::Object(header.clone()).to_string(),
        Value::Object(claims.clone()).to_string().as_bytes(),
    )
}

/// A token from `signer` with its header edited.
pub(crate) fn with_header(signer: &Signer, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut h = header_of(signer);
    edit(&mut h);
    sign(signer, &h, &claims_of(&claims()))
}

/// A token from `signer` with its claims edited.
pub(crate) fn with_claims(signer: &Signer, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut c = claims_of(&claims());
    edit(&mut c);
    sign(signer, &header_of(signer), &c)
}

pub(crate) fn segments(token: &str) -> (String, String, String) {
    let mut it = token.split('.').map(str::to_owned);
    (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
}

pub(crate) fn signature_bytes(token: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segments(token).2)
        .unwrap()
}

pub(crate) fn with_signature(token: &str, signature: &[u8]) -> String {
    let (h, p, _) = segments(token);
    format!("{h}.{p}.{}", b64(signature))
}
