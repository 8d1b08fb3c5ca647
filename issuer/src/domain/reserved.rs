//! Names no customer may use: the admin API's path, scopes, tenant and audience. A leaf, so that
//! key policy, revocation and token exchange can refuse them without depending on the admin API.

use std::time::Duration;

use keymint_jwks::{Audience, Issuer};

use crate::domain::{DomainError, Fault};

/// Where the admin API lives, under the issuer URL; also its tokens' audience.
pub const ADMIN_PATH: &str = "/v1/admin";
/// Lists and reads everything (keys, tenants, scopes, revocations, signing keys, audit).
pub const READ: &str = "admin:read";
/// Creates, rotates and revokes; implies [`READ`].
pub const WRITE: &str = "admin:write";
/// The tenant admin keys belong to: reserved, so no customer key can be made in it and no tenant
/// revocation can sweep the admin keys away with a customer's.
pub const ADMIN_TENANT: &str = "admin";
/// The longest an admin key may live.
pub const MAX_ADMIN_KEY_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// The audience of admin tokens: `<issuer>/v1/admin`.
pub fn admin_audience(issuer: &Issuer) -> Result<Audience, DomainError> {
    Audience::new(format!(
        "{}{ADMIN_PATH}",
        issuer.as_str().trim_end_matches('/')
    ))
    .map_err(|e| DomainError::Internal(Fault::because("admin audience", e)))
}
