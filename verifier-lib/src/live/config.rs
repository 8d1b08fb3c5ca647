//! What to fetch, from where, and how often.

use std::path::PathBuf;
use std::time::Duration;

/// Where a document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An `http://` or `https://` URL.
    Url(String),
    /// A file, e.g. written by `keymint publish`; re-read when its modification time changes.
    File(PathBuf),
}

impl Source {
    /// A URL if `s` starts with `http://` or `https://`, else a file path.
    pub fn parse(s: &str) -> Self {
        if s.starts_with("http://") || s.starts_with("https://") {
            Self::Url(s.to_owned())
        } else {
            Self::File(PathBuf::from(s))
        }
    }
}

/// Why live sources could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The issuer metadata could not be fetched or read.
    #[error("issuer metadata at {url}: {reason}")]
    Discovery {
        /// The metadata URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A background thread could not be started.
    #[error("cannot start a refresh thread: {0}")]
    Thread(std::io::Error),
}

/// Live source settings.
///
/// # Defaults
///
/// `min_refresh` 5 s, `max_refresh` 5 min, `max_stale` 1 h, `kid_cooldown` 30 s, `timeout` 10 s,
/// key set at most 1 MiB, list at most 64 MiB.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    pub(crate) jwks: Source,
    pub(crate) revocations: Source,
    pub(crate) events: Option<String>,
    pub(crate) min_refresh: Duration,
    pub(crate) max_refresh: Duration,
    pub(crate) max_stale: Duration,
    pub(crate) kid_cooldown: Duration,
    pub(crate) timeout: Duration,
    pub(crate) max_jwks_bytes: u64,
    pub(crate) max_list_bytes: u64,
}

impl LiveConfig {
    /// Explicit sources for the key set and the list.
    pub fn new(jwks: Source, revocations: Source) -> Self {
        Self {
            jwks,
            revocations,
            events: None,
            min_refresh: Duration::from_secs(5),
            max_refresh: Duration::from_secs(300),
            max_stale: Duration::from_secs(3600),
            kid_cooldown: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            max_jwks_bytes: 1024 * 1024,
            max_list_bytes: 64 * 1024 * 1024,
        }
    }

    /// Reads the issuer's RFC 8414 metadata (`<issuer>/.well-known/oauth-authorization-server`)
    /// for `jwks_uri`, `keymint_revocation_list_uri` and `keymint_revocation_events_uri`. Blocks for
    /// one HTTP request.
    pub fn discover(issuer_url: &str) -> Result<Self, LiveError> {
        let url = format!(
            "{}/.well-known/oauth-authorization-server",
            issuer_url.trim_end_matches('/')
        );
        let fail = |reason: String| LiveError::Discovery {
            url: url.clone(),
            reason,
        };
        let agent = super::fetch::agent(
            Duration::from_secs(10),
            Duration::from_secs(10),
            Some(Duration::from_secs(10)),
        );
        let text = super::fetch::get_text(&agent, &url, None, 1024 * 1024)
            .map_err(|e| fail(e.to_string()))?
            .body
            .ok_or_else(|| fail("empty answer".into()))?;
        let meta: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| fail(format!("not JSON: {e}")))?;
        let field = |name: &str| meta.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let jwks = field("jwks_uri").ok_or_else(|| fail("no jwks_uri".into()))?;
        let list = field("keymint_revocation_list_uri")
            .ok_or_else(|| fail("no keymint_revocation_list_uri".into()))?;
        let mut cfg = Self::new(Source::Url(jwks), Source::Url(list));
        cfg.events = field("keymint_revocation_events_uri");
        Ok(cfg)
    }

    /// Subscribes to server-sent events at `url` for revocations pushed within a second.
    pub fn events(mut self, url: impl Into<String>) -> Self {
        self.events = Some(url.into());
        self
    }

    /// Never poll more often than this (also the retry interval after a failure).
    pub fn min_refresh(mut self, d: Duration) -> Self {
        self.min_refresh = d;
        self
    }

    /// Poll at least this often, whatever `Cache-Control` says.
    pub fn max_refresh(mut self, d: Duration) -> Self {
        self.max_refresh = d;
        self
    }

    /// Fail closed once the key set has not been refreshed for this long.
    pub fn max_stale(mut self, d: Duration) -> Self {
        self.max_stale = d;
        self
    }

    /// At most one key-set refetch per this period when tokens name an unknown `kid`.
    pub fn kid_cooldown(mut self, d: Duration) -> Self {
        self.kid_cooldown = d;
        self
    }

    /// Per-request deadline (connect, read, and the whole request).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }
}
