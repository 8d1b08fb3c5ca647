//! Who is calling: the client address (believing `X-Forwarded-For` only from trusted proxies),
//! whether a trusted proxy saw the request in clear text, and the `Origin` header.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{HeaderMap, header};
use ipnet::IpNet;

use crate::domain::client::ClientContext;

/// The client address: the peer, or, when the peer is a trusted proxy, the right-most address in
/// `X-Forwarded-For` that is not itself a trusted proxy. Anything a client could write in that
/// header before reaching the first trusted proxy is never believed.
///
/// An entry may carry a port (`203.0.113.7:4711`, `[2001:db8::1]:4711`: some proxies append
/// them). Walking from the right, an entry that is no address at all (`unknown`, a name, garbage)
/// ends the walk: the trusted hop that wrote it could not name its client, so the client is that
/// hop. Skipping it instead would believe the next entry to its left, which the client wrote.
///
/// Every address is canonical: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, how a dual-stack
/// listener on `[::]` reports every IPv4 peer, and how some proxies write the header) is its IPv4
/// address. Otherwise no IPv4 rule would ever match it: not a key's `--allow-ip 10.0.0.0/8`, which
/// would refuse every client, and not `--trusted-proxy 10.0.0.0/8`, which would make every client
/// look like the proxy (one throttle budget for all of them).
fn client_ip(headers: &HeaderMap, trusted: &[IpNet], peer: std::net::IpAddr) -> std::net::IpAddr {
    if trusted.is_empty() {
        return peer;
    }
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<Option<std::net::IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(v) => v.split(',').map(forwarded_hop).collect::<Vec<_>>(),
            // A header value that is not text: nothing in it can be read.
            Err(_) => vec![None],
        })
        .collect();
    let mut nearest = peer;
    for hop in hops.into_iter().rev() {
        match hop {
            Some(ip) if is_trusted(&ip) => nearest = ip,
            Some(ip) => return ip,
            None => return nearest,
        }
    }
    peer
}

/// One `X-Forwarded-For` entry's address: bare, or with a port (IPv6 then in brackets).
fn forwarded_hop(entry: &str) -> Option<std::net::IpAddr> {
    let entry = entry.trim();
    let ip = entry
        .parse::<std::net::IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse::<std::net::Ipv6Addr>().ok())
                .map(std::net::IpAddr::V6)
        })?;
    Some(ip.to_canonical())
}

/// The real peer address, or the one a router test gave with `MockConnectInfo` (which is how
/// the `ConnectInfo` extractor itself falls back), canonical (see [`client_ip`]).
fn peer_of(ext: &axum::http::Extensions) -> std::net::IpAddr {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| ext.get::<MockConnectInfo<SocketAddr>>().map(|m| m.0))
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| {
            a.ip().to_canonical()
        })
}

/// Whether a trusted proxy says the request reached it over plain HTTP (`X-Forwarded-Proto:
/// http` at any hop): then a key or token in it crossed a network in clear text. The header is
/// ignored from anyone but a trusted proxy; a client that writes `http` into it itself only
/// refuses its own request. Every route that takes a credential refuses such a request.
pub(crate) fn arrived_in_clear(
    headers: &HeaderMap,
    ext: &axum::http::Extensions,
    trusted: &[IpNet],
) -> bool {
    if trusted.is_empty() {
        return false;
    }
    let peer = peer_of(ext);
    if !trusted.iter().any(|n| n.contains(&peer)) {
        return false;
    }
    headers
        .get_all("x-forwarded-proto")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("http"))
}

/// Who is calling: the client address (see [`client_ip`]) and the `Origin` header. `trusted` is
/// the server's own list (`--trusted-proxy`), read from the state rather than put into every
/// request's extensions.
pub(crate) fn client_of(
    headers: &HeaderMap,
    ext: &axum::http::Extensions,
    trusted: &[IpNet],
) -> ClientContext {
    let ip = client_ip(headers, trusted, peer_of(ext));
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect());
    ClientContext { ip, origin }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> std::net::IpAddr {
        s.parse().unwrap()
    }

    /// The client behind trusted proxy 10.9.0.1 (10.9.0.0/16 trusted) sending `xff`.
    fn via_proxy(xff: &str) -> std::net::IpAddr {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", xff.parse().unwrap());
        client_ip(&headers, &["10.9.0.0/16".parse().unwrap()], ip("10.9.0.1"))
    }

    #[test]
    fn an_entry_with_a_port_is_its_address() {
        assert_eq!(via_proxy("198.51.100.9:4711"), ip("198.51.100.9"));
        assert_eq!(via_proxy("[2001:db8::1]:4711"), ip("2001:db8::1"));
        assert_eq!(via_proxy("[2001:db8::1]"), ip("2001:db8::1"));
        assert_eq!(via_proxy("[::ffff:198.51.100.9]:80"), ip("198.51.100.9"));
    }

    #[test]
    fn what_the_client_wrote_left_of_a_proxy_appended_entry_with_a_port_is_never_believed() {
        assert_eq!(
            via_proxy("203.0.113.7, 198.51.100.9:4711"),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn an_unreadable_entry_makes_the_hop_that_wrote_it_the_client() {
        // Skipping `unknown` would believe 203.0.113.7, which the client wrote.
        assert_eq!(via_proxy("203.0.113.7, unknown"), ip("10.9.0.1"));
        assert_eq!(via_proxy("203.0.113.7, garbage, 10.9.0.2"), ip("10.9.0.2"));
        assert_eq!(via_proxy("203.0.113.7, 10.9.0.2"), ip("203.0.113.7"));
        assert_eq!(via_proxy("10.9.0.3, 10.9.0.2"), ip("10.9.0.1"));
    }
}
