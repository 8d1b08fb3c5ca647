//! The checks a setting's value meets: those `serve` has always enforced, and the caps on what
//! may newly be set. (Kept apart from `Partial`, which calls them, so that neither imports the
//! other's module.)

use std::time::Duration;

use keymint_jwks::{Issuer, MAX_LIST_VALIDITY};

use super::name::SettingName;
use crate::domain::DomainError;
use crate::domain::refusal::InvalidInput;

/// The longest `--max-token-ttl` a start or `settings set` accepts: tokens are meant to live
/// minutes, and every revocation entry and every retired signing key stays published for the
/// maximum token lifetime, so a typo of `10d` for `10m` would keep them for days. A database that
/// stored a longer value before this cap existed still starts with it.
pub const MAX_TOKEN_TTL_CAP: Duration = Duration::from_secs(24 * 3600);
/// The longest `--jwks-max-age` a start or `settings set` accepts: a signing-key rotation waits
/// one cache period before the new key signs (and `rotate` refuses another meanwhile), so `5d`
/// typed for `5m` would hold rotations for days. Verifiers cache a JWKS minutes, not days; a
/// database that stored a longer value before this cap existed still starts with it.
pub const MAX_JWKS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// The shortest list validity: the list is re-signed every third of it.
pub const MIN_LIST_VALIDITY: Duration = Duration::from_secs(60);

pub(super) fn invalid(name: SettingName, why: String) -> DomainError {
    DomainError::Invalid(InvalidInput::Setting {
        name: name.as_str(),
        why,
    })
}

/// An issuer URL: a valid `iss` and an absolute http(s) URL, since the published URLs (JWKS,
/// token endpoint, list) are built under it.
pub fn check_issuer(text: &str) -> Result<Issuer, DomainError> {
    let bad = |why: String| invalid(SettingName::IssuerUrl, why);
    // A value that may hold a secret (credentials, a query) is not repeated: the message may end
    // up in a log.
    let shown = if text.contains(['@', '?', '#']) {
        "the value".to_owned()
    } else {
        format!("{text:?}")
    };
    let url = url::Url::parse(text).map_err(|e| bad(format!("{shown} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad(format!("{shown} is not an http(s) URL")));
    }
    // RFC 8414 section 2: scheme, host, port and path only. Credentials would be in every token
    // and in the published metadata; a query or fragment breaks the URLs built under it.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "an issuer URL carries no user name or password: every token would".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(format!(
            "{shown} has a query or fragment; an issuer URL is scheme, host, port and path"
        )));
    }
    Issuer::new(text).map_err(|e| bad(e.to_string()))
}

/// Why an issuer URL deserves a warning: plain `http` on a host other than loopback, where API
/// keys sent to its token endpoint would cross the network in clear text (and verifiers that
/// discover their sources only over https refuse it). Not refused: a service mesh may encrypt
/// what the URL says is plain.
pub fn plain_http_warning(issuer: &Issuer) -> Option<String> {
    let url = url::Url::parse(issuer.as_str()).ok()?;
    if url.scheme() != "http" {
        return None;
    }
    let loopback = match url.host()? {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(name) => name == "localhost" || name.ends_with(".localhost"),
    };
    (!loopback).then(|| {
        format!(
            "the issuer URL {issuer} is plain http on a host other than loopback: clients would \
             send API keys to its token endpoint in clear text. Serve it under https (`keymint \
             settings set issuer-url https://...`) unless something on the way encrypts it"
        )
    })
}

/// The bounds `serve` has always enforced: a positive token lifetime, and a list validity from
/// a minute (it is re-signed every third) to the format's cap (verifiers refuse longer).
pub fn check_duration(name: SettingName, d: Duration) -> Result<(), DomainError> {
    match name {
        SettingName::MaxTokenTtl if d.is_zero() => Err(invalid(name, "must be positive".into())),
        SettingName::RevocationListValidity if d < MIN_LIST_VALIDITY => {
            Err(invalid(name, "must be at least 1m".into()))
        }
        SettingName::RevocationListValidity if d > MAX_LIST_VALIDITY => Err(invalid(
            name,
            format!(
                "{}s is above the cap of {}s (7d): verifiers refuse a revocation list valid for \
                 longer, so none would accept this issuer's lists",
                d.as_secs(),
                MAX_LIST_VALIDITY.as_secs()
            ),
        )),
        _ => Ok(()),
    }
}

/// [`check_duration`], plus the cap on what may newly be set (a flag of `serve`, `settings set`):
/// at most [`MAX_TOKEN_TTL_CAP`] for the maximum token lifetime and [`MAX_JWKS_MAX_AGE`] for the
/// JWKS cache period.
pub fn check_new_duration(name: SettingName, d: Duration) -> Result<(), DomainError> {
    check_duration(name, d)?;
    if name == SettingName::JwksMaxAge && d > MAX_JWKS_MAX_AGE {
        return Err(invalid(
            name,
            format!(
                "{}s is above the cap of {}s (24h): a signing-key rotation waits one JWKS cache \
                 period before the new key signs",
                d.as_secs(),
                MAX_JWKS_MAX_AGE.as_secs()
            ),
        ));
    }
    if name == SettingName::MaxTokenTtl && d > MAX_TOKEN_TTL_CAP {
        return Err(invalid(
            name,
            format!(
                "{}s is above the cap of {}s (24h): tokens are meant to live minutes, and \
                 revocations and retired signing keys stay published for this long",
                d.as_secs(),
                MAX_TOKEN_TTL_CAP.as_secs()
            ),
        ));
    }
    Ok(())
}
