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
    let hops: Vec<std::net::IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .map(|ip: std::net::IpAddr| ip.to_canonical())
        .collect();
    hops.into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
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
