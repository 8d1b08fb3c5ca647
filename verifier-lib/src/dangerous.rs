//! Knobs that weaken verification, kept out of the normal builder so that they are never the
//! short path.

use crate::builder::VerifierBuilder;

impl VerifierBuilder {
    /// Knobs that weaken verification. Read [`DangerousBuilder`] before using one.
    pub fn dangerous(self) -> DangerousBuilder {
        DangerousBuilder(self)
    }
}

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

/// The dangerous side of a [`LiveConfig`](crate::live::LiveConfig), reached through
/// [`LiveConfig::dangerous`](crate::live::LiveConfig::dangerous).
#[cfg(feature = "live")]
#[derive(Debug)]
#[must_use]
pub struct DangerousLiveConfig(pub(crate) crate::live::LiveConfig);

#[cfg(feature = "live")]
impl crate::live::LiveConfig {
    /// Knobs that weaken the sources. Read [`DangerousLiveConfig`] before using one.
    pub fn dangerous(self) -> DangerousLiveConfig {
        DangerousLiveConfig(self)
    }
}

#[cfg(feature = "live")]
impl DangerousLiveConfig {
    /// Fetches the key set, the list and the events over plain `http` from any host, not only
    /// from loopback. Anyone on the network path can then serve their own key set and sign tokens
    /// that verify, or hold back every revocation. Only for a network the application fully
    /// trusts (a TLS-terminating sidecar on the same host under another name, a test rig).
    pub fn allow_plain_http_to_any_host(mut self) -> crate::live::LiveConfig {
        self.0.plain_http_anywhere = true;
        self.0
    }
}
