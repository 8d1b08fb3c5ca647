//! A token that passed verification, and the cheap access checks made on it.

use std::sync::Arc;

use keymint_jwks::{Algorithm, Claims, Kid, Scope, TenantId};

use crate::AccessError;

/// A verified access token: its typed claims and the key that signed it. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken(Arc<Inner>);

#[derive(Debug, PartialEq, Eq)]
struct Inner {
    claims: Claims,
    kid: Kid,
    alg: Algorithm,
}

impl VerifiedToken {
    pub(crate) fn new(claims: Claims, kid: Kid, alg: Algorithm) -> Self {
        Self(Arc::new(Inner { claims, kid, alg }))
    }

    /// The typed claims.
    pub fn claims(&self) -> &Claims {
        &self.0.claims
    }

    /// The `kid` of the key that signed the token.
    pub fn kid(&self) -> &Kid {
        &self.0.kid
    }

    /// The algorithm of that key.
    pub fn algorithm(&self) -> Algorithm {
        self.0.alg
    }

    /// Requires every scope in `required`. The error lists the ones missing.
    pub fn require_scopes<'a>(
        &self,
        required: impl IntoIterator<Item = &'a Scope>,
    ) -> Result<(), AccessError> {
        let missing: Vec<Scope> = required
            .into_iter()
            .filter(|s| !self.0.claims.scope.contains(s))
            .cloned()
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(AccessError::InsufficientScope { missing })
        }
    }

    /// Requires the token to belong to `tenant`.
    pub fn require_tenant(&self, tenant: &TenantId) -> Result<(), AccessError> {
        if &self.0.claims.tenant == tenant {
            Ok(())
        } else {
            Err(AccessError::WrongTenant {
                expected: tenant.clone(),
                found: self.0.claims.tenant.clone(),
            })
        }
    }
}
