//! Unit tests of the verifier core: every check, its boundary, and the cache.

use std::time::Duration;

use keymint_jwks::jws::encode_segment;
use keymint_jwks::*;

use crate::*;

const NOW: UnixTime = UnixTime(1_800_000_000);
const ISS: &str = "https://issuer.example";
const AUD: &str = "https://api.example";

struct Fixture {
    ed: Signer,
    es: Signer,
    other: Signer,
    jwks: Jwks,
}

fn fixture() -> Fixture {
    let ed = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let es = Signer::new(SigningKey::generate(Algorithm::Es256).unwrap());
    let other = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let jwks = Jwks::new(vec![ed.key().public_jwk(), es.key().public_jwk()]).unwrap();
    Fixture {
        ed,
        es,
        other,
        jwks,
    }
}

fn claims() -> Claims {
    Claims {
        iss: Issuer::new(ISS).unwrap(),
        sub: ApiKeyId::new("key1").unwrap(),
        aud: Audience::new(AUD).unwrap(),
        exp: UnixTime(NOW.0 + 600),
        iat: NOW,
        nbf: Some(NOW),
        jti: Jti::new("jti-1").unwrap(),
        client_id: ClientId::new("key1").unwrap(),
        scope: ScopeSet::parse("orders:read orders:write").unwrap(),
        tenant: TenantId::new("acme").unwrap(),
        cnf: None,
    }
}

fn list(signer: &Signer, serial: u64, entries: Vec<RevocationEntry>) -> SignedRevocationList {
    signer
        .sign_revocation_list(&RevocationList {
            v: 1,
            iss: Issuer::new(ISS).unwrap(),
            serial,
            iat: NOW,
            exp: UnixTime(NOW.0 + 86_400),
            entries,
        })
        .unwrap()
}

fn entry(target: RevocationTarget, revoked_at: UnixTime) -> RevocationEntry {
    RevocationEntry {
        target,
        revoked_at,
        drop_after: UnixTime(revoked_at.0 + 3_600),
    }
}

fn verifier(f: &Fixture) -> Verifier {
    let v = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
        .jwks(f.jwks.clone())
        .build()
        .unwrap();
    v.update_revocations_at(list(&f.ed, 1, vec![]).jws(), NOW)
        .unwrap();
    v
}

/// Signs `payload` under an arbitrary header with `signer`'s key.
fn sign_raw(signer: &Signer, header: &serde_json::Value, payload: &[u8]) -> String {
    signer
        .sign_compact(&encode_segment(header.to_string().as_bytes()), payload)
        .unwrap()
}

fn header(signer: &Signer) -> serde_json::Value {
    serde_json::json!({"alg": signer.key().algorithm().as_str(), "typ": "at+jwt", "kid": signer.key().kid().as_str()})
}

fn with_header(
    signer: &Signer,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> String {
    let mut h = header(signer);
    edit(h.as_object_mut().unwrap());
    sign_raw(signer, &h, &claims().to_json())
}

fn with_claims(
    signer: &Signer,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> String {
    let mut c: serde_json::Value = serde_json::from_slice(&claims().to_json()).unwrap();
    edit(c.as_object_mut().unwrap());
    sign_raw(signer, &header(signer), c.to_string().as_bytes())
}

#[test]
fn round_trip_both_algorithms() {
    let f = fixture();
    let v = verifier(&f);
    for signer in [&f.ed, &f.es] {
        let token = signer.sign_access_token(&claims()).unwrap();
        let ok = v.verify_at(&token, NOW).unwrap();
        assert_eq!(ok.claims(), &claims());
        assert_eq!(ok.kid(), signer.key().kid());
        assert_eq!(ok.algorithm(), signer.key().algorithm());
    }
}

#[test]
fn fully_specified_ed25519_alg_and_application_typ_are_accepted() {
    let f = fixture();
    let v = verifier(&f);
    let t = with_header(&f.ed, |h| {
        h.insert("alg".into(), "Ed25519".into());
        h.insert("typ".into(), "Application/AT+JWT".into());
    });
    v.verify_at(&t, NOW).unwrap();
}

#[test]
fn forged_and_malformed_tokens_are_rejected_with_the_expected_error() {
    let f = fixture();
    let v = verifier(&f);
    let good = f.ed.sign_access_token(&claims()).unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let ed_kid = f.ed.key().kid().as_str().to_owned();

    // HS256 with the public key bytes as the HMAC secret (key confusion).
    let hs256 = {
        let h = encode_segment(
            serde_json::json!({"alg":"HS256","typ":"at+jwt","kid":ed_kid})
                .to_string()
                .as_bytes(),
        );
        let input = format!("{h}.{}", parts[1]);
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, f.ed.key().public_key().as_bytes());
        let tag = ring::hmac::sign(&key, input.as_bytes());
        format!("{input}.{}", encode_segment(tag.as_ref()))
    };
    // A payload changed after signing: tenant swapped, signature kept.
    let tampered = {
        let mut c: serde_json::Value = serde_json::from_slice(&claims().to_json()).unwrap();
        c["tenant"] = "evil".into();
        format!(
            "{}.{}.{}",
            parts[0],
            encode_segment(c.to_string().as_bytes()),
            parts[2]
        )
    };
    // Signed by a key outside the set, under a kid that is in the set.
    let other_key = {
        let h = encode_segment(header(&f.ed).to_string().as_bytes());
        f.other.sign_compact(&h, &claims().to_json()).unwrap()
    };
    // An ES256 token whose signature is all zeros.
    let es_zero = {
        let t = f.es.sign_access_token(&claims()).unwrap();
        let (input, _) = t.rsplit_once('.').unwrap();
        format!("{input}.{}", encode_segment(&[0u8; 64]))
    };
    // The revocation list itself, presented as a token.
    let the_list = list(&f.ed, 1, vec![]).jws().to_owned();
    let dup_payload = {
        let json = String::from_utf8(claims().to_json()).unwrap();
        let dup = json.replacen(
            "\"tenant\":\"acme\"",
            "\"tenant\":\"acme\",\"tenant\":\"evil\"",
            1,
        );
        sign_raw(&f.ed, &header(&f.ed), dup.as_bytes())
    };
    let dup_header = {
        let h = format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{ed_kid}","kid":"{ed_kid}"}}"#);
        f.ed.sign_compact(&encode_segment(h.as_bytes()), &claims().to_json())
            .unwrap()
    };

    use VerifyError as E;
    type Case = (&'static str, String, fn(&VerifyError) -> bool);
    let cases: Vec<Case> = vec![
        (
            "alg none",
            with_header(&f.ed, |h| {
                h.insert("alg".into(), "none".into());
            }),
            |e| matches!(e, E::UnsupportedAlgorithm { .. }),
        ),
        (
            "alg NONE",
            with_header(&f.ed, |h| {
                h.insert("alg".into(), "NONE".into());
            }),
            |e| matches!(e, E::UnsupportedAlgorithm { .. }),
        ),
        (
            "alg nOnE",
            with_header(&f.ed, |h| {
                h.insert("alg".into(), "nOnE".into());
            }),
            |e| matches!(e, E::UnsupportedAlgorithm { .. }),
        ),
        (
            "alg none, no signature",
            format!(
                "{}.{}.",
                encode_segment(br#"{"alg":"none","typ":"at+jwt"}"#),
                parts[1]
            ),
            |e| matches!(e, E::MissingKid),
        ),
        ("HS256 with the public key", hs256, |e| {
            matches!(e, E::UnsupportedAlgorithm { .. })
        }),
        (
            "ES256 header on an Ed25519 key",
            with_header(&f.ed, |h| {
                h.insert("alg".into(), "ES256".into());
            }),
            |e| {
                matches!(
                    e,
                    E::AlgorithmMismatch {
                        expected: Algorithm::EdDsa,
                        ..
                    }
                )
            },
        ),
        (
            "EdDSA header on a P-256 key",
            with_header(&f.es, |h| {
                h.insert("alg".into(), "EdDSA".into());
            }),
            |e| {
                matches!(
                    e,
                    E::AlgorithmMismatch {
                        expected: Algorithm::Es256,
                        ..
                    }
                )
            },
        ),
        (
            "unknown kid",
            with_header(&f.ed, |h| {
                h.insert("kid".into(), "nope".into());
            }),
            |e| matches!(e, E::UnknownKid { .. }),
        ),
        (
            "missing kid",
            with_header(&f.ed, |h| {
                h.remove("kid");
            }),
            |e| matches!(e, E::MissingKid),
        ),
        ("signature from another key", other_key, |e| {
            matches!(e, E::BadSignature)
        }),
        ("payload changed after signing", tampered, |e| {
            matches!(e, E::BadSignature)
        }),
        ("ECDSA signature of zeros", es_zero, |e| {
            matches!(e, E::BadSignature)
        }),
        (
            "missing typ",
            with_header(&f.ed, |h| {
                h.remove("typ");
            }),
            |e| matches!(e, E::WrongType { found: None }),
        ),
        (
            "typ JWT",
            with_header(&f.ed, |h| {
                h.insert("typ".into(), "JWT".into());
            }),
            |e| matches!(e, E::WrongType { found: Some(_) }),
        ),
        (
            "typ of the revocation list",
            with_header(&f.ed, |h| {
                h.insert("typ".into(), "keymint-revocations+jwt".into());
            }),
            |e| matches!(e, E::WrongType { .. }),
        ),
        ("the revocation list as a token", the_list, |e| {
            matches!(e, E::WrongType { .. })
        }),
        (
            "typ of a DPoP proof",
            with_header(&f.ed, |h| {
                h.insert("typ".into(), "dpop+jwt".into());
            }),
            |e| matches!(e, E::WrongType { .. }),
        ),
        (
            "jku header",
            with_header(&f.ed, |h| {
                h.insert("jku".into(), "https://evil.example/jwks".into());
            }),
            |e| matches!(e, E::ForbiddenHeader("jku")),
        ),
        (
            "embedded jwk",
            with_header(&f.ed, |h| {
                h.insert("jwk".into(), f.other.key().public_jwk().to_json_value());
            }),
            |e| matches!(e, E::ForbiddenHeader("jwk")),
        ),
        (
            "x5u header",
            with_header(&f.ed, |h| {
                h.insert("x5u".into(), "https://evil".into());
            }),
            |e| matches!(e, E::ForbiddenHeader("x5u")),
        ),
        (
            "x5c header",
            with_header(&f.ed, |h| {
                h.insert("x5c".into(), serde_json::json!(["MIIB"]));
            }),
            |e| matches!(e, E::ForbiddenHeader("x5c")),
        ),
        (
            "unknown crit",
            with_header(&f.ed, |h| {
                h.insert("crit".into(), serde_json::json!(["zip2"]));
                h.insert("zip2".into(), 1.into());
            }),
            |e| matches!(e, E::UnknownCritical),
        ),
        ("duplicate payload member", dup_payload, |e| {
            matches!(e, E::DuplicateMember { .. })
        }),
        ("duplicate header member", dup_header, |e| {
            matches!(e, E::DuplicateMember { .. })
        }),
        (
            "expired",
            with_claims(&f.ed, |c| {
                c.insert("exp".into(), (NOW.0 - 61).into());
            }),
            |e| matches!(e, E::Expired { .. }),
        ),
        (
            "nbf in the future",
            with_claims(&f.ed, |c| {
                c.insert("nbf".into(), (NOW.0 + 61).into());
            }),
            |e| matches!(e, E::NotYetValid { .. }),
        ),
        (
            "iat in the future",
            with_claims(&f.ed, |c| {
                c.insert("iat".into(), (NOW.0 + 61).into());
                c.remove("nbf");
            }),
            |e| matches!(e, E::IssuedInFuture { .. }),
        ),
        (
            "wrong iss",
            with_claims(&f.ed, |c| {
                c.insert("iss".into(), "https://evil.example".into());
            }),
            |e| matches!(e, E::WrongIssuer),
        ),
        (
            "wrong aud",
            with_claims(&f.ed, |c| {
                c.insert("aud".into(), "https://other-api.example".into());
            }),
            |e| matches!(e, E::WrongAudience),
        ),
        (
            "two audiences",
            with_claims(&f.ed, |c| {
                c.insert("aud".into(), serde_json::json!([AUD, "https://other"]));
            }),
            |e| matches!(e, E::InvalidClaim { claim: "aud", .. }),
        ),
        (
            "oversize",
            format!("{}.{}.{}", parts[0], "A".repeat(9000), parts[2]),
            |e| matches!(e, E::Oversize { .. }),
        ),
        (
            "bad base64url: padding",
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            |e| matches!(e, E::Malformed(_)),
        ),
        (
            "bad base64url: standard alphabet",
            format!("{}.{}+/.{}", parts[0], parts[1], parts[2]),
            |e| matches!(e, E::Malformed(_)),
        ),
        (
            "bad base64url: whitespace",
            format!("{}.{} .{}", parts[0], parts[1], parts[2]),
            |e| matches!(e, E::Malformed(_)),
        ),
        ("two segments", format!("{}.{}", parts[0], parts[1]), |e| {
            matches!(e, E::Malformed(_))
        }),
        ("four segments", format!("{good}.{}", parts[2]), |e| {
            matches!(e, E::Malformed(_))
        }),
        (
            "payload not a JSON object",
            sign_raw(&f.ed, &header(&f.ed), b"[1,2,3]"),
            |e| matches!(e, E::Malformed(_)),
        ),
        (
            "payload not JSON",
            sign_raw(&f.ed, &header(&f.ed), b"\xff\xfe"),
            |e| matches!(e, E::Malformed(_)),
        ),
        (
            "header not JSON",
            format!("{}.{}.{}", encode_segment(b"not json"), parts[1], parts[2]),
            |e| matches!(e, E::Malformed(_)),
        ),
        (
            "stripped signature",
            format!("{}.{}.", parts[0], parts[1]),
            |e| matches!(e, E::BadSignature),
        ),
        ("empty", String::new(), |e| matches!(e, E::Malformed(_))),
    ];
    for (name, token, expected) in cases {
        let err = v.verify_at(&token, NOW).expect_err(name);
        assert!(expected(&err), "{name}: got {err:?}");
        let msg = err.to_string();
        if token.len() > 20 {
            assert!(
                !msg.contains(&token),
                "{name}: error message contains the token"
            );
        }
        assert!(
            !msg.contains(parts[2]),
            "{name}: error message contains a signature"
        );
    }
}

#[test]
fn each_required_claim_missing_is_reported_by_name() {
    let f = fixture();
    let v = verifier(&f);
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
        let t = with_claims(&f.ed, |c| {
            c.remove(claim);
        });
        assert_eq!(
            v.verify_at(&t, NOW),
            Err(VerifyError::MissingClaim(claim)),
            "{claim}"
        );
    }
    let no_nbf = with_claims(&f.ed, |c| {
        c.remove("nbf");
    });
    assert!(v.verify_at(&no_nbf, NOW).is_ok());
}

#[test]
fn exp_nbf_iat_boundaries_with_leeway() {
    let f = fixture();
    let v = verifier(&f);
    let t = f.ed.sign_access_token(&claims()).unwrap();
    let exp = claims().exp.0;
    // Accepted strictly before exp + leeway, refused on it.
    assert!(v.verify_at(&t, UnixTime(exp + 59)).is_ok());
    assert_eq!(
        v.verify_at(&t, UnixTime(exp + 60)),
        Err(VerifyError::Expired {
            exp: UnixTime(exp),
            now: UnixTime(exp + 60)
        })
    );
    // nbf: accepted from nbf - leeway.
    let nbf = with_claims(&f.ed, |c| {
        c.insert("nbf".into(), (NOW.0 + 100).into());
        c.insert("iat".into(), (NOW.0 + 100).into());
    });
    assert!(v.verify_at(&nbf, UnixTime(NOW.0 + 40)).is_ok());
    assert!(matches!(
        v.verify_at(&nbf, UnixTime(NOW.0 + 39)),
        Err(VerifyError::NotYetValid { .. })
    ));
    // iat: refused beyond now + leeway.
    let iat = with_claims(&f.ed, |c| {
        c.insert("iat".into(), (NOW.0 + 100).into());
        c.remove("nbf");
    });
    assert!(v.verify_at(&iat, UnixTime(NOW.0 + 40)).is_ok());
    assert!(matches!(
        v.verify_at(&iat, UnixTime(NOW.0 + 39)),
        Err(VerifyError::IssuedInFuture { .. })
    ));
}

#[test]
fn zero_leeway_expires_exactly_at_exp() {
    let f = fixture();
    let v = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
        .jwks(f.jwks.clone())
        .leeway(Duration::ZERO)
        .revocation_list(list(&f.ed, 1, vec![]).jws())
        .clock(std::sync::Arc::new(clock::FixedClock(NOW)))
        .build()
        .unwrap();
    let t = f.ed.sign_access_token(&claims()).unwrap();
    assert!(v.verify_at(&t, UnixTime(NOW.0 + 599)).is_ok());
    assert!(matches!(
        v.verify_at(&t, UnixTime(NOW.0 + 600)),
        Err(VerifyError::Expired { .. })
    ));
}

#[test]
fn revocation_by_key_jti_tenant_and_kid() {
    let f = fixture();
    let token = f.ed.sign_access_token(&claims()).unwrap();
    let cases = [
        // A key entry revokes even tokens issued after the revocation time.
        RevocationTarget::Key(ApiKeyId::new("key1").unwrap()),
        RevocationTarget::Jti(Jti::new("jti-1").unwrap()),
        RevocationTarget::Tenant(TenantId::new("acme").unwrap()),
        RevocationTarget::Kid(f.ed.key().kid().clone()),
    ];
    for target in cases {
        let v = verifier(&f);
        assert!(v.verify_at(&token, NOW).is_ok());
        let revoked_at = match target {
            RevocationTarget::Key(_) => UnixTime(NOW.0 - 100),
            _ => NOW,
        };
        v.update_revocations_at(
            list(&f.ed, 2, vec![entry(target.clone(), revoked_at)]).jws(),
            NOW,
        )
        .unwrap();
        assert_eq!(
            v.verify_at(&token, NOW),
            Err(VerifyError::Revoked(target.clone()))
        );
    }
}

#[test]
fn tenant_entry_spares_tokens_issued_after_the_propagation_bound() {
    let f = fixture();
    let v = verifier(&f);
    let revoked_at = UnixTime(NOW.0 - 100);
    v.update_revocations_at(
        list(
            &f.ed,
            2,
            vec![entry(
                RevocationTarget::Tenant(TenantId::new("acme").unwrap()),
                revoked_at,
            )],
        )
        .jws(),
        NOW,
    )
    .unwrap();
    let cutoff = revoked_at.0 + PROPAGATION_BOUND.as_secs();
    let at = |iat: u64| {
        let mut c = claims();
        c.iat = UnixTime(iat);
        c.nbf = None;
        f.ed.sign_access_token(&c).unwrap()
    };
    assert!(matches!(
        v.verify_at(&at(cutoff - 1), NOW),
        Err(VerifyError::Revoked(_))
    ));
    assert!(v.verify_at(&at(cutoff), NOW).is_ok());
}

#[test]
fn other_tokens_survive_a_jti_revocation() {
    let f = fixture();
    let v = verifier(&f);
    v.update_revocations_at(
        list(
            &f.ed,
            2,
            vec![entry(
                RevocationTarget::Jti(Jti::new("jti-1").unwrap()),
                NOW,
            )],
        )
        .jws(),
        NOW,
    )
    .unwrap();
    let mut c = claims();
    c.jti = Jti::new("jti-2").unwrap();
    assert!(
        v.verify_at(&f.ed.sign_access_token(&c).unwrap(), NOW)
            .is_ok()
    );
}

#[test]
fn no_list_or_an_expired_list_fails_closed() {
    let f = fixture();
    let v = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
        .jwks(f.jwks.clone())
        .build()
        .unwrap();
    let t = f.ed.sign_access_token(&claims()).unwrap();
    let err = v.verify_at(&t, NOW).unwrap_err();
    assert_eq!(err, VerifyError::NoRevocationList);
    assert!(err.is_unavailable());

    v.update_revocations_at(list(&f.ed, 1, vec![]).jws(), NOW)
        .unwrap();
    let list_exp = UnixTime(NOW.0 + 86_400);
    let mut c = claims();
    c.exp = UnixTime(list_exp.0 + 600);
    let long = f.ed.sign_access_token(&c).unwrap();
    assert!(v.verify_at(&long, UnixTime(list_exp.0 - 1)).is_ok());
    let err = v.verify_at(&long, list_exp).unwrap_err();
    assert_eq!(
        err,
        VerifyError::RevocationListExpired {
            exp: list_exp,
            now: list_exp
        }
    );
    assert!(err.is_unavailable());
}

#[test]
fn dangerous_skip_revocation_needs_no_list() {
    let f = fixture();
    let v = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
        .jwks(f.jwks.clone())
        .dangerous()
        .skip_revocation_checks()
        .build()
        .unwrap();
    assert!(
        v.verify_at(&f.ed.sign_access_token(&claims()).unwrap(), NOW)
            .is_ok()
    );
}

#[test]
fn list_updates_refuse_rollback_conflict_foreign_and_expired_lists() {
    let f = fixture();
    let v = verifier(&f);
    let l5 = list(&f.ed, 5, vec![]);
    assert_eq!(
        v.update_revocations_at(l5.jws(), NOW).unwrap(),
        RevocationUpdate::Installed { serial: 5 }
    );
    assert_eq!(
        v.update_revocations_at(l5.jws(), NOW).unwrap(),
        RevocationUpdate::Unchanged { serial: 5 }
    );
    assert!(matches!(
        v.update_revocations_at(list(&f.ed, 4, vec![]).jws(), NOW),
        Err(UpdateError::Rollback {
            current: 5,
            offered: 4
        })
    ));
    // Same serial, other bytes (ES256 re-signs differently every time).
    assert!(matches!(
        v.update_revocations_at(list(&f.es, 5, vec![]).jws(), NOW),
        Err(UpdateError::SerialConflict { serial: 5 })
    ));
    assert!(matches!(
        v.update_revocations_at(list(&f.other, 6, vec![]).jws(), NOW),
        Err(UpdateError::List(RevocationListError::UnknownKid(_)))
    ));
    let foreign =
        f.ed.sign_revocation_list(&RevocationList {
            v: 1,
            iss: Issuer::new("https://evil.example").unwrap(),
            serial: 7,
            iat: NOW,
            exp: UnixTime(NOW.0 + 10),
            entries: vec![],
        })
        .unwrap();
    assert!(matches!(
        v.update_revocations_at(foreign.jws(), NOW),
        Err(UpdateError::List(RevocationListError::WrongIssuer { .. }))
    ));
    assert!(matches!(
        v.update_revocations_at(list(&f.ed, 8, vec![]).jws(), UnixTime(NOW.0 + 86_400)),
        Err(UpdateError::Expired { .. })
    ));
    // A token is never a list.
    let token = f.ed.sign_access_token(&claims()).unwrap();
    assert!(matches!(
        v.update_revocations_at(&token, NOW),
        Err(UpdateError::List(RevocationListError::WrongType))
    ));
    assert_eq!(v.revocation_serial(), Some(5));
}

#[test]
fn repeated_token_comes_from_the_cache_but_expiry_and_revocation_are_rechecked() {
    let f = fixture();
    let v = verifier(&f);
    let t = f.ed.sign_access_token(&claims()).unwrap();
    assert_eq!(v.cached_tokens(), 0);
    let first = v.verify_at(&t, NOW).unwrap();
    assert_eq!(v.cached_tokens(), 1);
    assert_eq!(v.verify_at(&t, NOW).unwrap(), first);
    // Expiry on a hit.
    assert!(matches!(
        v.verify_at(&t, UnixTime(NOW.0 + 660)),
        Err(VerifyError::Expired { .. })
    ));
    // Revocation on a hit.
    v.update_revocations_at(
        list(
            &f.ed,
            2,
            vec![entry(
                RevocationTarget::Jti(Jti::new("jti-1").unwrap()),
                NOW,
            )],
        )
        .jws(),
        NOW,
    )
    .unwrap();
    assert!(matches!(v.verify_at(&t, NOW), Err(VerifyError::Revoked(_))));
}

/// A cached token remembers the list it was last found unrevoked in and skips the lookups while
/// that list is in force (issue #14): every new list, whatever it holds, is looked up again, and
/// a lifted revocation lets the token through again.
#[test]
fn a_cached_token_is_looked_up_again_in_every_new_list() {
    let f = fixture();
    let v = verifier(&f);
    let t = f.ed.sign_access_token(&claims()).unwrap();
    let jti = || {
        vec![entry(
            RevocationTarget::Jti(Jti::new("jti-1").unwrap()),
            NOW,
        )]
    };
    let tenant = || {
        vec![entry(
            RevocationTarget::Tenant(TenantId::new("acme").unwrap()),
            NOW,
        )]
    };
    v.verify_at(&t, NOW).unwrap();
    v.verify_at(&t, NOW).unwrap();
    // Revoked by one list, then by another of another kind, then by none.
    v.update_revocations_at(list(&f.ed, 2, jti()).jws(), NOW)
        .unwrap();
    for _ in 0..2 {
        assert!(matches!(
            v.verify_at(&t, NOW),
            Err(VerifyError::Revoked(RevocationTarget::Jti(_)))
        ));
    }
    v.update_revocations_at(list(&f.ed, 3, tenant()).jws(), NOW)
        .unwrap();
    assert!(matches!(
        v.verify_at(&t, NOW),
        Err(VerifyError::Revoked(RevocationTarget::Tenant(_)))
    ));
    v.update_revocations_at(list(&f.ed, 4, vec![]).jws(), NOW)
        .unwrap();
    assert!(v.verify_at(&t, NOW).is_ok());
    assert!(v.verify_at(&t, NOW).is_ok());
    // Found unrevoked in list 4, then list 5 revokes it: the memo of list 4 does not carry over.
    v.update_revocations_at(list(&f.ed, 5, jti()).jws(), NOW)
        .unwrap();
    assert!(matches!(v.verify_at(&t, NOW), Err(VerifyError::Revoked(_))));
}

#[test]
fn cache_entries_go_when_their_kid_leaves_the_key_set() {
    let f = fixture();
    let v = verifier(&f);
    let ed = f.ed.sign_access_token(&claims()).unwrap();
    let es = f.es.sign_access_token(&claims()).unwrap();
    v.verify_at(&ed, NOW).unwrap();
    v.verify_at(&es, NOW).unwrap();
    assert_eq!(v.cached_tokens(), 2);
    v.set_keys(Jwks::new(vec![f.es.key().public_jwk()]).unwrap());
    assert_eq!(v.cached_tokens(), 1);
    assert!(matches!(
        v.verify_at(&ed, NOW),
        Err(VerifyError::UnknownKid { .. })
    ));
    assert!(v.verify_at(&es, NOW).is_ok());
}

#[test]
fn a_kid_revocation_purges_its_cached_tokens() {
    let f = fixture();
    let v = verifier(&f);
    v.verify_at(&f.ed.sign_access_token(&claims()).unwrap(), NOW)
        .unwrap();
    v.verify_at(&f.es.sign_access_token(&claims()).unwrap(), NOW)
        .unwrap();
    v.update_revocations_at(
        list(
            &f.es,
            2,
            vec![entry(RevocationTarget::Kid(f.ed.key().kid().clone()), NOW)],
        )
        .jws(),
        NOW,
    )
    .unwrap();
    assert_eq!(v.cached_tokens(), 1);
}

#[test]
fn a_list_signed_by_a_kid_the_list_in_force_revokes_is_refused_and_the_list_in_force_stays() {
    let f = fixture();
    let v = verifier(&f);
    let revoke_ed = entry(RevocationTarget::Kid(f.ed.key().kid().clone()), NOW);
    v.update_revocations_at(list(&f.es, 2, vec![revoke_ed]).jws(), NOW)
        .unwrap();
    // The revoked key is still in the key set; with it, a newer list that lifts its revocation.
    let lifting = list(&f.ed, 3, vec![]);
    match v.update_revocations_at(lifting.jws(), NOW) {
        Err(UpdateError::SignedByRevokedKey { kid }) => assert_eq!(&kid, f.ed.key().kid()),
        other => panic!("expected SignedByRevokedKey, got {other:?}"),
    }
    assert_eq!(v.revocation_serial(), Some(2));
    let token = f.ed.sign_access_token(&claims()).unwrap();
    assert_eq!(
        v.verify_at(&token, NOW),
        Err(VerifyError::Revoked(RevocationTarget::Kid(
            f.ed.key().kid().clone()
        )))
    );
    // A key that is not revoked still moves the list forward.
    assert_eq!(
        v.update_revocations_at(list(&f.es, 3, vec![]).jws(), NOW)
            .unwrap(),
        RevocationUpdate::Installed { serial: 3 }
    );
}

#[test]
fn scope_and_tenant_requirements_are_access_errors() {
    let f = fixture();
    let v = verifier(&f);
    let ok = v
        .verify_at(&f.ed.sign_access_token(&claims()).unwrap(), NOW)
        .unwrap();
    let read = Scope::new("orders:read").unwrap();
    let admin = Scope::new("admin:keys").unwrap();
    assert!(ok.require_scopes([&read]).is_ok());
    assert_eq!(
        ok.require_scopes([&read, &admin]),
        Err(AccessError::InsufficientScope {
            missing: vec![admin]
        })
    );
    assert!(ok.require_tenant(&TenantId::new("acme").unwrap()).is_ok());
    assert!(matches!(
        ok.require_tenant(&TenantId::new("other").unwrap()),
        Err(AccessError::WrongTenant { .. })
    ));
}

#[test]
fn builder_requires_keys_and_bounds_leeway() {
    let b = || Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap());
    assert!(matches!(b().build(), Err(BuildError::MissingKeys)));
    assert!(matches!(
        b().jwks(Jwks::default())
            .leeway(Duration::from_secs(301))
            .build(),
        Err(BuildError::LeewayTooLarge(_))
    ));
}

#[test]
fn extra_audiences_are_accepted() {
    let f = fixture();
    let v = Verifier::builder(
        Issuer::new(ISS).unwrap(),
        Audience::new("https://a").unwrap(),
    )
    .audience(Audience::new(AUD).unwrap())
    .jwks(f.jwks.clone())
    .revocation_list(list(&f.ed, 1, vec![]).jws())
    .clock(std::sync::Arc::new(clock::FixedClock(NOW)))
    .build()
    .unwrap();
    assert!(
        v.verify(&f.ed.sign_access_token(&claims()).unwrap())
            .is_ok()
    );
}

#[test]
fn verifier_is_send_sync_and_shared_across_threads_while_lists_change() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Verifier>();
    let f = fixture();
    let v = verifier(&f);
    let token = f.ed.sign_access_token(&claims()).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let v = v.clone();
            let token = token.clone();
            s.spawn(move || {
                for _ in 0..200 {
                    match v.verify_at(&token, NOW) {
                        Ok(_) | Err(VerifyError::Revoked(_)) => {}
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
            });
        }
        for serial in 2..50 {
            let entries = if serial % 2 == 0 {
                vec![]
            } else {
                vec![entry(
                    RevocationTarget::Jti(Jti::new("jti-1").unwrap()),
                    NOW,
                )]
            };
            v.update_revocations_at(list(&f.ed, serial, entries).jws(), NOW)
                .unwrap();
        }
    });
    assert_eq!(v.revocation_serial(), Some(49));
    assert!(matches!(
        v.verify_at(&token, NOW),
        Err(VerifyError::Revoked(_))
    ));
}

#[test]
fn files_written_by_publish_are_read() {
    let f = fixture();
    let dir = std::env::temp_dir().join(format!("keymint-verifier-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("jwks.json"), f.jwks.to_json()).unwrap();
    std::fs::write(dir.join("revocations.jws"), list(&f.ed, 3, vec![]).jws()).unwrap();
    let v = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
        .jwks_file(dir.join("jwks.json"))
        .revocation_list_file(dir.join("revocations.jws"))
        .clock(std::sync::Arc::new(clock::FixedClock(NOW)))
        .build()
        .unwrap();
    assert_eq!(v.revocation_serial(), Some(3));
    assert!(
        v.verify(&f.ed.sign_access_token(&claims()).unwrap())
            .is_ok()
    );
    std::fs::write(dir.join("jwks.json"), "garbage").unwrap();
    assert!(matches!(
        v.set_keys_from_file(&dir.join("jwks.json")),
        Err(BuildError::Keys(_))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_dpop_bound_token_is_refused_as_a_bearer_token() {
    let f = fixture();
    let v = verifier(&f);
    let mut c = claims();
    c.cnf = Some(Confirmation {
        jkt: keymint_jwks::Jkt::new("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I").unwrap(),
    });
    let t = f.ed.sign_access_token(&c).unwrap();
    assert_eq!(v.verify_at(&t, NOW), Err(VerifyError::SenderConstrained));
    // Asking again (now from the cache) gives the same answer.
    assert_eq!(v.verify_at(&t, NOW), Err(VerifyError::SenderConstrained));
}

#[test]
fn a_dpop_bound_token_verifies_with_a_fresh_proof_of_its_key_for_this_request() {
    use keymint_jwks::dpop::{access_token_hash, make_proof};
    let f = fixture();
    let v = verifier(&f);
    let browser_key = SigningKey::generate(Algorithm::Es256).unwrap();
    let mut c = claims();
    c.cnf = Some(Confirmation {
        jkt: keymint_jwks::Jkt::new(browser_key.kid().as_str()).unwrap(),
    });
    let t = f.ed.sign_access_token(&c).unwrap();
    let ath = access_token_hash(&t);
    let url = "https://api.example/orders";
    let proof = |jti: &str, method: &str, key: &SigningKey| {
        make_proof(key, method, url, NOW, jti, Some(&ath), None).unwrap()
    };
    let ok = v
        .verify_dpop_at(&t, &proof("p1", "GET", &browser_key), "GET", url, NOW)
        .unwrap();
    assert_eq!(ok.claims().tenant.as_str(), "acme");
    // The same proof again is a replay.
    assert!(
        matches!(v.verify_dpop_at(&t, &proof("p1", "GET", &browser_key), "GET", url, NOW), Err(VerifyError::InvalidDpopProof(m)) if m.contains("replayed"))
    );
    // A proof for another method, or from another key, does not fit.
    assert!(matches!(
        v.verify_dpop_at(&t, &proof("p2", "POST", &browser_key), "GET", url, NOW),
        Err(VerifyError::InvalidDpopProof(_))
    ));
    let thief = SigningKey::generate(Algorithm::Es256).unwrap();
    assert!(matches!(
        v.verify_dpop_at(&t, &proof("p3", "GET", &thief), "GET", url, NOW),
        Err(VerifyError::InvalidDpopProof(_))
    ));
    // An unbound token cannot be presented with DPoP, and a bound one never as a bearer token.
    let unbound = f.ed.sign_access_token(&claims()).unwrap();
    let ath2 = access_token_hash(&unbound);
    let p = make_proof(&browser_key, "GET", url, NOW, "p4", Some(&ath2), None).unwrap();
    assert!(matches!(
        v.verify_dpop_at(&unbound, &p, "GET", url, NOW),
        Err(VerifyError::InvalidDpopProof(_))
    ));
    assert_eq!(v.verify_at(&t, NOW), Err(VerifyError::SenderConstrained));
}
