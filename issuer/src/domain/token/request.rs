//! What a token request asks for, parsed at the edge, and what it gets.

use keymint_jwks::{Audience, Jkt, ScopeSet};

/// What a client asked for, each field parsed once at the edge ([`TokenRequest::parse`]). Every
/// field may only narrow what the key allows.
#[derive(Debug, Default, Clone)]
pub struct TokenRequest {
    /// Scopes (none asked for: all of the key's).
    pub scope: Option<Asked<ScopeSet>>,
    /// One audience.
    pub audience: Option<Asked<Audience>>,
    /// Lifetime in seconds.
    pub ttl: Option<u64>,
    /// Bind the token to this DPoP key thumbprint (RFC 9449 §10): a backend minting a token for
    /// its browser's key.
    pub dpop_jkt: Option<Asked<Jkt>>,
    /// A `DPoP` proof header (RFC 9449 §5): the token is bound to the proof's key.
    pub dpop_proof: Option<String>,
    /// The path the request was made to, for the proof's `htu`.
    pub path: String,
}

/// A request field as the edge parsed it. A malformed one is refused only once the key has
/// authenticated, so that a caller without a valid key hears `invalid_client` whatever else is
/// wrong with its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked<T> {
    /// Well formed.
    Valid(T),
    /// Malformed: why, in the server's words (never the client's text).
    Malformed(String),
}

impl<T> Asked<T> {
    fn parse<E: std::fmt::Display>(raw: &str, parse: impl FnOnce(&str) -> Result<T, E>) -> Self {
        parse(raw).map_or_else(|e| Self::Malformed(e.to_string()), Self::Valid)
    }

    /// The value, if well formed.
    pub fn valid(&self) -> Option<&T> {
        match self {
            Self::Valid(v) => Some(v),
            Self::Malformed(_) => None,
        }
    }
}

impl TokenRequest {
    /// A request from the raw fields of a token endpoint: each parsed once, here. An empty
    /// `scope` asks for none in particular (all of the key's).
    pub fn parse(
        scope: Option<&str>,
        audience: Option<&str>,
        ttl: Option<u64>,
        dpop_jkt: Option<&str>,
        dpop_proof: Option<String>,
        path: String,
    ) -> Self {
        Self {
            scope: scope
                .filter(|s| !s.is_empty())
                .map(|s| Asked::parse(s, ScopeSet::parse)),
            audience: audience.map(|a| Asked::parse(a, |a| Audience::new(a))),
            ttl,
            dpop_jkt: dpop_jkt.map(|j| Asked::parse(j, |j| Jkt::new(j))),
            dpop_proof,
            path,
        }
    }
}

/// A minted token. `Debug` leaves the token out: a whole token is never to reach a log.
#[derive(Clone)]
pub struct IssuedToken {
    /// The compact JWS. Never logged.
    pub access_token: String,
    /// The real lifetime in seconds.
    pub expires_in: u64,
    /// The granted scopes, space separated (as in the token).
    pub scope: String,
    /// `Bearer`, or `DPoP` for a sender-constrained token.
    pub token_type: &'static str,
    /// The browser origin to answer CORS for, when the key allows it.
    pub cors_origin: Option<String>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("token_type", &self.token_type)
            .field("cors_origin", &self.cors_origin)
            .finish()
    }
}
