//! The names of the shared settings: as `keymint settings` and the admin API spell them, and as
//! their rows in the `settings` table are keyed.

use std::fmt;
use std::str::FromStr;

/// One of the shared settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SettingName {
    /// `iss` of every token and list, and the base of the published URLs.
    IssuerUrl,
    /// The longest lifetime any key's tokens may get.
    MaxTokenTtl,
    /// `Cache-Control: max-age` of the JWKS; rotations wait it out.
    JwksMaxAge,
    /// How long each signed revocation list is valid.
    RevocationListValidity,
}

impl SettingName {
    /// Every setting, in the order they are shown.
    pub const ALL: [Self; 4] = [
        Self::IssuerUrl,
        Self::MaxTokenTtl,
        Self::JwksMaxAge,
        Self::RevocationListValidity,
    ];

    /// The name `keymint settings` and the admin API use (the `serve` flag without `--`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IssuerUrl => "issuer-url",
            Self::MaxTokenTtl => "max-token-ttl",
            Self::JwksMaxAge => "jwks-max-age",
            Self::RevocationListValidity => "revocation-list-validity",
        }
    }

    /// The row in the `settings` table. The first three are the names servers have always
    /// written, so databases from before this contract keep their values.
    pub(super) fn key(self) -> &'static str {
        match self {
            Self::IssuerUrl => "issuer",
            Self::MaxTokenTtl => "max_token_ttl",
            Self::JwksMaxAge => "jwks_max_age",
            Self::RevocationListValidity => "list_validity",
        }
    }

    /// Every row this module owns, for `migrate` to copy.
    pub fn stored_keys() -> [&'static str; 4] {
        Self::ALL.map(Self::key)
    }
}

impl fmt::Display for SettingName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of the settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a setting: the settings are issuer-url, max-token-ttl, jwks-max-age and \
     revocation-list-validity"
)]
pub struct UnknownSetting(String);

impl FromStr for SettingName {
    type Err = UnknownSetting;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| UnknownSetting(s.chars().take(64).collect()))
    }
}
