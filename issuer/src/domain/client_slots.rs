//! What clients may hold open at once, bounded per client and in total: the server's connections
//! (`server/connections.rs`) and the push streams of `/v1/revocations/events`, which HTTP/2 would
//! otherwise multiply (up to 200 streams on each connection, each sent every new list).
//!
//! A client is an IPv4 address or an IPv6 /64, as for every other limit. Once half of the total
//! is taken, a client's network (IPv4 /24, IPv6 /48) may hold no more than [`NETWORK_SHARES`]
//! clients' worth: without that, one holder of an IPv6 /48 (a tunnel broker hands them out free)
//! counts as 65,536 clients and could take every place, the server then refusing every other
//! tenant's connections. Only under that pressure: otherwise four addresses rented in a cloud /24
//! could hold the network's share and shut its other tenants out of an idle server. Clients and
//! networks with nothing open are forgotten, so the count is bounded by what is open.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use ipnet::IpNet;

use crate::domain::client::{client_of, network};

/// How many clients' shares one network (IPv4 /24, IPv6 /48) may hold together once half of the
/// total is taken: a few busy clients behind one office or cloud network fit; a network posing as
/// thousands of clients does not.
pub const NETWORK_SHARES: usize = 4;

/// The network a client address is counted in beside itself.
fn network_of(peer: IpAddr) -> IpAddr {
    network(peer, 24, 48)
}

/// The bounds on what clients hold open: connections (`serve --max-connections`,
/// `--max-connections-per-client`) and, the same numbers, push streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// All clients together. Keep it under the process's open-file limit (`ulimit -n`), less a
    /// few hundred for the database, the log and the rest.
    pub total: usize,
    /// One client (IPv4 address or IPv6 /64); trusted proxies are bound by the total only. A
    /// client's network (IPv4 /24, IPv6 /48) may hold [`NETWORK_SHARES`] times this.
    pub per_client: usize,
}

impl Default for ConnectionLimits {
    /// 10,000 in total, 256 per client: a verifier holds one push stream, a busy client a few
    /// dozen keep-alive connections.
    fn default() -> Self {
        Self {
            total: 10_000,
            per_client: 256,
        }
    }
}

/// Why a connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// All clients together hold the total.
    Total,
    /// This client holds its share.
    PerClient,
    /// This client's network (IPv4 /24, IPv6 /48) holds its share.
    PerNetwork,
}

/// What clients hold open (connections, or push streams), counted per client and in total.
#[derive(Debug)]
pub struct Connections {
    limits: ConnectionLimits,
    trusted: Arc<Vec<IpNet>>,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    /// Clients with at least one connection open (at most `limits.total` of them).
    by_client: HashMap<IpAddr, usize>,
    /// Their networks, the same way.
    by_network: HashMap<IpAddr, usize>,
}

impl Connections {
    /// Counts against `limits`; what `trusted` proxies hold counts in the total only.
    pub fn new(limits: ConnectionLimits, trusted: Arc<Vec<IpNet>>) -> Arc<Self> {
        Arc::new(Self {
            limits,
            trusted,
            open: Mutex::new(Open::default()),
        })
    }

    /// Admits one more from `peer`, or says why not. The slot is given back when the returned
    /// guard drops (the connection closed, the stream ended).
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Refused> {
        let peer = peer.to_canonical();
        let client = (!self.trusted.iter().any(|n| n.contains(&peer))).then(|| client_of(peer));
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.limits.total {
            return Err(Refused::Total);
        }
        if let Some(c) = client {
            // Looked up before any entry is made: a refused client leaves nothing behind.
            if open.by_client.get(&c).copied().unwrap_or(0) >= self.limits.per_client {
                return Err(Refused::PerClient);
            }
            let net = network_of(c);
            let per_network = self.limits.per_client.saturating_mul(NETWORK_SHARES);
            let pressed = open.total >= self.limits.total / 2;
            if pressed && open.by_network.get(&net).copied().unwrap_or(0) >= per_network {
                return Err(Refused::PerNetwork);
            }
            *open.by_client.entry(c).or_insert(0) += 1;
            *open.by_network.entry(net).or_insert(0) += 1;
        }
        open.total += 1;
        Ok(Slot {
            of: Arc::clone(self),
            client,
        })
    }

    /// Connections open now (all, and `peer`'s client's).
    #[cfg(test)]
    fn held(&self, peer: IpAddr) -> (usize, usize) {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = open
            .by_client
            .get(&client_of(peer.to_canonical()))
            .copied()
            .unwrap_or(0);
        (open.total, mine)
    }
}

/// One admitted place; given back on drop.
#[derive(Debug)]
pub struct Slot {
    of: Arc<Connections>,
    client: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.of.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        let open = &mut *open;
        if let Some(c) = self.client {
            for (map, at) in [
                (&mut open.by_client, c),
                (&mut open.by_network, network_of(c)),
            ] {
                if let Some(held) = map.get_mut(&at) {
                    *held = held.saturating_sub(1);
                    if *held == 0 {
                        map.remove(&at);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_client_holds_its_share_and_gets_each_slot_back_when_a_connection_closes() {
        let c = Connections::new(
            ConnectionLimits {
                total: 10,
                per_client: 2,
            },
            Arc::new(vec![]),
        );
        let a = c.admit(ip("192.0.2.1")).unwrap();
        let _b = c.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(c.admit(ip("192.0.2.1")).unwrap_err(), Refused::PerClient);
        // The same client over a dual-stack socket, and another address of its IPv6 /64, are it.
        assert_eq!(
            c.admit(ip("::ffff:192.0.2.1")).unwrap_err(),
            Refused::PerClient
        );
        let _v6 = c.admit(ip("2001:db8::1")).unwrap();
        let _v6b = c.admit(ip("2001:db8::2")).unwrap();
        assert_eq!(c.admit(ip("2001:db8::3")).unwrap_err(), Refused::PerClient);
        // Another client is not held back by them.
        let _other = c.admit(ip("192.0.2.2")).unwrap();
        drop(a);
        assert_eq!(c.held(ip("192.0.2.1")), (4, 1));
        let _again = c.admit(ip("192.0.2.1")).unwrap();
    }

    #[test]
    fn a_refused_client_leaves_no_entry_behind() {
        let c = Connections::new(
            ConnectionLimits {
                total: 10,
                per_client: 0,
            },
            Arc::new(vec![]),
        );
        for i in 0..50u8 {
            assert_eq!(
                c.admit(IpAddr::from([192, 0, 2, i])).unwrap_err(),
                Refused::PerClient
            );
        }
        assert!(c.open.lock().unwrap().by_client.is_empty());
        assert!(c.open.lock().unwrap().by_network.is_empty());
    }

    #[test]
    fn one_network_cannot_pose_as_enough_clients_to_take_every_place() {
        let c = Connections::new(
            ConnectionLimits {
                total: 100,
                per_client: 10,
            },
            Arc::new(vec![]),
        );
        // Below half of the total, a network may hold more than its four shares: an idle server
        // refuses nobody for a neighbour's connections.
        let mut held = Vec::new();
        for host in 1..=5u8 {
            for _ in 0..10 {
                held.push(c.admit(IpAddr::from([203, 0, 113, host])).unwrap());
            }
        }
        assert_eq!(c.held(ip("203.0.113.1")), (50, 10));
        // From half on: four /64s of one /48 take its four shares; a fifth /64 of it is refused.
        let fifth = IpAddr::from([0x2001, 0xdb8, 7, 5, 0, 0, 0, 1]);
        for net in 1..=4u16 {
            for _ in 0..10 {
                held.push(
                    c.admit(IpAddr::from([0x2001, 0xdb8, 7, net, 0, 0, 0, 1]))
                        .unwrap(),
                );
            }
        }
        assert_eq!(c.admit(fifth).unwrap_err(), Refused::PerNetwork);
        // The IPv4 /24 that got in before the pressure keeps what it holds, and gets no more.
        assert_eq!(
            c.admit(IpAddr::from([203, 0, 113, 9])).unwrap_err(),
            Refused::PerNetwork
        );
        // Other networks still get in: the places left are theirs.
        let _other_v6 = c
            .admit(IpAddr::from([0x2001, 0xdb8, 8, 1, 0, 0, 0, 1]))
            .unwrap();
        let _other_v4 = c.admit(ip("198.51.100.1")).unwrap();
        // A network's places come back as its connections close.
        held.truncate(89);
        let _again = c.admit(fifth).unwrap();
    }

    #[test]
    fn the_total_binds_everyone_and_a_trusted_proxy_only_by_the_total() {
        let c = Connections::new(
            ConnectionLimits {
                total: 3,
                per_client: 1,
            },
            Arc::new(vec!["10.0.0.0/8".parse().unwrap()]),
        );
        let p1 = c.admit(ip("10.0.0.1")).unwrap();
        let _p2 = c.admit(ip("10.0.0.1")).unwrap();
        let _x = c.admit(ip("192.0.2.9")).unwrap();
        assert_eq!(c.admit(ip("10.0.0.1")).unwrap_err(), Refused::Total);
        assert_eq!(c.admit(ip("198.51.100.1")).unwrap_err(), Refused::Total);
        drop(p1);
        let _y = c.admit(ip("198.51.100.1")).unwrap();
        // Clients with nothing open are forgotten: the map is bounded by what is open.
        assert_eq!(c.open.lock().unwrap().by_client.len(), 2);
    }
}
