//! Writes the verifier conformance corpus (`tests/fixtures/conformance/`, format in its README):
//! key sets, signed revocation lists and one JSON file per case, each with pinned times and the
//! outcome every verifier (Rust, Node, Python) must give, with its reason code.
//!
//! Run once and commit the output; ES256 signatures are not deterministic, so CI runs the committed
//! corpus and never regenerates it:
//!
//! `cargo run -p keymint-tools --bin conformance-corpus -- tests/fixtures/conformance`
//!
//! The expectations here come from the format's rules (docs/revocation-list.md, SPEC), not from
//! running a verifier: a case is written so that exactly one rule decides it, unless the case is
//! about the order of two rules.

use std::error::Error;
use std::path::PathBuf;

use keymint_jwks::jws::encode_segment;
use keymint_jwks::{Algorithm, Jwk, Jwks, Signer, SigningKey, dpop};
use serde_json::{Value, json};

type Res<T> = Result<T, Box<dyn Error>>;

const ISS: &str = "https://issuer.conformance.test";
const AUD: &str = "https://api.conformance.test";
const AUD2: &str = "https://other.conformance.test";
const T0: u64 = 1_800_000_000;
/// When token cases verify: 100 s after the tokens' `iat`.
const NOW: u64 = T0 + 100;
const DAY: u64 = 86_400;
const SUB: &str = "CfTk9aZ3bQ7xLm2P";
const REVOKED_SUB: &str = "RvK3y9Qx2Lm7Pa4B";
const HTU: &str = "https://api.conformance.test/orders";
const LEEWAY: u64 = 60;

struct Keys {
    ed: Signer,
    es: Signer,
    /// Not in `jwks/main.json`: an unknown `kid` there; in `jwks/rotated.json` it replaces `ed`.
    ed2: Signer,
    dpop_ed: SigningKey,
    dpop_es: SigningKey,
}

struct Corpus {
    dir: PathBuf,
    keys: std::rc::Rc<Keys>,
    cases: Vec<(String, Value)>,
    /// Appended to every case name (the signing algorithm of functions run once per key).
    suffix: &'static str,
}

fn b64(s: &str) -> String {
    encode_segment(s.as_bytes())
}

fn alg_of(s: &Signer) -> &'static str {
    s.key().algorithm().as_str()
}

fn kid_of(s: &Signer) -> String {
    s.key().kid().as_str().to_owned()
}

/// Signs `payload` (JSON text, kept byte for byte) under `header` (JSON text).
fn sign_raw(s: &Signer, header: &str, payload: &str) -> Res<String> {
    Ok(s.sign_compact(&b64(header), payload.as_bytes())?)
}

fn token_header(s: &Signer) -> Value {
    json!({"alg": alg_of(s), "kid": kid_of(s), "typ": "at+jwt"})
}

fn claims() -> Value {
    json!({
        "iss": ISS, "sub": SUB, "aud": AUD, "exp": T0 + 600, "iat": T0, "nbf": T0,
        "jti": "jti-conformance-0001", "client_id": SUB, "scope": "orders:read orders:write",
        "tenant": "acme"
    })
}

fn with(mut v: Value, changes: &[(&str, Value)]) -> Value {
    if let Some(o) = v.as_object_mut() {
        for (k, val) in changes {
            if val.is_null() {
                o.remove(*k);
            } else {
                o.insert((*k).to_owned(), val.clone());
            }
        }
    }
    v
}

/// A JSON object's text without its opening brace, to put members in front of it.
fn members(v: &Value) -> String {
    let s = v.to_string();
    s.strip_prefix('{').unwrap_or(&s).to_owned()
}

fn token(s: &Signer, claims: &Value) -> Res<String> {
    sign_raw(s, &token_header(s).to_string(), &claims.to_string())
}

fn list_payload(serial: u64, iat: u64, exp: u64, entries: Value) -> Value {
    json!({"v": 1, "iss": ISS, "serial": serial, "iat": iat, "exp": exp, "entries": entries})
}

fn list_header(s: &Signer) -> Value {
    json!({"alg": alg_of(s), "kid": kid_of(s), "typ": "keymint-revocations+jwt"})
}

fn list(s: &Signer, payload: &Value) -> Res<String> {
    sign_raw(s, &list_header(s).to_string(), &payload.to_string())
}

fn entry(kind: &str, id: &str, revoked_at: u64) -> Value {
    json!({"kind": kind, "id": id, "revoked_at": revoked_at, "drop_after": revoked_at + 3600})
}

/// Flips one bit of the signature's first byte, keeping valid base64url.
fn tamper(jws: &str) -> String {
    let (head, sig) = jws.rsplit_once('.').unwrap_or((jws, ""));
    let mut bytes: Vec<char> = sig.chars().collect();
    if let Some(c) = bytes.first_mut() {
        *c = if *c == 'A' { 'B' } else { 'A' };
    }
    format!("{head}.{}", bytes.into_iter().collect::<String>())
}

fn installed(at: u64, list: &str) -> Value {
    json!({"at": at, "list": {"file": list}, "expect": "installed"})
}

fn offer(at: u64, jws: &str, expect: Value) -> Value {
    json!({"at": at, "list": {"jws": jws}, "expect": expect})
}

fn refused(code: &str) -> Value {
    json!({"refused": code})
}

fn verify(at: u64, token: &str, expect: Value) -> Value {
    json!({"at": at, "token": token, "expect": expect})
}

fn invalid(code: &str) -> Value {
    json!({"invalid": code})
}

fn valid() -> Value {
    json!({"valid": {"sub": SUB, "tenant": "acme", "scope": "orders:read orders:write", "jti": "jti-conformance-0001"}})
}

fn valid_sub(sub: &str) -> Value {
    json!({"valid": {"sub": sub}})
}

/// The base list (serial 100, no entries, valid for a day from T0) then one verification at NOW.
fn one_token(token: &str, expect: Value) -> Vec<Value> {
    vec![
        installed(T0 + 1, "lists/base.jws"),
        verify(NOW, token, expect),
    ]
}

impl Corpus {
    fn add(&mut self, name: &str, description: &str, steps: Vec<Value>) {
        self.add_with(name, description, json!({}), "jwks/main.json", steps);
    }

    fn add_with(
        &mut self,
        name: &str,
        description: &str,
        config: Value,
        jwks: &str,
        steps: Vec<Value>,
    ) {
        let mut verifier = json!({"issuer": ISS, "audiences": [AUD], "leeway": LEEWAY});
        if let (Some(v), Some(c)) = (verifier.as_object_mut(), config.as_object()) {
            for (k, val) in c {
                v.insert(k.clone(), val.clone());
            }
        }
        let n = self.cases.len() + 1;
        self.cases.push((
            format!("{n:03}-{name}{}.json", self.suffix),
            json!({"description": description, "verifier": verifier, "jwks": jwks, "steps": steps}),
        ));
    }

    fn write(&self, rel: &str, contents: &str) -> Res<()> {
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, contents)?;
        Ok(())
    }
}

fn jwks_json(signers: &[&Signer]) -> Res<String> {
    let keys: Vec<Jwk> = signers.iter().map(|s| s.key().public_jwk()).collect();
    let v: Value = serde_json::from_str(&Jwks::new(keys)?.to_json())?;
    Ok(serde_json::to_string_pretty(&v)? + "\n")
}

fn main() -> Res<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "tests/fixtures/conformance".into()),
    );
    let keys = Keys {
        ed: Signer::new(SigningKey::ed25519_from_seed(&[1; 32])?),
        es: Signer::new(SigningKey::generate(Algorithm::Es256)?),
        ed2: Signer::new(SigningKey::ed25519_from_seed(&[2; 32])?),
        dpop_ed: SigningKey::ed25519_from_seed(&[3; 32])?,
        dpop_es: SigningKey::generate(Algorithm::Es256)?,
    };
    let mut c = Corpus {
        dir,
        keys: std::rc::Rc::new(keys),
        cases: Vec::new(),
        suffix: "",
    };
    for sub in ["cases", "jwks", "lists"] {
        let d = c.dir.join(sub);
        if d.exists() {
            std::fs::remove_dir_all(&d)?;
        }
    }
    c.write("jwks/main.json", &jwks_json(&[&c.keys.ed, &c.keys.es])?)?;
    c.write("jwks/rotated.json", &jwks_json(&[&c.keys.ed2, &c.keys.es])?)?;
    c.write(
        "jwks/with-ed2.json",
        &jwks_json(&[&c.keys.ed, &c.keys.es, &c.keys.ed2])?,
    )?;
    let base = list(&c.keys.ed, &list_payload(100, T0, T0 + DAY, json!([])))?;
    c.write("lists/base.jws", &base)?;
    // One list per algorithm: signed by that algorithm's key, revoking the other key's kid, so the
    // tokens of the key under test are revoked only by the entry a case is about.
    for (name, signer, other) in [
        ("eddsa", &c.keys.ed, &c.keys.es),
        ("es256", &c.keys.es, &c.keys.ed),
    ] {
        let revocations = list(
            signer,
            &list_payload(
                101,
                T0 + 50,
                T0 + 50 + DAY,
                json!([
                    entry("key", REVOKED_SUB, T0 + 40),
                    entry("jti", "jti-revoked-0001", T0 + 40),
                    entry("tenant", "evil-corp", T0 + 40),
                    entry("kid", &kid_of(other), T0 + 40),
                ]),
            ),
        )?;
        c.write(&format!("lists/revocations-{name}.jws"), &revocations)?;
    }

    tokens_good(&mut c)?;
    tokens_shape(&mut c)?;
    tokens_header(&mut c)?;
    tokens_claims(&mut c)?;
    for (suffix, alg) in [("-eddsa", Algorithm::EdDsa), ("-es256", Algorithm::Es256)] {
        c.suffix = suffix;
        tokens_time(&mut c, alg)?;
        tokens_revoked(&mut c, alg)?;
        tokens_dpop(&mut c, alg)?;
        tokens_policy(&mut c, alg)?;
    }
    c.suffix = "";
    lists(&mut c)?;

    for (name, case) in &c.cases {
        c.write(
            &format!("cases/{name}"),
            &(serde_json::to_string_pretty(case)? + "\n"),
        )?;
    }
    eprintln!("wrote {} cases to {}", c.cases.len(), c.dir.display());
    Ok(())
}

fn signers(keys: &Keys) -> [(&'static str, &Signer); 2] {
    [("eddsa", &keys.ed), ("es256", &keys.es)]
}

fn tokens_good(c: &mut Corpus) -> Res<()> {
    let keys = std::rc::Rc::clone(&c.keys);
    for (name, s) in signers(&keys) {
        let t = token(s, &claims())?;
        c.add(
            &format!("valid-{name}"),
            &format!("a well-formed {name} token is accepted"),
            one_token(&t, valid()),
        );
        let no_nbf = token(s, &with(claims(), &[("nbf", Value::Null)]))?;
        c.add(
            &format!("valid-without-nbf-{name}"),
            "nbf is optional",
            one_token(&no_nbf, valid()),
        );
        for typ in ["application/at+jwt", "AT+JWT", "Application/At+Jwt"] {
            let h = json!({"alg": alg_of(s), "kid": kid_of(s), "typ": typ});
            let t = sign_raw(s, &h.to_string(), &claims().to_string())?;
            c.add(
                &format!("valid-typ-{}-{name}", typ.replace(['/', '+'], "-").to_lowercase()),
                "typ is compared case-insensitively, with an optional application/ prefix (RFC 9068 §4)",
                one_token(&t, valid()),
            );
        }
        let unknown_member = token(
            s,
            &with(claims(), &[("x-extra", json!({"nested": [1, 2, 3]}))]),
        )?;
        c.add(
            &format!("valid-unknown-claim-{name}"),
            "claims the verifier does not know are ignored",
            one_token(&unknown_member, valid()),
        );
    }
    let h = json!({"alg": "Ed25519", "kid": kid_of(&keys.ed), "typ": "at+jwt"});
    let t = sign_raw(&keys.ed, &h.to_string(), &claims().to_string())?;
    c.add(
        "valid-alg-ed25519-synonym",
        "the fully specified alg Ed25519 is accepted for an Ed25519 key",
        one_token(&t, valid()),
    );
    // A second accepted audience.
    let t = token(&keys.ed, &with(claims(), &[("aud", json!(AUD2))]))?;
    c.add_with(
        "valid-second-audience",
        "a token for any one of the configured audiences is accepted",
        json!({"audiences": [AUD, AUD2]}),
        "jwks/main.json",
        one_token(&t, valid()),
    );
    // The same token verified twice (a verifier may answer from its cache) stays valid.
    let t = token(&keys.ed, &claims())?;
    c.add(
        "valid-twice",
        "a token verified twice is accepted twice",
        vec![
            installed(T0 + 1, "lists/base.jws"),
            verify(NOW, &t, valid()),
            verify(NOW + 1, &t, valid()),
        ],
    );
    Ok(())
}

fn tokens_shape(c: &mut Corpus) -> Res<()> {
    let keys = std::rc::Rc::clone(&c.keys);
    let good = token(&keys.ed, &claims())?;
    let mut parts = good.split('.');
    let (h, p, s) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("one-segment", h.to_owned(), "malformed"),
        ("two-segments", format!("{h}.{p}"), "malformed"),
        ("four-segments", format!("{h}.{p}.{s}.{s}"), "malformed"),
        ("empty", String::new(), "malformed"),
        ("padded-base64", format!("{h}=.{p}.{s}"), "malformed"),
        (
            "standard-base64-chars",
            format!("{h}.{p}+/.{s}"),
            "malformed",
        ),
        ("whitespace", format!("{h}. {p}.{s}"), "malformed"),
        (
            "header-not-json",
            format!("{}.{p}.{s}", b64("not json")),
            "malformed",
        ),
        (
            "header-array",
            format!("{}.{p}.{s}", b64("[1,2]")),
            "malformed",
        ),
    ];
    for (name, t, code) in cases {
        c.add(
            &format!("shape-{name}"),
            "not a compact JWS of JSON objects",
            one_token(&t, invalid(code)),
        );
    }
    // Payload problems behind a valid signature.
    for (name, payload) in [
        ("payload-not-json", "this is not json".to_owned()),
        ("payload-array", "[1,2,3]".to_owned()),
        ("payload-trailing-garbage", format!("{} x", claims())),
    ] {
        let t = sign_raw(&keys.ed, &token_header(&keys.ed).to_string(), &payload)?;
        c.add(
            &format!("shape-{name}"),
            "a signed payload that is not one JSON object",
            one_token(&t, invalid("malformed")),
        );
    }
    // Oversize: refused before parsing, whatever it contains.
    let big = token(
        &keys.ed,
        &with(claims(), &[("padding", json!("x".repeat(9000)))]),
    )?;
    c.add(
        "shape-oversize",
        "a token longer than max_token_bytes (8192) is refused before parsing",
        one_token(&big, invalid("oversize")),
    );
    let garbage = "a".repeat(9000);
    c.add(
        "shape-oversize-garbage",
        "size is checked before shape",
        one_token(&garbage, invalid("oversize")),
    );
    let medium = token(
        &keys.ed,
        &with(claims(), &[("padding", json!("x".repeat(1500)))]),
    )?;
    c.add_with(
        "shape-oversize-configured",
        "max_token_bytes is configurable",
        json!({"max_token_bytes": 1024}),
        "jwks/main.json",
        one_token(&medium, invalid("oversize")),
    );
    // Duplicate members: JSON.parse and json.loads keep the last one silently.
    let dup_payload = format!("{{\"sub\":\"{REVOKED_SUB}\",{}", members(&claims()));
    let t = sign_raw(&keys.ed, &token_header(&keys.ed).to_string(), &dup_payload)?;
    c.add(
        "dup-payload-sub",
        "a payload repeating `sub` is refused (a parser keeping either one would be fooled)",
        one_token(&t, invalid("duplicate_member")),
    );
    let dup_nested = sign_raw(
        &keys.ed,
        &token_header(&keys.ed).to_string(),
        &format!("{{\"x\":{{\"a\":1,\"a\":2}},{}", members(&claims())),
    )?;
    c.add(
        "dup-payload-nested",
        "a duplicate member in a nested object is refused too",
        one_token(&dup_nested, invalid("duplicate_member")),
    );
    let dup_header = format!(
        "{{\"alg\":\"EdDSA\",\"kid\":\"{0}\",\"kid\":\"{0}\",\"typ\":\"at+jwt\"}}",
        kid_of(&keys.ed)
    );
    let t = sign_raw(&keys.ed, &dup_header, &claims().to_string())?;
    c.add(
        "dup-header-kid",
        "a header repeating `kid` is refused",
        one_token(&t, invalid("duplicate_member")),
    );
    let dup_alg = format!(
        "{{\"alg\":\"none\",\"alg\":\"EdDSA\",\"kid\":\"{}\",\"typ\":\"at+jwt\"}}",
        kid_of(&keys.ed)
    );
    let t = sign_raw(&keys.ed, &dup_alg, &claims().to_string())?;
    c.add(
        "dup-header-alg",
        "a header repeating `alg` is refused",
        one_token(&t, invalid("duplicate_member")),
    );
    // Escaped member names are the same member.
    let escaped = sign_raw(
        &keys.ed,
        &token_header(&keys.ed).to_string(),
        &format!("{{\"s\\u0075b\":\"{REVOKED_SUB}\",{}", members(&claims())),
    )?;
    c.add(
        "dup-payload-escaped-name",
        "`s\\u0075b` and `sub` are the same member name",
        one_token(&escaped, invalid("duplicate_member")),
    );
    Ok(())
}

fn tokens_header(c: &mut Corpus) -> Res<()> {
    let keys = std::rc::Rc::clone(&c.keys);
    for (name, s) in signers(&keys) {
        let kid = kid_of(s);
        let alg = alg_of(s);
        let body = claims().to_string();
        let hdr = |v: Value| v.to_string();
        let mut cases: Vec<(String, String, &str)> = vec![
            (
                "typ-jwt".into(),
                hdr(json!({"alg": alg, "kid": kid, "typ": "JWT"})),
                "wrong_typ",
            ),
            (
                "typ-missing".into(),
                hdr(json!({"alg": alg, "kid": kid})),
                "wrong_typ",
            ),
            (
                "typ-revocation-list".into(),
                hdr(json!({"alg": alg, "kid": kid, "typ": "keymint-revocations+jwt"})),
                "wrong_typ",
            ),
            (
                "typ-dpop".into(),
                hdr(json!({"alg": alg, "kid": kid, "typ": "dpop+jwt"})),
                "wrong_typ",
            ),
            (
                "kid-missing".into(),
                hdr(json!({"alg": alg, "typ": "at+jwt"})),
                "missing_kid",
            ),
            (
                "kid-unknown".into(),
                hdr(json!({"alg": alg, "kid": "not-a-kid-in-the-set", "typ": "at+jwt"})),
                "unknown_kid",
            ),
            (
                "crit".into(),
                hdr(json!({"alg": alg, "kid": kid, "typ": "at+jwt", "crit": ["exp"]})),
                "unknown_crit",
            ),
        ];
        for member in ["jku", "x5u"] {
            cases.push((
                format!("forbidden-{member}"),
                hdr(
                    json!({"alg": alg, "kid": kid, "typ": "at+jwt", member: "https://attacker.test/keys"}),
                ),
                "forbidden_header",
            ));
        }
        cases.push((
            "forbidden-jwk".into(),
            hdr(
                json!({"alg": alg, "kid": kid, "typ": "at+jwt", "jwk": s.key().public_jwk().to_json_value()}),
            ),
            "forbidden_header",
        ));
        cases.push((
            "forbidden-x5c".into(),
            hdr(json!({"alg": alg, "kid": kid, "typ": "at+jwt", "x5c": ["MIIB"]})),
            "forbidden_header",
        ));
        for bad in ["none", "HS256", "RS256", "ES384", "eddsa"] {
            cases.push((
                format!("alg-{}", bad.to_lowercase()),
                hdr(json!({"alg": bad, "kid": kid, "typ": "at+jwt"})),
                "unsupported_alg",
            ));
        }
        let other = if alg == "EdDSA" { "ES256" } else { "EdDSA" };
        cases.push((
            "alg-mismatch".into(),
            hdr(json!({"alg": other, "kid": kid, "typ": "at+jwt"})),
            "alg_mismatch",
        ));
        for (case, header, code) in cases {
            let t = sign_raw(s, &header, &body)?;
            c.add(
                &format!("header-{case}-{name}"),
                &format!("header rule: {code}"),
                one_token(&t, invalid(code)),
            );
        }
        // Signatures.
        let good = token(s, &claims())?;
        c.add(
            &format!("sig-tampered-{name}"),
            "one bit of the signature flipped",
            one_token(&tamper(&good), invalid("bad_signature")),
        );
        let (signing_input, _) = good.rsplit_once('.').unwrap_or((&good, ""));
        let other_claims = with(
            claims(),
            &[("scope", json!("orders:read orders:write admin"))],
        );
        let resigned = token(s, &other_claims)?;
        let (_, other_sig) = resigned.rsplit_once('.').unwrap_or(("", ""));
        c.add(
            &format!("sig-from-other-token-{name}"),
            "a genuine signature of another token by the same key",
            one_token(
                &format!("{signing_input}.{other_sig}"),
                invalid("bad_signature"),
            ),
        );
        let (h, _) = signing_input.split_once('.').unwrap_or(("", ""));
        let forged_payload = b64(&with(claims(), &[("tenant", json!("other-tenant"))]).to_string());
        let (_, sig) = good.rsplit_once('.').unwrap_or(("", ""));
        c.add(
            &format!("sig-payload-swapped-{name}"),
            "the payload changed under a genuine signature",
            one_token(
                &format!("{h}.{forged_payload}.{sig}"),
                invalid("bad_signature"),
            ),
        );
        c.add(
            &format!("sig-empty-{name}"),
            "an empty signature",
            one_token(&format!("{signing_input}."), invalid("bad_signature")),
        );
        c.add(
            &format!("sig-short-{name}"),
            "a signature of the wrong length",
            one_token(
                &format!("{signing_input}.{}", encode_segment(&[7u8; 32])),
                invalid("bad_signature"),
            ),
        );
    }
    // A key that claims another key's kid.
    let h = json!({"alg": "EdDSA", "kid": kid_of(&keys.ed), "typ": "at+jwt"});
    let t = sign_raw(&keys.ed2, &h.to_string(), &claims().to_string())?;
    c.add(
        "sig-wrong-key-same-kid",
        "signed by a key that is not the one its kid names",
        one_token(&t, invalid("bad_signature")),
    );
    let t = token(&keys.ed2, &claims())?;
    c.add(
        "kid-of-key-not-in-set",
        "signed by a genuine key that is not in the key set",
        one_token(&t, invalid("unknown_kid")),
    );
    Ok(())
}

fn tokens_claims(c: &mut Corpus) -> Res<()> {
    let keys = std::rc::Rc::clone(&c.keys);
    for (name, s) in signers(&keys) {
        for claim in [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "jti",
            "client_id",
            "scope",
            "tenant",
        ] {
            let t = token(s, &with(claims(), &[(claim, Value::Null)]))?;
            c.add(
                &format!("claim-missing-{claim}-{name}"),
                &format!("`{claim}` is required"),
                one_token(&t, invalid("missing_claim")),
            );
        }
        // A claim of the wrong JSON type: the payload is not a claims set (`malformed`).
        let wrong_types: Vec<(&str, &str, Value)> = vec![
            ("aud-number", "aud", json!(7)),
            ("exp-string", "exp", json!("1800000600")),
            ("exp-fraction", "exp", json!(1_800_000_600.5)),
            ("exp-negative", "exp", json!(-1)),
            ("iat-string", "iat", json!("1800000000")),
            ("nbf-string", "nbf", json!("1800000000")),
            ("scope-array", "scope", json!(["orders:read"])),
            ("tenant-number", "tenant", json!(42)),
            ("sub-number", "sub", json!(42)),
            ("iss-number", "iss", json!(42)),
            ("cnf-string", "cnf", json!("thumbprint")),
        ];
        for (case, claim, value) in wrong_types {
            let t = token(s, &with(claims(), &[(claim, value)]))?;
            c.add(
                &format!("claim-type-{case}-{name}"),
                &format!("`{claim}` has the wrong JSON type"),
                one_token(&t, invalid("malformed")),
            );
        }
        // Well-typed but unacceptable values.
        for (case, claim, value) in [
            ("aud-array-two", "aud", json!([AUD, AUD2])),
            ("aud-array-empty", "aud", json!([])),
            ("cnf-without-jkt", "cnf", json!({})),
        ] {
            let t = token(s, &with(claims(), &[(claim, value)]))?;
            c.add(
                &format!("claim-invalid-{case}-{name}"),
                &format!("`{claim}` has an unacceptable value"),
                one_token(&t, invalid("invalid_claim")),
            );
        }
        // RFC 7519 allows `aud` as an array; one element is one audience.
        let t = token(s, &with(claims(), &[("aud", json!([AUD]))]))?;
        c.add(
            &format!("claim-aud-array-of-one-{name}"),
            "an `aud` array holding exactly one accepted audience is accepted",
            one_token(&t, valid()),
        );
        for (case, claim, value, code) in [
            (
                "iss-other",
                "iss",
                json!("https://evil.conformance.test"),
                "wrong_issuer",
            ),
            (
                "iss-trailing-slash",
                "iss",
                json!(format!("{ISS}/")),
                "wrong_issuer",
            ),
            ("iss-case", "iss", json!(ISS.to_uppercase()), "wrong_issuer"),
            (
                "aud-other",
                "aud",
                json!("https://evil.conformance.test"),
                "wrong_audience",
            ),
            (
                "aud-trailing-slash",
                "aud",
                json!(format!("{AUD}/")),
                "wrong_audience",
            ),
        ] {
            let t = token(s, &with(claims(), &[(claim, value)]))?;
            c.add(
                &format!("claim-{case}-{name}"),
                &format!("`{claim}` must match exactly"),
                one_token(&t, invalid(code)),
            );
        }
    }
    Ok(())
}

fn tokens_time(c: &mut Corpus, alg: Algorithm) -> Res<()> {
    let keys = std::rc::Rc::clone(&c.keys);
    let s = if alg == Algorithm::EdDsa {
        &keys.ed
    } else {
        &keys.es
    };
    let add = |c: &mut Corpus, name: &str, desc: &str, claims: Value, expect: Value| -> Res<()> {
        let t = token(s, &claims)?;
        c.add(name, desc, one_token(&t, expect));
        Ok(())
    };
    // exp: refused once now >= exp + leeway.
    for (d, expect) in [
        (-61i64, invalid("expired")),
        (-60, invalid("expired")),
        (-59, valid()),
        (0, valid()),
    ] {
        let exp = (NOW as i64 + d) as u64;
        add(
            c,
            &format!("time-exp-now{d:+}"),
            "exp with a 60 s leeway: refused from exp + leeway on",
            with(
                claims(),
                &[
                    ("exp", json!(exp)),
                    ("iat", json!(T0 - 600)),
                    ("nbf", json!(T0 - 600)),
                ],
            ),
            expect,
        )?;
    }
    // nbf: refused while now + leeway < nbf.
    for (d, expect) in [
        (59i64, valid()),
        (60, valid()),
        (61, invalid("not_yet_valid")),
        (3600, invalid("not_yet_valid")),
    ] {
        let nbf = (NOW as i64 + d) as u64;
        add(
            c,
            &format!("time-nbf-now{d:+}"),
            "nbf with a 60 s leeway",
            with(claims(), &[("nbf", json!(nbf)), ("exp", json!(NOW + 7200))]),
            expect,
        )?;
    }
    // iat: refused when later than now + leeway.
    for (d, expect) in [
        (60i64, valid()),
        (61, invalid("iat_in_future")),
        (86_400, invalid("iat_in_future")),
    ] {
        let iat = (NOW as i64 + d) as u64;
        add(
            c,
            &format!("time-iat-now{d:+}"),
            "iat with a 60 s leeway",
            with(
                claims(),
                &[
                    ("iat", json!(iat)),
                    ("nbf", Value::Null),
                    ("exp", json!(NOW + 7200)),
                ],
            ),
            expect,
        )?;
    }
    // A smaller leeway.
    let t = token(
        s,
        &with(
            claims(),
            &[
                ("exp", json!(NOW - 5)),
                ("iat", json!(T0 - 600)),
                ("nbf", Value::Null),
            ],
        ),
    )?;
    c.add_with(
        "time-exp-leeway-0",
        "with no leeway a token is refused at exp",
        json!({"leeway": 0}),
        "jwks/main.json",
        one_token(&t, invalid("expired")),
    );
    // A verified token expires later: the answer follows the clock, not a cache.
    let t = token(s, &claims())?;
    c.add(
        "time-valid-then-expired",
        "a token accepted at one time is refused after exp + leeway",
        vec![
            installed(T0 + 1, "lists/base.jws"),
            verify(NOW, &t, valid()),
            verify(T0 + 600 + LEEWAY, &t, invalid("expired")),
        ],
    );
    Ok(())
}

fn tokens_revoked(c: &mut Corpus, alg: Algorithm) -> Res<()> {
    let keys = std::rc::Rc::clone(&c.keys);
    let (s, other, revocations) = if alg == Algorithm::EdDsa {
        (&keys.ed, &keys.es, "lists/revocations-eddsa.jws")
    } else {
        (&keys.es, &keys.ed, "lists/revocations-es256.jws")
    };
    let after = T0 + 60;
    let rev = |c: &mut Corpus, name: &str, desc: &str, t: &str, expect: Value| {
        c.add(
            name,
            desc,
            vec![
                installed(T0 + 1, "lists/base.jws"),
                installed(T0 + 55, revocations),
                verify(after, t, expect),
            ],
        );
    };
    let k = s;
    let by_key = token(
        k,
        &with(
            claims(),
            &[
                ("sub", json!(REVOKED_SUB)),
                ("client_id", json!(REVOKED_SUB)),
            ],
        ),
    )?;
    rev(
        c,
        "revoked-key",
        "a `key` entry refuses its tokens",
        &by_key,
        invalid("revoked"),
    );
    let by_key_late = token(
        s,
        &with(
            claims(),
            &[
                ("sub", json!(REVOKED_SUB)),
                ("client_id", json!(REVOKED_SUB)),
                ("iat", json!(T0 + 58)),
                ("nbf", json!(T0 + 58)),
            ],
        ),
    )?;
    rev(
        c,
        "revoked-key-minted-after",
        "a `key` entry refuses tokens whatever their iat (a late replica may have minted one)",
        &by_key_late,
        invalid("revoked"),
    );
    let by_jti = token(s, &with(claims(), &[("jti", json!("jti-revoked-0001"))]))?;
    rev(
        c,
        "revoked-jti",
        "a `jti` entry refuses that token",
        &by_jti,
        invalid("revoked"),
    );
    let other_jti = token(s, &with(claims(), &[("jti", json!("jti-revoked-0002"))]))?;
    rev(
        c,
        "revoked-jti-other",
        "a `jti` entry leaves other tokens alone",
        &other_jti,
        json!({"valid": {"jti": "jti-revoked-0002"}}),
    );
    // tenant: revoked_at T0+40, cutoff T0+45 (propagation bound 5 s).
    for (iat, expect) in [
        (T0 + 40, invalid("revoked")),
        (T0 + 44, invalid("revoked")),
        (T0 + 45, json!({"valid": {"tenant": "evil-corp"}})),
        (T0 + 50, json!({"valid": {"tenant": "evil-corp"}})),
    ] {
        let t = token(
            s,
            &with(
                claims(),
                &[
                    ("tenant", json!("evil-corp")),
                    ("iat", json!(iat)),
                    ("nbf", json!(iat)),
                ],
            ),
        )?;
        rev(
            c,
            &format!("revoked-tenant-iat-{}", iat - T0),
            "a `tenant` entry refuses tokens issued before revoked_at + 5 s",
            &t,
            expect,
        );
    }
    let by_kid = token(other, &claims())?;
    rev(
        c,
        "revoked-kid",
        "a `kid` entry refuses every token its key signed",
        &by_kid,
        invalid("revoked"),
    );
    let untouched = token(s, &claims())?;
    rev(
        c,
        "revoked-none-applies",
        "a token no entry covers",
        &untouched,
        valid(),
    );
    // Revocation reaches a token already verified (and perhaps cached).
    let t = token(
        s,
        &with(
            claims(),
            &[
                ("sub", json!(REVOKED_SUB)),
                ("client_id", json!(REVOKED_SUB)),
            ],
        ),
    )?;
    c.add(
        "revoked-after-verified",
        "a token accepted before a list revokes its key is refused after",
        vec![
            installed(T0 + 1, "lists/base.jws"),
            verify(T0 + 20, &t, valid_sub(REVOKED_SUB)),
            installed(T0 + 55, revocations),
            verify(after, &t, invalid("revoked")),
        ],
    );
    // No list / expired list: fail closed.
    let t = token(s, &claims())?;
    c.add(
        "no-list",
        "without a revocation list nothing is accepted",
        vec![verify(NOW, &t, invalid("no_revocation_list"))],
    );
    let long = token(
        s,
        &with(
            claims(),
            &[
                ("iat", json!(T0 + DAY - 100)),
                ("nbf", Value::Null),
                ("exp", json!(T0 + DAY + 600)),
            ],
        ),
    )?;
    c.add(
        "list-expired-fails-closed",
        "once the newest list has expired every token is refused, until a fresh list",
        vec![
            installed(T0 + 1, "lists/base.jws"),
            verify(T0 + DAY - 1, &long, valid()),
            verify(T0 + DAY, &long, invalid("revocation_list_expired")),
            offer(
                T0 + DAY + 10,
                &list(
                    &keys.ed,
                    &list_payload(102, T0 + DAY + 5, T0 + 2 * DAY, json!([])),
                )?,
                json!("installed"),
            ),
            verify(T0 + DAY + 20, &long, valid()),
        ],
    );
    Ok(())
}

fn tokens_dpop(c: &mut Corpus, alg: Algorithm) -> Res<()> {
    let keys = std::rc::Rc::clone(&c.keys);
    let s = if alg == Algorithm::EdDsa {
        &keys.ed
    } else {
        &keys.es
    };
    for (name, holder) in [("eddsa", &keys.dpop_ed), ("es256", &keys.dpop_es)] {
        let jkt = holder.kid().as_str().to_owned();
        let bound = token(s, &with(claims(), &[("cnf", json!({"jkt": jkt}))]))?;
        let ath = dpop::access_token_hash(&bound);
        let proof = |htm: &str, htu: &str, iat: u64, jti: &str, ath: Option<&str>| {
            dpop::make_proof(
                holder,
                htm,
                htu,
                keymint_jwks::UnixTime(iat),
                jti,
                ath,
                None,
            )
        };
        let step = |t: &str, p: &str, method: &str, at: u64, expect: Value| json!({"at": at, "token": t, "dpop": {"proof": p, "method": method, "url": HTU}, "expect": expect});
        let base = || installed(T0 + 1, "lists/base.jws");
        c.add(
            &format!("dpop-bound-without-proof-{name}"),
            "a DPoP-bound token presented as a bearer token is refused",
            vec![base(), verify(NOW, &bound, invalid("dpop_bound"))],
        );
        let good = proof("POST", HTU, NOW, "proof-1", Some(&ath))?;
        c.add(
            &format!("dpop-good-{name}"),
            "a bound token with a fresh proof of its key for this request",
            vec![base(), step(&bound, &good, "POST", NOW, valid())],
        );
        c.add(
            &format!("dpop-replayed-{name}"),
            "the same proof twice: the second is a replay",
            vec![
                base(),
                step(&bound, &good, "POST", NOW, valid()),
                step(
                    &bound,
                    &good,
                    "POST",
                    NOW + 1,
                    invalid("invalid_dpop_proof"),
                ),
            ],
        );
        let second = proof("POST", HTU, NOW + 1, "proof-2", Some(&ath))?;
        c.add(
            &format!("dpop-two-proofs-{name}"),
            "two different proofs for the same token are both accepted",
            vec![
                base(),
                step(&bound, &good, "POST", NOW, valid()),
                step(&bound, &second, "POST", NOW + 1, valid()),
            ],
        );
        let cases: Vec<(&str, String, &str, u64)> = vec![
            (
                "wrong-method",
                proof("GET", HTU, NOW, "p", Some(&ath))?,
                "POST",
                NOW,
            ),
            ("method-for-get", good.clone(), "GET", NOW),
            (
                "wrong-url",
                proof(
                    "POST",
                    "https://api.conformance.test/other",
                    NOW,
                    "p",
                    Some(&ath),
                )?,
                "POST",
                NOW,
            ),
            (
                "wrong-host",
                proof(
                    "POST",
                    "https://evil.conformance.test/orders",
                    NOW,
                    "p",
                    Some(&ath),
                )?,
                "POST",
                NOW,
            ),
            ("no-ath", proof("POST", HTU, NOW, "p", None)?, "POST", NOW),
            (
                "wrong-ath",
                proof(
                    "POST",
                    HTU,
                    NOW,
                    "p",
                    Some(&dpop::access_token_hash("another token")),
                )?,
                "POST",
                NOW,
            ),
            (
                "too-old",
                proof("POST", HTU, NOW - 61, "p", Some(&ath))?,
                "POST",
                NOW,
            ),
            (
                "from-future",
                proof("POST", HTU, NOW + 6, "p", Some(&ath))?,
                "POST",
                NOW,
            ),
            ("tampered", tamper(&good), "POST", NOW),
            ("garbage", "not.a.proof".into(), "POST", NOW),
        ];
        for (case, p, method, at) in cases {
            c.add(
                &format!("dpop-{case}-{name}"),
                "the proof does not match the request, the token or the time",
                vec![
                    base(),
                    step(&bound, &p, method, at, invalid("invalid_dpop_proof")),
                ],
            );
        }
        for (case, iat) in [("age-60", NOW - 60), ("future-5", NOW + 5)] {
            let p = proof("POST", HTU, iat, "edge", Some(&ath))?;
            c.add(
                &format!("dpop-{case}-{name}"),
                "a proof at most 60 s old and at most 5 s ahead is accepted",
                vec![base(), step(&bound, &p, "POST", NOW, valid())],
            );
        }
        // The proof's key is not the one the token is bound to.
        let other = if name == "eddsa" {
            &keys.dpop_es
        } else {
            &keys.dpop_ed
        };
        let p = dpop::make_proof(
            other,
            "POST",
            HTU,
            keymint_jwks::UnixTime(NOW),
            "p",
            Some(&ath),
            None,
        )?;
        c.add(
            &format!("dpop-other-key-{name}"),
            "a proof by a key other than cnf.jkt",
            vec![
                base(),
                step(&bound, &p, "POST", NOW, invalid("invalid_dpop_proof")),
            ],
        );
        // A proof for an unbound token.
        let plain = token(s, &claims())?;
        let p = proof(
            "POST",
            HTU,
            NOW,
            "p",
            Some(&dpop::access_token_hash(&plain)),
        )?;
        c.add(
            &format!("dpop-proof-for-unbound-token-{name}"),
            "a DPoP proof with a token that is not bound to a key",
            vec![
                base(),
                step(&plain, &p, "POST", NOW, invalid("invalid_dpop_proof")),
            ],
        );
    }
    Ok(())
}

fn tokens_policy(c: &mut Corpus, alg: Algorithm) -> Res<()> {
    let keys = std::rc::Rc::clone(&c.keys);
    let s = if alg == Algorithm::EdDsa {
        &keys.ed
    } else {
        &keys.es
    };
    let t = token(s, &claims())?;
    let policy = |scopes: Value, tenant: Option<&str>, expect: Value| {
        let mut req = json!({"scopes": scopes});
        if let (Some(o), Some(tn)) = (req.as_object_mut(), tenant) {
            o.insert("tenant".into(), json!(tn));
        }
        vec![
            installed(T0 + 1, "lists/base.jws"),
            json!({"at": NOW, "token": t, "require": req, "expect": expect}),
        ]
    };
    c.add(
        "policy-scopes-held",
        "the token holds every required scope",
        policy(
            json!(["orders:read", "orders:write"]),
            Some("acme"),
            valid(),
        ),
    );
    c.add(
        "policy-scope-missing",
        "a required scope the token lacks",
        policy(
            json!(["orders:read", "orders:admin"]),
            None,
            invalid("insufficient_scope"),
        ),
    );
    c.add(
        "policy-scope-prefix",
        "scopes are compared whole, not by prefix",
        policy(json!(["orders"]), None, invalid("insufficient_scope")),
    );
    c.add(
        "policy-wrong-tenant",
        "the token belongs to another tenant",
        policy(json!([]), Some("globex"), invalid("wrong_tenant")),
    );
    Ok(())
}

fn lists(c: &mut Corpus) -> Res<()> {
    let keys = std::rc::Rc::clone(&c.keys);
    let ed = &keys.ed;
    let day = |serial: u64, iat: u64| list_payload(serial, iat, iat + DAY, json!([]));
    let t = token(ed, &claims())?;
    let after_base = |steps: Vec<Value>| {
        let mut v = vec![installed(T0 + 1, "lists/base.jws")];
        v.extend(steps);
        v
    };
    let single = |c: &mut Corpus, name: &str, desc: &str, jws: String, expect: Value| {
        c.add(name, desc, after_base(vec![offer(NOW, &jws, expect)]));
    };
    single(
        c,
        "list-newer",
        "a newer serial is installed",
        list(ed, &day(101, T0 + 50))?,
        json!("installed"),
    );
    single(
        c,
        "list-same-bytes",
        "the very same list again is accepted",
        std::fs::read_to_string(c.dir.join("lists/base.jws"))?,
        json!("installed"),
    );
    single(
        c,
        "list-rollback",
        "a lower serial is a rollback",
        list(ed, &day(99, T0 + 50))?,
        refused("list_rollback"),
    );
    single(
        c,
        "list-serial-conflict",
        "an equal serial with different bytes",
        list(
            ed,
            &list_payload(100, T0, T0 + DAY, json!([entry("jti", "x", T0)])),
        )?,
        refused("list_serial_conflict"),
    );
    single(
        c,
        "list-iat-future-61",
        "iat later than now + leeway",
        list(ed, &day(101, NOW + 61))?,
        refused("list_iat_in_future"),
    );
    single(
        c,
        "list-iat-future-60",
        "iat at now + leeway is accepted",
        list(ed, &day(101, NOW + 60))?,
        json!("installed"),
    );
    single(
        c,
        "list-validity-7d",
        "a validity of exactly 7 days is accepted",
        list(
            ed,
            &list_payload(101, T0 + 50, T0 + 50 + 7 * DAY, json!([])),
        )?,
        json!("installed"),
    );
    single(
        c,
        "list-validity-over-7d",
        "a validity over 7 days is refused",
        list(
            ed,
            &list_payload(101, T0 + 50, T0 + 50 + 7 * DAY + 1, json!([])),
        )?,
        refused("list_validity_too_long"),
    );
    single(
        c,
        "list-validity-years",
        "a list that would vouch for years",
        list(
            ed,
            &list_payload(101, T0 + 50, T0 + 50 + 3650 * DAY, json!([])),
        )?,
        refused("list_validity_too_long"),
    );
    single(
        c,
        "list-bad-validity",
        "exp not after iat",
        list(ed, &list_payload(101, T0 + 50, T0 + 50, json!([])))?,
        refused("list_bad_validity"),
    );
    single(
        c,
        "list-expired",
        "a list whose exp has passed",
        list(ed, &list_payload(101, T0 - DAY, NOW, json!([])))?,
        refused("list_expired"),
    );
    single(
        c,
        "list-wrong-issuer",
        "a list of another issuer",
        list(
            ed,
            &with(
                day(101, T0 + 50),
                &[("iss", json!("https://evil.conformance.test"))],
            ),
        )?,
        refused("list_wrong_issuer"),
    );
    single(
        c,
        "list-version-2",
        "format version 2 is not understood",
        list(ed, &with(day(101, T0 + 50), &[("v", json!(2))]))?,
        refused("list_unsupported_version"),
    );
    single(
        c,
        "list-unknown-entry-kind",
        "an entry kind the verifier cannot enforce invalidates the list",
        list(
            ed,
            &list_payload(
                101,
                T0 + 50,
                T0 + DAY,
                json!([{"kind": "scope", "id": "x", "revoked_at": T0, "drop_after": T0 + 10}]),
            ),
        )?,
        refused("list_malformed"),
    );
    single(
        c,
        "list-missing-serial",
        "a list without serial",
        list(ed, &with(day(101, T0 + 50), &[("serial", Value::Null)]))?,
        refused("list_malformed"),
    );
    single(
        c,
        "list-serial-string",
        "a serial that is not an integer",
        list(ed, &with(day(101, T0 + 50), &[("serial", json!("101"))]))?,
        refused("list_malformed"),
    );
    single(
        c,
        "list-unknown-member",
        "unknown payload members are ignored",
        list(ed, &with(day(101, T0 + 50), &[("note", json!("hello"))]))?,
        json!("installed"),
    );
    let hdr = |typ: &str| json!({"alg": "EdDSA", "kid": kid_of(ed), "typ": typ}).to_string();
    let body = day(101, T0 + 50).to_string();
    single(
        c,
        "list-typ-at-jwt",
        "an access token's typ on a list",
        sign_raw(ed, &hdr("at+jwt"), &body)?,
        refused("list_wrong_typ"),
    );
    single(
        c,
        "list-typ-missing",
        "a list without typ",
        sign_raw(
            ed,
            &json!({"alg": "EdDSA", "kid": kid_of(ed)}).to_string(),
            &body,
        )?,
        refused("list_wrong_typ"),
    );
    single(
        c,
        "list-typ-prefixed",
        "typ with the application/ prefix, in capitals",
        sign_raw(ed, &hdr("Application/Keymint-Revocations+JWT"), &body)?,
        json!("installed"),
    );
    single(
        c,
        "list-unknown-kid",
        "signed by a key not in the key set",
        list(&keys.ed2, &day(101, T0 + 50))?,
        refused("list_unknown_kid"),
    );
    single(
        c,
        "list-alg-mismatch",
        "alg is not the key's",
        sign_raw(
            ed,
            &json!({"alg": "ES256", "kid": kid_of(ed), "typ": "keymint-revocations+jwt"})
                .to_string(),
            &body,
        )?,
        refused("list_alg_mismatch"),
    );
    single(
        c,
        "list-bad-signature",
        "one bit of the signature flipped",
        tamper(&list(ed, &day(101, T0 + 50))?),
        refused("list_bad_signature"),
    );
    single(
        c,
        "list-bad-signature-es256",
        "one bit of an ES256 signature flipped",
        tamper(&list(&keys.es, &day(101, T0 + 50))?),
        refused("list_bad_signature"),
    );
    single(
        c,
        "list-token-as-list",
        "an access token offered as a list",
        t.clone(),
        refused("list_wrong_typ"),
    );
    single(c, "list-jku", "a list header pointing at keys", sign_raw(ed, &json!({"alg": "EdDSA", "kid": kid_of(ed), "typ": "keymint-revocations+jwt", "jku": "https://attacker.test"}).to_string(), &body)?, refused("list_forbidden_header"));
    single(c, "list-crit", "a list with crit", sign_raw(ed, &json!({"alg": "EdDSA", "kid": kid_of(ed), "typ": "keymint-revocations+jwt", "crit": ["exp"]}).to_string(), &body)?, refused("list_forbidden_header"));
    single(
        c,
        "list-dup-payload",
        "a payload repeating `entries`",
        sign_raw(
            ed,
            &hdr("keymint-revocations+jwt"),
            &format!(
                "{{\"entries\":[{}],{}",
                entry("key", REVOKED_SUB, T0),
                body.strip_prefix('{').unwrap_or(&body)
            ),
        )?,
        refused("list_duplicate_member"),
    );
    single(
        c,
        "list-dup-header",
        "a header repeating `kid`",
        sign_raw(
            ed,
            &format!(
                "{{\"alg\":\"EdDSA\",\"kid\":\"{0}\",\"kid\":\"{0}\",\"typ\":\"keymint-revocations+jwt\"}}",
                kid_of(ed)
            ),
            &body,
        )?,
        refused("list_duplicate_member"),
    );
    single(
        c,
        "list-malformed",
        "not a compact JWS",
        "abc.def".into(),
        refused("list_malformed"),
    );
    // A refused list leaves the list in force: tokens still verify against it.
    let rolled = list(
        ed,
        &list_payload(50, T0 + 60, T0 + DAY, json!([entry("key", SUB, T0)])),
    )?;
    c.add(
        "list-refused-keeps-in-force",
        "a refused rollback that would revoke a key changes nothing",
        after_base(vec![
            offer(NOW, &rolled, refused("list_rollback")),
            verify(NOW + 1, &t, valid()),
        ]),
    );
    // A validity cap tighter than the format's.
    c.add_with(
        "list-configured-cap",
        "a verifier configured with a 1 h cap refuses a 1-day list",
        json!({"list_validity_cap": 3600}),
        "jwks/main.json",
        vec![offer(
            NOW,
            &list(ed, &day(100, T0))?,
            refused("list_validity_too_long"),
        )],
    );
    // Signed by a key the list in force revokes.
    let revokes_es = list(
        ed,
        &list_payload(
            101,
            T0 + 50,
            T0 + DAY,
            json!([entry("kid", &kid_of(&keys.es), T0 + 40)]),
        ),
    )?;
    c.add(
        "list-signed-by-revoked-key",
        "a list signed by a kid the list in force revokes cannot un-revoke it",
        after_base(vec![
            offer(T0 + 55, &revokes_es, json!("installed")),
            offer(
                NOW,
                &list(&keys.es, &day(102, T0 + 60))?,
                refused("list_signed_by_revoked_key"),
            ),
        ]),
    );
    // The serial floor goes with its key.
    let huge = list(ed, &list_payload(u64::MAX, T0, T0 + DAY, json!([])))?;
    c.add(
        "list-floor-dropped-when-key-leaves",
        "a list with serial 2^64-1 binds only while its key is in the key set",
        vec![
            offer(T0 + 1, &huge, json!("installed")),
            offer(
                T0 + 10,
                &list(&keys.es, &day(5, T0 + 5))?,
                refused("list_rollback"),
            ),
            json!({"at": T0 + 20, "jwks": "jwks/rotated.json"}),
            offer(
                T0 + 30,
                &list(&keys.es, &day(5, T0 + 5))?,
                json!("installed"),
            ),
        ],
    );
    c.add(
        "list-floor-replay-guard",
        "with the floor dropped, a list issued before the one in force by more than the leeway is a replay",
        vec![
            offer(T0 + 1, &huge, json!("installed")),
            json!({"at": T0 + 20, "jwks": "jwks/rotated.json"}),
            offer(T0 + 30, &list(&keys.es, &day(5, T0 - 61))?, refused("list_replayed")),
            offer(T0 + 31, &list(&keys.es, &day(6, T0 - 60))?, json!("installed")),
        ],
    );
    c.add(
        "list-floor-dropped-when-key-revoked",
        "the floor also goes when the offered list revokes the key that signed the list in force",
        vec![
            offer(
                T0 + 1,
                &list(&keys.es, &list_payload(u64::MAX, T0, T0 + DAY, json!([])))?,
                json!("installed"),
            ),
            offer(
                T0 + 10,
                &list(
                    ed,
                    &list_payload(
                        7,
                        T0 + 5,
                        T0 + DAY,
                        json!([entry("kid", &kid_of(&keys.es), T0 + 5)]),
                    ),
                )?,
                json!("installed"),
            ),
        ],
    );
    // A list refused for an unknown kid is accepted once the key set has the key.
    let by_ed2 = list(&keys.ed2, &day(101, T0 + 50))?;
    c.add_with(
        "list-unknown-kid-then-new-key-set",
        "a list refused for an unknown kid installs after the key set gains its key",
        json!({}),
        "jwks/main.json",
        after_base(vec![
            offer(T0 + 60, &by_ed2, refused("list_unknown_kid")),
            json!({"at": T0 + 61, "jwks": "jwks/with-ed2.json"}),
            offer(T0 + 62, &by_ed2, json!("installed")),
        ]),
    );
    // Key sets can also remove a token's key.
    c.add(
        "token-key-left-key-set",
        "a token whose key left the key set is refused with unknown_kid",
        after_base(vec![
            verify(NOW, &t, valid()),
            json!({"at": NOW + 1, "jwks": "jwks/rotated.json"}),
            verify(NOW + 2, &t, invalid("unknown_kid")),
        ]),
    );
    Ok(())
}
