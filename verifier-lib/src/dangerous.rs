//! Knobs that weaken verification, kept out of the normal builder so that they are never the
//! short path.

use crate::builder::VerifierBuilder;

/// The dangerous side of a [`VerifierBuilder`], reached through
/// [`VerifierBuilder::dangerous`].
#[derive(Debug)]
#[must_use]
pub struct DangerousBuilder(pub(crate) VerifierBuilder);

impl DangerousBuilder {
    /// Never consults a revocation list: revoked keys, tokens, tenants and signing keys stay valid
    /// until their tokens expire, and a missing or expired list no longer fails closed. Only for
    /// debugging tools and tests.
    pub fn skip_revocation_checks(self) -> VerifierBuilder {
        self.0.skip_revocation()
    }
}
