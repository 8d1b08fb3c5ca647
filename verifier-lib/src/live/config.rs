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
    /// The metadata is for another issuer than the one asked for (RFC 8414 §3.3): its URIs must
    /// not be trusted for this one.
    #[error("issuer metadata at {url} is for issuer {found:?}, not {expected:?}")]
    IssuerMismatch {
        /// The metadata URL.
        url: String,
        /// The issuer discovery was asked for.
        expected: String,
        /// The metadata's `issuer`.
        found: String,
    },
    /// The issuer URL, or a URL for the key set, the revocations or their events (from the
    /// metadata or given to [`LiveConfig`]), is not `https`: only a loopback host (`127.0.0.1`,
    /// `::1`, `localhost`) may be reached over `http`, unless the application opted out through
    /// [`LiveConfig::dangerous`].
    #[error("{field} {uri:?} must be https (plain http only to a loopback host)")]
    InsecureUri {
        /// Which URI: `issuer`, `jwks_uri`, `keymint_revocation_list_uri` or
        /// `keymint_revocation_events_uri` (the last three also name the key set, list and events
        /// URLs given to [`LiveConfig`]).
        field: &'static str,
        /// The URI.
        uri: String,
    },
    /// A background thread could not be started.
    #[error("cannot start a refresh thread: {0}")]
    Thread(std::io::Error),
}

/// Whether keys or revocations may be fetched from `uri`: over `https`, or over `http` only from
/// this machine, where there is no network to tamper with them. Parsed by the HTTP client itself,
/// so that the host checked is the host it would connect to.
fn secure_or_loopback(agent: &ureq::Agent, uri: &str) -> bool {
    let Ok(url) = agent.get(uri).request_url() else {
        return false;
    };
    match url.scheme() {
        "https" => true,
        "http" => {
            let host = url.host();
            host.eq_ignore_ascii_case("localhost")
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

/// Live source settings.
///
/// # Defaults
///
/// `min_refresh` 5 s, `max_refresh` 5 min, `max_stale` 1 h, `kid_cooldown` 30 s, `timeout` 10 s,
/// key set at most 1 MiB, list at most 64 MiB. Every URL must be `https`, or `http` to a loopback
/// host (checked when the verifier is built); [`dangerous`](Self::dangerous) lifts that.
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
    /// Set only through [`DangerousLiveConfig`](crate::dangerous::DangerousLiveConfig).
    pub(crate) plain_http_anywhere: bool,
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
            plain_http_anywhere: false,
        }
    }

    /// Reads the issuer's RFC 8414 metadata (`<issuer>/.well-known/oauth-authorization-server`)
    /// for `jwks_uri`, `keymint_revocation_list_uri` and `keymint_revocation_events_uri`. Blocks for
    /// one HTTP request.
    ///
    /// The metadata's `issuer` must be exactly `issuer_url` (RFC 8414 §3.3), and `issuer_url` and
    /// every URI taken from the metadata must be `https`, or `http` to a loopback host.
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
        let checked = |field: &'static str, uri: String| {
            if secure_or_loopback(&agent, &uri) {
                Ok(uri)
            } else {
                Err(LiveError::InsecureUri { field, uri })
            }
        };
        checked("issuer", issuer_url.to_owned())?;
        let text = super::fetch::get_text(&agent, &url, None, 1024 * 1024)
            .map_err(|e| fail(e.to_string()))?
            .body
            .ok_or_else(|| fail("empty answer".into()))?;
        let meta: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| fail(format!("not JSON: {e}")))?;
        let field = |name: &str| meta.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let issuer = field("issuer").ok_or_else(|| fail("no issuer".into()))?;
        if issuer != issuer_url {
            return Err(LiveError::IssuerMismatch {
                url,
                expected: issuer_url.to_owned(),
                found: issuer,
            });
        }
        let jwks = field("jwks_uri").ok_or_else(|| fail("no jwks_uri".into()))?;
        let jwks = checked("jwks_uri", jwks)?;
        let list = field("keymint_revocation_list_uri")
            .ok_or_else(|| fail("no keymint_revocation_list_uri".into()))?;
        let list = checked("keymint_revocation_list_uri", list)?;
        let events = field("keymint_revocation_events_uri")
            .map(|uri| checked("keymint_revocation_events_uri", uri))
            .transpose()?;
        let mut cfg = Self::new(Source::Url(jwks), Source::Url(list));
        cfg.events = events;
        Ok(cfg)
    }

    /// Subscribes to server-sent events at `url` for revocations pushed within a second. While the
    /// channel is up the list is polled only every `max_refresh`, as the fallback; the moment it
    /// goes down, polling is back to the list's own refresh at once (not after `max_refresh`).
    /// Reconnects back off from 250 ms to 30 s while refused, and start again at 250 ms after a
    /// stream that stayed up (one cut by a proxy's stream limit or an issuer's deploy).
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

    /// Refuses a URL source (or events URL) that is plain `http` to another host, as discovery
    /// does: anyone on the path could serve their own key set.
    pub(crate) fn check_uris(&self) -> Result<(), LiveError> {
        if self.plain_http_anywhere {
            return Ok(());
        }
        fn url(source: &Source) -> Option<&str> {
            match source {
                Source::Url(url) => Some(url.as_str()),
                Source::File(_) => None,
            }
        }
        let agent = super::fetch::agent(self.timeout, self.timeout, Some(self.timeout));
        let urls = [
            ("jwks_uri", url(&self.jwks)),
            ("keymint_revocation_list_uri", url(&self.revocations)),
            ("keymint_revocation_events_uri", self.events.as_deref()),
        ];
        for (field, uri) in urls {
            let Some(uri) = uri else { continue };
            if !secure_or_loopback(&agent, uri) {
                return Err(LiveError::InsecureUri {
                    field,
                    uri: uri.to_owned(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};
    use std::net::TcpListener;

    /// A loopback server answering one request with the metadata `make(its own base URL)`;
    /// returns the base URL.
    fn metadata_server(make: impl FnOnce(&str) -> serde_json::Value) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let body = make(&base).to_string();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = s.read(&mut request).unwrap();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(body.as_bytes()).unwrap();
        });
        base
    }

    fn metadata(issuer: &str, base: &str) -> serde_json::Value {
        serde_json::json!({
            "issuer": issuer,
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "keymint_revocation_list_uri": format!("{base}/v1/revocations"),
            "keymint_revocation_events_uri": format!("{base}/v1/revocations/events"),
        })
    }

    #[test]
    fn loopback_metadata_for_the_issuer_asked_for_is_accepted() {
        let base = metadata_server(|base| metadata(base, base));
        let cfg = LiveConfig::discover(&base).unwrap();
        assert_eq!(
            cfg.jwks,
            Source::Url(format!("{base}/.well-known/jwks.json"))
        );
        assert_eq!(
            cfg.events.as_deref(),
            Some(format!("{base}/v1/revocations/events").as_str())
        );
    }

    #[test]
    fn metadata_for_another_issuer_is_refused() {
        let base = metadata_server(|base| metadata("https://other.example", base));
        match LiveConfig::discover(&base) {
            Err(LiveError::IssuerMismatch {
                expected, found, ..
            }) => {
                assert_eq!(expected, base);
                assert_eq!(found, "https://other.example");
            }
            other => panic!("expected IssuerMismatch, got {other:?}"),
        }
        // Not even a trailing slash of difference (RFC 8414 §3.3: identical).
        let base = metadata_server(|base| metadata(&format!("{base}/"), base));
        assert!(matches!(
            LiveConfig::discover(&base),
            Err(LiveError::IssuerMismatch { .. })
        ));
    }

    #[test]
    fn plain_http_uris_to_another_host_are_refused() {
        for field in [
            "jwks_uri",
            "keymint_revocation_list_uri",
            "keymint_revocation_events_uri",
        ] {
            let base = metadata_server(|base| {
                let mut m = metadata(base, base);
                m[field] = "http://issuer.example/doc".into();
                m
            });
            match LiveConfig::discover(&base) {
                Err(LiveError::InsecureUri { field: f, uri }) => {
                    assert_eq!(f, field);
                    assert_eq!(uri, "http://issuer.example/doc");
                }
                other => panic!("{field}: expected InsecureUri, got {other:?}"),
            }
        }
        // The issuer URL itself: refused before any request.
        assert!(matches!(
            LiveConfig::discover("http://issuer.example"),
            Err(LiveError::InsecureUri {
                field: "issuer",
                ..
            })
        ));
    }

    #[test]
    fn only_https_or_a_loopback_host_is_secure_enough() {
        let agent = super::super::fetch::agent(
            Duration::from_secs(1),
            Duration::from_secs(1),
            Some(Duration::from_secs(1)),
        );
        for ok in [
            "https://issuer.example/jwks.json",
            "http://127.0.0.1:8080/jwks.json",
            "http://127.8.9.10/jwks.json",
            "http://[::1]:8080/jwks.json",
            "http://localhost/jwks.json",
            "http://LOCALHOST:1/jwks.json",
        ] {
            assert!(secure_or_loopback(&agent, ok), "{ok}");
        }
        for bad in [
            "http://issuer.example/jwks.json",
            "http://127.0.0.1@issuer.example/jwks.json",
            "http://127.0.0.1.issuer.example/jwks.json",
            "http://localhost.issuer.example/jwks.json",
            "http://issuer.example\\@127.0.0.1/jwks.json",
            "ftp://127.0.0.1/jwks.json",
            "not a url",
        ] {
            assert!(!secure_or_loopback(&agent, bad), "{bad}");
        }
    }
}
