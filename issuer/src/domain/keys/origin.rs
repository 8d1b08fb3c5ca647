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
        if let Some((_, port)) = rest.rsplit_once(':')
            && !rest.ends_with(']')
            && port.parse::<u16>().is_err()
        {
            return Err(bad());
        }
        Ok(Self(format!("{scheme}://{}", rest.to_ascii_lowercase())))
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
        for bad in [
            "app.example",
            "ftp://x",
            "https://",
            "https://a/b",
            "https://a?x",
            "https://u@a",
            "https://a:99999",
            "null",
            "*",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }
}
