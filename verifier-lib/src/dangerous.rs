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

    /// Without a [`dpop_base_url`](VerifierBuilder::dpop_base_url), checks a DPoP proof's `htu`
    /// against `http://` plus the request's `Host` header. The header is the client's to choose,
    /// so a proof made for another host that reaches this server is accepted; only for a server
    /// reached under a single name on a trusted network.
    pub fn dpop_htu_from_host_header(self) -> VerifierBuilder {
        self.0.htu_from_host()
    }
}
