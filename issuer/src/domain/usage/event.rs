//! One use of the token endpoint, as the request path hands it over: borrowed, nothing copied.

use std::net::IpAddr;

/// Granted or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A token was issued.
    Granted,
    /// The request was refused.
    Refused,
}

impl Outcome {
    /// As stored and logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::Refused => "refused",
        }
    }
}

/// The key a request presented, as far as the issuer knows it.
#[derive(Debug, Clone, Copy)]
pub enum Presented<'a> {
    /// No key ID could be read.
    None,
    /// A well-formed key ID that no key has (the client chose it).
    Unknown(&'a str),
    /// A key that exists, its secret verified (a granted request, or one refused for what the
    /// key's holder asked).
    Known(&'a str),
    /// A key that exists, presented with a wrong secret (anyone can write a key ID), or a
    /// publishable key refused (anyone can copy one from a page): these count under the key in a
    /// share of their own and cannot crowd its holder's clients out of the rollups.
    Claimed(&'a str),
}

impl<'a> Presented<'a> {
    /// The key ID as presented, for the log line.
    pub fn logged(self) -> Option<&'a str> {
        match self {
            Self::None => None,
            Self::Unknown(id) | Self::Known(id) | Self::Claimed(id) => Some(id),
        }
    }

    /// The key ID a rollup row is kept under: unknown IDs are one row, not one each.
    pub(super) fn stored(self) -> &'a str {
        match self {
            Self::None => "",
            Self::Unknown(_) => "unknown",
            Self::Known(id) | Self::Claimed(id) => id,
        }
    }
}

/// One use of the token endpoint (or of the admin API's authentication).
#[derive(Debug, Clone, Copy)]
pub struct Usage<'a> {
    /// When (Unix seconds).
    pub at: i64,
    /// `token.issue`, `token.request`, `admin.auth`.
    pub action: &'a str,
    /// Granted or refused.
    pub outcome: Outcome,
    /// The refusal's reason code (a small fixed set); empty when granted.
    pub code: &'a str,
    /// The refusal in words, for the log line.
    pub reason: Option<&'a str>,
    /// The key presented.
    pub key: Presented<'a>,
    /// The key's tenant, once known.
    pub tenant: Option<&'a str>,
    /// Scopes requested or granted.
    pub scopes: Option<&'a str>,
    /// The client address.
    pub client: IpAddr,
    /// The `Origin` header.
    pub origin: Option<&'a str>,
    /// What was issued, when a token was.
    pub issued: Option<Issued<'a>>,
}

/// The token a granted request was given, for its log line: the per-token record.
#[derive(Debug, Clone, Copy)]
pub struct Issued<'a> {
    /// The token's `jti`.
    pub jti: &'a str,
    /// Its audience.
    pub aud: &'a str,
    /// Its lifetime in seconds.
    pub ttl: u64,
}
