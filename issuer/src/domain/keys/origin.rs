//! Browser origins (RFC 6454): `scheme://host[:port]`, compared as serialized, lowercase.

use std::fmt;

/// A web origin, parsed once at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin(String);

impl Origin {
    /// Parses `https://app.example` or `http://127.0.0.1:5173`: http or https, a host, an
    /// optional port, and nothing else (no path, query, fragment or credentials).
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not an origin like https://app.example");
        let (scheme, rest) = s.split_once("://").ok_or_else(bad)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "https" && scheme != "http" {
            return Err(bad());
        }
        if rest.is_empty()
            || rest.len() > 253
            || !rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        {
            return Err(bad());
        }
        let rest = rest.to_ascii_lowercase();
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !rest.ends_with(']') => {
                (host, Some(port.parse::<u16>().map_err(|_| bad())?))
            }
            _ => (rest.as_str(), None),
        };
        if host.is_empty() {
            return Err(bad());
        }
        // Serialized as browsers send it (RFC 6454 section 6.1): without the scheme's default
        // port, so `https://app.example:443` allows what a browser sends as
        // `https://app.example`.
        let default = if scheme == "https" { 443 } else { 80 };
        Ok(Self(match port {
            Some(p) if p != default => format!("{scheme}://{host}:{p}"),
            _ => format!("{scheme}://{host}"),
        }))
    }

    /// `stored` (an origin as a key holds it) as [`Self::parse`] serializes it now; as it is if
    /// it does not parse (every stored origin was parsed when its key was made). Keys made
    /// before default ports were dropped hold `https://app.example:443`.
    pub fn canonical(stored: &str) -> String {
        Self::parse(stored).map_or_else(|_| stored.to_owned(), |o| o.0)
    }

    /// The serialized origin.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_and_normalise() {
        assert_eq!(
            Origin::parse("HTTPS://App.Example").unwrap().as_str(),
            "https://app.example"
        );
        assert_eq!(
            Origin::parse("http://127.0.0.1:5173").unwrap().as_str(),
            "http://127.0.0.1:5173"
        );
        // Default ports are dropped (a browser never sends them); others are kept, as numbers.
        for (given, serialized) in [
            ("https://app.example:443", "https://app.example"),
            ("HTTP://App.Example:80", "http://app.example"),
            ("http://app.example:443", "http://app.example:443"),
            ("https://app.example:80", "https://app.example:80"),
            ("https://app.example:08443", "https://app.example:8443"),
            ("https://[::1]:443", "https://[::1]"),
            ("https://[::1]:8443", "https://[::1]:8443"),
            ("https://[::1]", "https://[::1]"),
        ] {
            assert_eq!(
                Origin::parse(given).unwrap().as_str(),
                serialized,
                "{given}"
            );
            assert_eq!(Origin::canonical(given), serialized, "{given}");
        }
        assert_eq!(Origin::canonical("not an origin"), "not an origin");
        for bad in [
            "app.example",
            "ftp://x",
            "https://",
            "https://a/b",
            "https://a?x",
            "https://u@a",
            "https://a:99999",
            "https://a:",
            "https://:8080",
            "null",
            "*",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }
}
