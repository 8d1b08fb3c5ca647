//! The settings contract's comparison, with no database: what `serve` runs with for each
//! combination of a stored value and a flag.

use std::time::Duration;

use super::*;

fn issuer(s: &str) -> Issuer {
    Issuer::new(s).unwrap()
}

fn stored() -> Partial {
    Partial {
        issuer: Some(issuer("https://issuer.example")),
        max_token_ttl: Some(Duration::from_secs(3600)),
        jwks_max_age: Some(Duration::from_secs(300)),
        list_validity: Some(Duration::from_secs(86_400)),
    }
}

#[test]
fn an_omitted_flag_takes_the_stored_value() {
    assert_eq!(resolve(&stored(), &Partial::default()).unwrap(), stored());
}

#[test]
fn a_flag_equal_to_the_stored_value_is_accepted() {
    let given = Partial {
        issuer: Some(issuer("https://issuer.example")),
        max_token_ttl: Some(Duration::from_secs(3600)),
        ..Partial::default()
    };
    assert_eq!(resolve(&stored(), &given).unwrap(), stored());
}

#[test]
fn a_flag_that_differs_from_the_stored_value_is_refused_naming_both() {
    let given = Partial {
        issuer: Some(issuer("http://127.0.0.1:9999")),
        ..Partial::default()
    };
    let err = resolve(&stored(), &given).unwrap_err();
    let DomainError::Conflict(ConflictReason::Setting {
        name,
        stored,
        given,
    }) = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*name, "issuer-url");
    assert_eq!(stored, "https://issuer.example");
    assert_eq!(given, "http://127.0.0.1:9999");

    let given = Partial {
        max_token_ttl: Some(Duration::from_secs(7200)),
        ..Partial::default()
    };
    let err = resolve(&self::stored(), &given).unwrap_err().to_string();
    assert_eq!(err, "max-token-ttl is 1h in the database, and 2h was given");
}

#[test]
fn nothing_stored_is_a_first_start_the_flags_and_then_the_defaults_apply() {
    let given = Partial {
        jwks_max_age: Some(Duration::from_secs(2)),
        ..Partial::default()
    };
    let resolved = resolve(&Partial::default(), &given).unwrap();
    assert_eq!(resolved, given);
    let s = Settings::with_defaults(&resolved, || issuer("http://127.0.0.1:8080")).unwrap();
    assert_eq!(s.issuer().as_str(), "http://127.0.0.1:8080");
    assert_eq!(s.jwks_max_age(), Duration::from_secs(2));
    assert_eq!(s.max_token_ttl(), DEFAULT_MAX_TOKEN_TTL);
    assert_eq!(s.list_validity(), DEFAULT_LIST_VALIDITY);
    assert_eq!(
        s.admin_audience().as_str(),
        "http://127.0.0.1:8080/v1/admin"
    );
}

#[test]
fn a_setting_missing_from_an_older_database_takes_the_flag_without_a_conflict() {
    // Databases from before the contract stored three of the four.
    let older = Partial {
        list_validity: None,
        ..stored()
    };
    let given = Partial {
        list_validity: Some(Duration::from_secs(3600)),
        ..Partial::default()
    };
    let resolved = resolve(&older, &given).unwrap();
    assert_eq!(resolved.list_validity, Some(Duration::from_secs(3600)));
}

#[test]
fn values_are_checked_like_serve_checks_its_flags() {
    let ok = |n: &str, v: &str| Partial::one(n.parse().unwrap(), v);
    assert_eq!(
        ok("max-token-ttl", "2h").unwrap().max_token_ttl,
        Some(Duration::from_secs(7200))
    );
    assert_eq!(
        ok("jwks-max-age", "30").unwrap().jwks_max_age,
        Some(Duration::from_secs(30))
    );
    assert!(ok("jwks-max-age", "24h").is_ok());
    assert!(ok("jwks-max-age", "86401").is_err());
    assert!(ok("jwks-max-age", "5d").is_err());
    assert!(ok("jwks-max-age", "9223372036854775807").is_err());
    assert!(ok("max-token-ttl", "0s").is_err());
    assert!(ok("max-token-ttl", "24h").is_ok());
    assert!(ok("max-token-ttl", "86401").is_err());
    assert!(ok("max-token-ttl", "10d").is_err());
    assert!(ok("revocation-list-validity", "59s").is_err());
    assert!(ok("revocation-list-validity", "7d").is_ok());
    assert!(ok("revocation-list-validity", "8d").is_err());
    assert!(ok("issuer-url", "https://issuer.example/tenant-a").is_ok());
    for bad in [
        "issuer.example",
        "ftp://issuer.example",
        "https://",
        "https://user:secret@issuer.example",
        "https://user@issuer.example",
        "https://issuer.example/?tenant=a",
        "https://issuer.example/#a",
    ] {
        assert!(ok("issuer-url", bad).is_err(), "{bad}");
    }
    assert!("issuer".parse::<SettingName>().is_err());
}

#[test]
fn stored_rows_round_trip_and_a_corrupt_one_is_no_default() {
    let rows: Vec<(String, String)> = stored()
        .rows()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    assert_eq!(Partial::from_rows(&rows).unwrap(), stored());
    let bad = vec![("max_token_ttl".to_owned(), "an hour".to_owned())];
    assert!(matches!(
        Partial::from_rows(&bad),
        Err(DomainError::Corrupt(_))
    ));
}

#[test]
fn plain_http_is_warned_of_only_off_loopback() {
    let warned = |u: &str| plain_http_warning(&issuer(u)).is_some();
    for quiet in [
        "https://issuer.example",
        "http://127.0.0.1:8080",
        "http://127.8.0.1",
        "http://[::1]:8080",
        "http://localhost:8080",
        "http://keymint.localhost",
    ] {
        assert!(!warned(quiet), "{quiet}");
    }
    for loud in [
        "http://issuer.example",
        "http://10.0.0.5:8080",
        "http://[2001:db8::1]",
        "http://localhost.example",
    ] {
        assert!(warned(loud), "{loud}");
    }
}
