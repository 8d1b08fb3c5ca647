//! What a token may carry: the scopes, the one audience and the lifetime a request asks for,
//! narrowed to what the key allows. A request may only ask for less, never for more.

use std::time::Duration;

use keymint_jwks::{Audience, ScopeSet};

use super::request::Asked;
use crate::domain::DomainError;
use crate::domain::Fault;
use crate::domain::refusal::{RequestRefusal, ScopeRefusal, TargetRefusal};
use crate::domain::token::active_key::ActiveKey;
use crate::domain::token::grant_text::Parts;

/// The scopes asked for (all of the key's when none), if the key holds them all.
pub(super) fn scope(
    key: Parts<'_>,
    asked: Option<&Asked<ScopeSet>>,
) -> Result<ScopeSet, DomainError> {
    let held = || {
        key.scope_set()
            .map_err(|e| DomainError::Internal(Fault::because("a cached key's scopes", e)))
    };
    match asked {
        None => held(),
        Some(Asked::Malformed(why)) => Err(DomainError::InvalidScope(ScopeRefusal::Malformed(
            why.clone(),
        ))),
        Some(Asked::Valid(asked)) => {
            if held()?.is_superset(asked) {
                Ok(asked.clone())
            } else {
                Err(DomainError::InvalidScope(ScopeRefusal::BeyondTheKey))
            }
        }
    }
}

/// A publishable key's grant narrowed to the scopes an admin has marked public *now*: marking a
/// scope non-public takes it from every publishable key made earlier at its next issuance. A scope
/// asked for by name that is no longer public is `invalid_scope`; a request that named none gets
/// the public ones only (and `invalid_scope` if none is left).
pub(super) fn public_only(
    granted: ScopeSet,
    asked: Option<&Asked<ScopeSet>>,
    public: &std::collections::HashSet<String>,
) -> Result<ScopeSet, DomainError> {
    if let Some(s) = granted.iter().find(|s| !public.contains(s.as_str())) {
        if asked.is_some() {
            return Err(DomainError::InvalidScope(ScopeRefusal::NotPublic(
                s.clone(),
            )));
        }
        let narrowed: ScopeSet = granted
            .iter()
            .filter(|s| public.contains(s.as_str()))
            .cloned()
            .collect();
        if narrowed.is_empty() {
            return Err(DomainError::InvalidScope(ScopeRefusal::NonePublic));
        }
        return Ok(narrowed);
    }
    Ok(granted)
}

/// The audience asked for, or the key's only one (RFC 8707 `invalid_target` otherwise). Admin
/// keys get `admin` and nothing else; no other key ever gets `admin`, whatever its own audiences
/// say.
pub(super) fn audience(
    key: &ActiveKey,
    held: Parts<'_>,
    asked: Option<&Asked<Audience>>,
    admin: Option<&Audience>,
) -> Result<Audience, DomainError> {
    // A malformed audience is one the key does not have.
    let asked = asked.map(Asked::valid);
    if key.is_admin {
        let admin = admin.ok_or_else(|| {
            DomainError::Internal(Fault::new("the issuer URL gives no admin audience"))
        })?;
        return match asked {
            None => Ok(admin.clone()),
            Some(Some(a)) if a == admin => Ok(admin.clone()),
            Some(_) => Err(DomainError::InvalidTarget(TargetRefusal::AdminKeyElsewhere)),
        };
    }
    let chosen = match asked {
        Some(a) => a
            .filter(|a| held.audiences().any(|k| k == a.as_str()))
            .cloned()
            .ok_or_else(|| DomainError::InvalidTarget(TargetRefusal::NotTheKeys)),
        None => match held.only_audience() {
            Some(only) => Audience::new(only)
                .map_err(|e| DomainError::Internal(Fault::because("a cached key's audience", e))),
            None => Err(DomainError::InvalidTarget(TargetRefusal::NoneNamed)),
        },
    }?;
    // Checked on what would be granted, not on what was asked: a key created with the admin
    // audience among its own (before the issuer URL was known) must not get it by default either.
    if admin.is_some_and(|x| *x == chosen) {
        return Err(DomainError::InvalidTarget(TargetRefusal::AdminAudience));
    }
    Ok(chosen)
}

/// The lifetime in seconds: the one asked for (the key's default when none), cut to the key's
/// maximum, the server's maximum and the key's own expiry. Zero when the key expires at `now`.
pub(super) fn lifetime(
    key: &ActiveKey,
    asked: Option<u64>,
    server_max: Duration,
    now: i64,
) -> Result<u64, DomainError> {
    let requested = match asked {
        Some(0) => return Err(DomainError::InvalidRequest(RequestRefusal::ZeroTtl)),
        Some(ttl) => ttl,
        None => u64::try_from(key.default_ttl).unwrap_or(0),
    };
    let until_key_expiry = u64::try_from(key.expires_at - now).unwrap_or(0);
    Ok(requested
        .min(u64::try_from(key.max_ttl).unwrap_or(0))
        .min(server_max.as_secs())
        .min(until_key_expiry))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::store::KeyRecord;

    const NOW: i64 = 1_800_000_000;

    fn key(scopes: &str, audiences: &str, admin: bool) -> ActiveKey {
        ActiveKey::from_record(
            KeyRecord {
                key_id: "k1".into(),
                kind: "sk".into(),
                env: "live".into(),
                tenant: "acme".into(),
                secret_hash: vec![0; 32],
                scopes: scopes.into(),
                audiences: audiences.into(),
                default_ttl: 600,
                max_ttl: 900,
                expires_at: NOW + 3600,
                allow_ips: String::new(),
                allow_origins: String::new(),
                rate_limit: None,
                label: None,
                owner: None,
                is_admin: admin,
                created_at: NOW - 10,
                last_used_at: None,
                revoked_at: None,
                rotated_to: None,
            },
            |_, _| unreachable!("the key has no rate limit"),
        )
        .unwrap()
    }

    /// A field as the token endpoint parses it.
    fn sc(s: &str) -> Option<Asked<ScopeSet>> {
        super::super::request::TokenRequest::parse(Some(s), None, None, None, None, String::new())
            .scope
    }

    fn au(s: Option<&str>) -> Option<Asked<Audience>> {
        s.and_then(|a| {
            super::super::request::TokenRequest::parse(
                None,
                Some(a),
                None,
                None,
                None,
                String::new(),
            )
            .audience
        })
    }

    fn admin_aud() -> Audience {
        Audience::new("https://issuer.test/v1/admin").unwrap()
    }

    #[test]
    fn scope_is_the_keys_when_none_is_asked_and_never_more_than_the_keys() {
        let k = key("a b c", "https://api.test", false);
        let all = ScopeSet::parse("a b c").unwrap();
        assert_eq!(scope(k.grant.parts(), None).unwrap(), all);
        assert_eq!(scope(k.grant.parts(), sc("").as_ref()).unwrap(), all);
        assert_eq!(
            scope(k.grant.parts(), sc("b").as_ref()).unwrap(),
            ScopeSet::parse("b").unwrap()
        );
        assert!(matches!(
            scope(k.grant.parts(), sc("b d").as_ref()),
            Err(DomainError::InvalidScope(_))
        ));
        assert!(matches!(
            scope(k.grant.parts(), sc("b \"").as_ref()),
            Err(DomainError::InvalidScope(_))
        ));
    }

    #[test]
    fn audience_is_the_one_asked_or_the_only_one_and_admin_is_for_admin_keys_alone() {
        let one = key("a", "https://api.test", false);
        let two = key("a", "https://api.test https://other.test", false);
        let admin = admin_aud();
        assert_eq!(
            audience(&one, one.grant.parts(), None, Some(&admin))
                .unwrap()
                .as_str(),
            "https://api.test"
        );
        assert_eq!(
            audience(
                &two,
                two.grant.parts(),
                au(Some("https://other.test")).as_ref(),
                Some(&admin)
            )
            .unwrap()
            .as_str(),
            "https://other.test"
        );
        for (k, asked) in [
            (&two, None),
            (&one, Some("https://elsewhere.test")),
            (&one, Some(admin.as_str())),
        ] {
            assert!(
                matches!(
                    audience(k, k.grant.parts(), au(asked).as_ref(), Some(&admin)),
                    Err(DomainError::InvalidTarget(_))
                ),
                "{asked:?}"
            );
        }
        // A customer key whose only audience is the admin one gets it neither by default nor
        // by asking.
        let sneaky = key("a", admin.as_str(), false);
        for asked in [None, Some(admin.as_str())] {
            assert!(
                matches!(
                    audience(
                        &sneaky,
                        sneaky.grant.parts(),
                        au(asked).as_ref(),
                        Some(&admin)
                    ),
                    Err(DomainError::InvalidTarget(_))
                ),
                "{asked:?}"
            );
        }
        let ak = key("admin:read", "https://api.test", true);
        assert_eq!(
            audience(&ak, ak.grant.parts(), None, Some(&admin)).unwrap(),
            admin
        );
        assert_eq!(
            audience(
                &ak,
                ak.grant.parts(),
                au(Some(admin.as_str())).as_ref(),
                Some(&admin)
            )
            .unwrap(),
            admin
        );
        assert!(matches!(
            audience(
                &ak,
                ak.grant.parts(),
                au(Some("https://api.test")).as_ref(),
                Some(&admin)
            ),
            Err(DomainError::InvalidTarget(_))
        ));
    }

    #[test]
    fn lifetime_is_cut_to_the_key_the_server_and_the_keys_expiry() {
        let k = key("a", "https://api.test", false);
        let hour = Duration::from_secs(3600);
        assert_eq!(lifetime(&k, None, hour, NOW).unwrap(), 600, "key default");
        assert_eq!(lifetime(&k, Some(60), hour, NOW).unwrap(), 60);
        assert_eq!(lifetime(&k, Some(5000), hour, NOW).unwrap(), 900, "key max");
        assert_eq!(
            lifetime(&k, Some(5000), Duration::from_secs(300), NOW).unwrap(),
            300,
            "server max"
        );
        assert_eq!(
            lifetime(&k, None, hour, NOW + 3600 - 42).unwrap(),
            42,
            "never past the key's expiry"
        );
        assert_eq!(lifetime(&k, None, hour, NOW + 3600).unwrap(), 0);
        assert!(matches!(
            lifetime(&k, Some(0), hour, NOW),
            Err(DomainError::InvalidRequest(_))
        ));
    }
}
