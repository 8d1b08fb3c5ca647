//! The Rust verifier runs the shared conformance corpus (`tests/fixtures/conformance/`, format in
//! its README). The Node and Python packages run the same files and must give the same outcome
//! and reason code for every step.

use std::path::{Path, PathBuf};
use std::time::Duration;

use keymint_jwks::{Audience, Issuer, Jwks, Scope, TenantId, UnixTime};
use keymint_verifier::Verifier;
use serde_json::Value;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/conformance")
}

fn keys(rel: &str) -> Jwks {
    Jwks::from_json(&std::fs::read(corpus().join(rel)).unwrap()).unwrap()
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("`{k}` must be a string in {v}"))
}

fn only(v: &Value, allowed: &[&str], what: &str) {
    for k in v.as_object().unwrap().keys() {
        assert!(
            allowed.contains(&k.as_str()),
            "unknown member `{k}` in {what}"
        );
    }
}

fn build(case: &Value) -> Verifier {
    let cfg = &case["verifier"];
    only(
        cfg,
        &[
            "issuer",
            "audiences",
            "leeway",
            "list_validity_cap",
            "max_token_bytes",
        ],
        "verifier",
    );
    let auds: Vec<&str> = cfg["audiences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let mut b = Verifier::builder(
        Issuer::new(str_of(cfg, "issuer")).unwrap(),
        Audience::new(auds[0]).unwrap(),
    );
    for a in &auds[1..] {
        b = b.audience(Audience::new(*a).unwrap());
    }
    b = b
        .jwks(keys(str_of(case, "jwks")))
        .leeway(Duration::from_secs(cfg["leeway"].as_u64().unwrap_or(60)));
    if let Some(cap) = cfg.get("list_validity_cap") {
        b = b.max_revocation_list_validity(Duration::from_secs(cap.as_u64().unwrap()));
    }
    if let Some(max) = cfg.get("max_token_bytes") {
        b = b.max_token_len(usize::try_from(max.as_u64().unwrap()).unwrap());
    }
    b.build().unwrap()
}

/// Runs one step; `Err` says how the outcome differed from the expectation.
fn step(v: &Verifier, s: &Value) -> Result<(), String> {
    let at = UnixTime(s["at"].as_u64().expect("`at` is required"));
    if let Some(rel) = s.get("jwks") {
        only(s, &["at", "jwks"], "a key set step");
        v.set_keys(keys(rel.as_str().unwrap()));
        return Ok(());
    }
    if let Some(list) = s.get("list") {
        only(s, &["at", "list", "expect"], "a list step");
        let jws = match (list.get("file"), list.get("jws")) {
            (Some(f), None) => std::fs::read_to_string(corpus().join(f.as_str().unwrap())).unwrap(),
            (None, Some(j)) => j.as_str().unwrap().to_owned(),
            _ => panic!("a list is {{\"file\"}} or {{\"jws\"}}: {list}"),
        };
        let got = match v.update_revocations_at(&jws, at) {
            Ok(_) => "installed".to_owned(),
            Err(e) => format!("refused {}", e.code()),
        };
        let want = match &s["expect"] {
            Value::String(x) if x == "installed" => "installed".to_owned(),
            e => format!("refused {}", str_of(e, "refused")),
        };
        return if got == want {
            Ok(())
        } else {
            Err(format!("list: expected {want}, got {got}"))
        };
    }
    only(
        s,
        &["at", "token", "require", "dpop", "expect"],
        "a token step",
    );
    let token = str_of(s, "token");
    let result = match s.get("dpop") {
        Some(d) => {
            only(d, &["proof", "method", "url"], "dpop");
            v.verify_dpop_at(
                token,
                str_of(d, "proof"),
                str_of(d, "method"),
                str_of(d, "url"),
                at,
            )
        }
        None => v.verify_at(token, at),
    };
    let outcome = result.map_err(|e| e.code()).and_then(|t| {
        if let Some(req) = s.get("require") {
            only(req, &["scopes", "tenant"], "require");
            let scopes: Vec<Scope> = req
                .get("scopes")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|x| Scope::new(x.as_str().unwrap()).unwrap())
                        .collect()
                })
                .unwrap_or_default();
            t.require_scopes(&scopes).map_err(|e| e.code())?;
            if let Some(tn) = req.get("tenant") {
                t.require_tenant(&TenantId::new(tn.as_str().unwrap()).unwrap())
                    .map_err(|e| e.code())?;
            }
        }
        Ok(t)
    });
    let expect = &s["expect"];
    match (outcome, expect.get("valid"), expect.get("invalid")) {
        (Ok(t), Some(want), None) => {
            let c = t.claims();
            let got = serde_json::json!({
                "sub": c.sub.as_str(), "tenant": c.tenant.as_str(), "jti": c.jti.as_str(),
                "scope": c.scope.iter().map(Scope::as_str).collect::<Vec<_>>().join(" "),
            });
            for (k, w) in want.as_object().unwrap() {
                if got.get(k) != Some(w) {
                    return Err(format!(
                        "valid, but `{k}` is {:?}, expected {w}",
                        got.get(k)
                    ));
                }
            }
            Ok(())
        }
        (Err(code), None, Some(want)) if want.as_str() == Some(code) => Ok(()),
        (Ok(_), None, Some(want)) => Err(format!("expected invalid {want}, got valid")),
        (Err(code), Some(_), None) => Err(format!("expected valid, got invalid {code}")),
        (Err(code), None, Some(want)) => Err(format!("expected invalid {want}, got {code}")),
        _ => panic!("`expect` is {{\"valid\": ...}} or {{\"invalid\": code}}: {expect}"),
    }
}

#[test]
fn the_rust_verifier_agrees_with_every_case_of_the_conformance_corpus() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus().join("cases"))
        .expect("tests/fixtures/conformance/cases")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 100, "only {} cases", files.len());
    let mut failures = Vec::new();
    let mut steps = 0;
    for f in &files {
        let case: Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        only(
            &case,
            &["description", "verifier", "jwks", "steps"],
            "a case",
        );
        let v = build(&case);
        for (i, s) in case["steps"].as_array().unwrap().iter().enumerate() {
            steps += 1;
            if let Err(e) = step(&v, s) {
                let name = f.file_name().unwrap().to_string_lossy().into_owned();
                failures.push(format!("{name} step {i}: {e}"));
                break;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    eprintln!("{} cases, {steps} steps agree", files.len());
}
