//! keymint in one minute, before the issuer service exists: make a signing key and its JWKS, mint a
//! token, verify it offline the way an API server would, revoke the key, watch the token fail.
//!
//! `cargo run -p keymint-examples --example quickstart`

use std::error::Error;

use keymint_jwks::*;
use keymint_verifier::{Verifier, VerifyError};

fn main() -> Result<(), Box<dyn Error>> {
    let issuer = Issuer::new("https://issuer.example")?;
    let audience = Audience::new("https://api.example")?;
    let now = UnixTime::now();

    // Issuer side: a signing key (Ed25519), the key set it publishes and an empty revocation list.
    let signer = Signer::new(SigningKey::generate(Algorithm::EdDsa)?);
    let jwks = Jwks::new(vec![signer.key().public_jwk()])?;
    let out = std::env::temp_dir().join(format!("keymint-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("jwks.json"), jwks.to_json())?;
    let list = |serial, entries| RevocationList {
        v: LIST_VERSION,
        iss: issuer.clone(),
        serial,
        iat: now,
        exp: now.saturating_add(std::time::Duration::from_secs(86_400)),
        entries,
    };
    std::fs::write(
        out.join("revocations.jws"),
        signer.sign_revocation_list(&list(1, vec![]))?.jws(),
    )?;
    println!("published {}/jwks.json and revocations.jws", out.display());
    println!("signing key kid: {}", signer.key().kid());

    // Mint a 10-minute token for API key "demoKey1" of tenant "acme".
    let claims = Claims {
        iss: issuer.clone(),
        sub: ApiKeyId::new("demoKey1")?,
        aud: audience.clone(),
        exp: now.saturating_add(std::time::Duration::from_secs(600)),
        iat: now,
        nbf: Some(now),
        jti: Jti::new(format!("quickstart-{}", now.as_secs()))?,
        client_id: ClientId::new("demoKey1")?,
        scope: ScopeSet::parse("orders:read")?,
        tenant: TenantId::new("acme")?,
        cnf: None,
    };
    let token = signer.sign_access_token(&claims)?;
    println!(
        "\ntoken: {} bytes, minted (never print whole tokens in logs)",
        token.len()
    );

    // API server side: built once from the published files, then verify with no I/O.
    let verifier = Verifier::builder(issuer.clone(), audience)
        .jwks_file(out.join("jwks.json"))
        .revocation_list_file(out.join("revocations.jws"))
        .build()?;
    let verified = verifier.verify(&token)?;
    verified.require_scopes([&Scope::new("orders:read")?])?;
    println!(
        "\nverified: tenant={} sub={} scope=\"{}\" expires in {} s",
        verified.claims().tenant,
        verified.claims().sub,
        verified.claims().scope,
        verified.claims().exp.as_secs() - now.as_secs()
    );
    if let Err(e) = verified.require_scopes([&Scope::new("orders:write")?]) {
        println!("a route needing orders:write says: {e} (HTTP 403)");
    }

    // The key leaks: revoke it and publish a new list (serial 2).
    let revoked = list(
        2,
        vec![RevocationEntry {
            target: RevocationTarget::Key(ApiKeyId::new("demoKey1")?),
            revoked_at: now,
            drop_after: now.saturating_add(std::time::Duration::from_secs(3_600)),
        }],
    );
    std::fs::write(
        out.join("revocations.jws"),
        signer.sign_revocation_list(&revoked)?.jws(),
    )?;
    verifier.update_revocations_from_file(&out.join("revocations.jws"))?;
    match verifier.verify(&token) {
        Err(e @ VerifyError::Revoked(_)) => println!("\nafter revoking the key: {e} (HTTP 401)"),
        other => return Err(format!("expected a revocation, got {other:?}").into()),
    }
    std::fs::remove_dir_all(&out)?;
    Ok(())
}
