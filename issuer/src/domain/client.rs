//! Who a client is. An IPv4 address, or an IPv6 /64 (one subscriber's allocation): the unit that
//! rate limits, the failure throttle and the refusal counts are kept by, so that rotating through
//! the addresses of one allocation does not make a new client.

use std::net::IpAddr;

/// Where a request came from.
#[derive(Debug, Clone)]
pub struct ClientContext {
    /// The client IP.
    pub ip: IpAddr,
    /// The `Origin` header.
    pub origin: Option<String>,
}

/// The network `ip` belongs to with these prefix lengths. An IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`, what a dual-stack listener or a proxy may report) is its IPv4 address first:
/// masked as IPv6, every IPv4 client would fall into one `::/64`.
pub fn network(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let keep = u32::MAX
                .checked_shl(32 - u32::from(v4_prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(v4) & keep).into())
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX
                .checked_shl(128 - u32::from(v6_prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(v6) & keep).into())
        }
    }
}

/// The unit a client is known by: its IPv4 address, or its IPv6 /64.
pub fn client_of(ip: IpAddr) -> IpAddr {
    network(ip, 32, 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_its_ipv4_address_or_its_ipv6_64_and_mapped_addresses_are_ipv4() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client_of(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_of(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(client_of(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(network(ip("192.0.2.7"), 24, 56), ip("192.0.2.0"));
        assert_eq!(
            network(ip("2001:db8:1:2ff::1"), 24, 56),
            ip("2001:db8:1:200::")
        );
    }
}
