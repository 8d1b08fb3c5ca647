//! The signature algorithms keymint knows.

use std::fmt;

/// A JWS signature algorithm. The algorithm of a token is pinned by the key that verifies it,
/// never chosen by the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// Ed25519 (RFC 8037 `EdDSA`; the fully specified name `Ed25519` is read as the same thing).
    /// keymint's default.
    EdDsa,
    /// ECDSA on P-256 with SHA-256, fixed-length `r || s` signatures (RFC 7518 §3.4).
    Es256,
}

impl Algorithm {
    /// The `alg` header value keymint writes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
        }
    }

    /// Whether a token's `alg` header names this algorithm. Exact, case-sensitive comparison:
    /// `none`, `HS256`, `eddsa` and everything else never match.
    pub fn matches_header(self, alg: &str) -> bool {
        match self {
            Self::EdDsa => alg == "EdDSA" || alg == "Ed25519",
            Self::Es256 => alg == "ES256",
        }
    }

    /// Parses the name an operator or JWK uses (`EdDSA`, `Ed25519`, `ES256`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "EdDSA" | "Ed25519" => Some(Self::EdDsa),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }

    /// The exact length of a signature for this algorithm.
    pub fn signature_len(self) -> usize {
        64
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
