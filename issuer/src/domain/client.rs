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

/// `net` as the canonical addresses it holds are compared with: an IPv4-mapped IPv6 network
/// (`::ffff:10.0.0.0/104`) is its IPv4 network (`10.0.0.0/8`), since every client address is
/// canonical (`::ffff:a.b.c.d` is `a.b.c.d`); any other network is itself.
pub fn canonical_net(net: ipnet::IpNet) -> ipnet::IpNet {
    match net {
        ipnet::IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, ipnet::IpNet::V4),
            None => net,
        },
        _ => net,
    }
}

/// A network rule as an operator writes it (`--allow-ip`, `--trusted-proxy`, a key's `allow_ips`):
/// a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or one address (`10.0.0.5` is `10.0.0.5/32`,
/// `2001:db8::1` is `2001:db8::1/128`). The parser's own error for a bare address called a valid
/// address invalid syntax.
pub fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is not a network like 10.0.0.0/8 or an address like 10.0.0.5"))
}

/// The unit a client is known by: its IPv4 address, or its IPv6 /64.
pub fn client_of(ip: IpAddr) -> IpAddr {
    network(ip, 32, 64)
}

/// An address written out on the stack, for the audit line and the usage count: written once
/// per request instead of once for each (the standard `Display` of an address is a few hundred
/// instructions, `perf` and callgrind put two of them on every token request).
#[derive(Clone, Copy)]
pub struct IpText {
    buf: [u8; IpText::MAX],
    len: usize,
}

impl IpText {
    /// The longest address text: an IPv6 address with an IPv4 tail, `ffff:…:ffff:255.255.255.255`.
    const MAX: usize = 45;

    /// `ip` as text.
    pub fn of(ip: IpAddr) -> Self {
        let mut t = Self {
            buf: [0; Self::MAX],
            len: 0,
        };
        match ip {
            // Most clients: four numbers written by hand. `Display` goes through the formatting
            // machinery once per octet (about 900 instructions by callgrind, on every request).
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        t.push(b'.');
                    }
                    if octet >= 100 {
                        t.push(b'0' + octet / 100);
                    }
                    if octet >= 10 {
                        t.push(b'0' + octet / 10 % 10);
                    }
                    t.push(b'0' + octet % 10);
                }
            }
            // Every address fits (see `MAX`); should one not, the text is cut, never overrun.
            IpAddr::V6(_) => {
                let _ = std::fmt::Write::write_fmt(&mut t, format_args!("{ip}"));
            }
        }
        t
    }

    /// Appends an ASCII byte (a digit or a dot); at most 15 for an IPv4 address, well within
    /// `MAX`.
    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        let bytes = self.buf.get(..self.len).unwrap_or_default();
        // Only whole `&str`s are ever copied in (see `write_str`).
        std::str::from_utf8(bytes).unwrap_or_default()
    }
}

impl std::fmt::Write for IpText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let room = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl std::fmt::Debug for IpText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_rule_is_a_cidr_or_one_address() {
        for (given, net) in [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("10.0.0.5", "10.0.0.5/32"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("2001:db8::1", "2001:db8::1/128"),
        ] {
            assert_eq!(parse_net(given).unwrap().to_string(), net, "{given}");
        }
        for bad in ["", "10.0.0", "10.0.0.0/33", "example.com", "10.0.0.5 "] {
            let e = parse_net(bad).unwrap_err();
            assert!(e.contains("10.0.0.0/8"), "{bad}: {e}");
        }
    }

    #[test]
    fn an_address_as_text_is_its_display_whatever_its_length() {
        for s in [
            "0.0.0.0",
            "192.0.2.7",
            "255.255.255.255",
            "::",
            "2001:db8:1:2::",
            "::ffff:192.0.2.7",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "1111:2222:3333:4444:5555:6666:255.255.255.255",
        ] {
            let ip: IpAddr = s.parse().unwrap();
            assert_eq!(IpText::of(ip).as_str(), ip.to_string(), "{s}");
        }
    }

    #[test]
    fn every_ipv4_octet_is_written_as_display_writes_it() {
        // Each octet value in each position, with the others at both ends of their range.
        for octet in 0..=255u8 {
            for other in [0, 9, 10, 99, 100, 255] {
                for at in 0..4 {
                    let mut o = [other; 4];
                    o[at] = octet;
                    let ip = IpAddr::from(o);
                    assert_eq!(IpText::of(ip).as_str(), ip.to_string());
                }
            }
        }
    }

    #[test]
    fn a_mapped_network_is_its_ipv4_network() {
        let n = |s: &str| -> ipnet::IpNet { s.parse().unwrap() };
        assert_eq!(canonical_net(n("::ffff:10.0.0.0/104")), n("10.0.0.0/8"));
        assert_eq!(
            canonical_net(n("::ffff:203.0.113.7/128")),
            n("203.0.113.7/32")
        );
        for same in ["2001:db8::/32", "10.0.0.0/8", "::ffff:0:0/95", "::/0"] {
            assert_eq!(canonical_net(n(same)), n(same), "{same}");
        }
        let ip: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert!(canonical_net(n("::ffff:10.0.0.0/104")).contains(&ip.to_canonical()));
    }

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
