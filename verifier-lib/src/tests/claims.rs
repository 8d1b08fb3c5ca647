//! Claims: each required one, the time claims at their exact boundaries, scope and tenant
//! requirements, audiences, and what the builder insists on.

use super::*;

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
