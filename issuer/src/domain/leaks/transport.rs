//! Which URLs the leak desk may call: HTTPS, or plain HTTP only to this machine. The scanner's
//! public keys decide which reports revoke keys, and a webhook's body names a leaked key, so
//! neither may cross a network in clear.

/// Whether `url` points at this machine (`localhost` or a loopback address): the one case where
/// plain HTTP is accepted for the scanner's keys and for webhooks.
pub(super) fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_localhost_and_loopback_addresses_count_as_this_machine() {
        for (u, local) in [
            ("http://localhost:8080/x", true),
            ("http://127.0.0.1/x", true),
            ("http://127.8.9.10/x", true),
            ("http://[::1]:9000/x", true),
            ("http://localhost.example.com/x", false),
            ("http://10.0.0.1/x", false),
            ("http://[2001:db8::1]/x", false),
            ("https://example.com/x", false),
        ] {
            assert_eq!(is_loopback_host(&url::Url::parse(u).unwrap()), local, "{u}");
        }
    }
}
