//! Open connections, bounded: in total and per client.
//!
//! Every open connection holds a file descriptor, and a push stream (`/v1/revocations/events`) or
//! an idle keep-alive connection holds it for as long as the client likes. Without a bound, one
//! client opening a few thousand connections would use up the process's open-file limit, and then
//! no one could connect and the database could not open a file. So a client (an IPv4 address or
//! an IPv6 /64, as for every other limit) may hold [`ConnectionLimits::per_client`] connections at
//! once, and all clients together [`ConnectionLimits::total`]; a connection beyond either is
//! closed as soon as it is accepted, with an audit line (reason `too_many_connections`) and the
//! refusal counted. A trusted proxy carries many clients' connections, so only the total binds it.
//!
//! The HTTP side bounds time as well (see `server::serve`): a client must send a request head
//! within [`HEADER_READ_TIMEOUT`] of connecting or of its previous answer, so an idle or trickling
//! connection is closed rather than kept.

use std::collections::HashMap;
use std::future::Ready;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use futures_util::future::Either;
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::domain::client::client_of;

/// How long a connection may take to send a request head (from connecting, or from its previous
/// answer) before it is closed: keep-alive connections left idle and heads sent a byte at a time.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The bounds on open connections (`serve --max-connections`, `--max-connections-per-client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// All clients together. Keep it under the process's open-file limit (`ulimit -n`), less a
    /// few hundred for the database, the log and the rest.
    pub total: usize,
    /// One client (IPv4 address or IPv6 /64); trusted proxies are bound by the total only.
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
pub(super) enum Refused {
    /// All clients together hold the total.
    Total,
    /// This client holds its share.
    PerClient,
}

/// The open connections, counted.
#[derive(Debug)]
pub(super) struct Connections {
    limits: ConnectionLimits,
    trusted: Arc<Vec<IpNet>>,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    /// Clients with at least one connection open (at most `limits.total` of them).
    by_client: HashMap<IpAddr, usize>,
}

impl Connections {
    /// Counts against `limits`; connections from `trusted` proxies count in the total only.
    pub(super) fn new(limits: ConnectionLimits, trusted: Arc<Vec<IpNet>>) -> Arc<Self> {
        Arc::new(Self {
            limits,
            trusted,
            open: Mutex::new(Open::default()),
        })
    }

    /// Admits a connection from `peer`, or says why not. The slot is given back when the
    /// returned guard drops (the connection closed).
    pub(super) fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Refused> {
        let peer = peer.to_canonical();
        let client = (!self.trusted.iter().any(|n| n.contains(&peer))).then(|| client_of(peer));
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.limits.total {
            return Err(Refused::Total);
        }
        if let Some(c) = client {
            let held = open.by_client.entry(c).or_insert(0);
            if *held >= self.limits.per_client {
                return Err(Refused::PerClient);
            }
            *held += 1;
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

/// One admitted connection's place; given back on drop.
#[derive(Debug)]
pub(super) struct Slot {
    of: Arc<Connections>,
    client: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.of.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(c) = self.client
            && let Some(held) = open.by_client.get_mut(&c)
        {
            *held = held.saturating_sub(1);
            if *held == 0 {
                open.by_client.remove(&c);
            }
        }
    }
}

/// A TCP stream holding its [`Slot`] for as long as it is open.
#[derive(Debug)]
pub(super) struct Counted {
    stream: TcpStream,
    _slot: Slot,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Admits each accepted connection against [`Connections`] before `inner` (TLS, if any) sees it:
/// a refused one costs no handshake. `refused` is told about each refusal (the audit line).
#[derive(Clone)]
pub(super) struct LimitAcceptor<A> {
    inner: A,
    connections: Arc<Connections>,
    refused: Arc<dyn Fn(IpAddr, Refused) + Send + Sync>,
}

impl<A> LimitAcceptor<A> {
    /// `inner` behind the bounds of `connections`.
    pub(super) fn new(
        inner: A,
        connections: Arc<Connections>,
        refused: Arc<dyn Fn(IpAddr, Refused) + Send + Sync>,
    ) -> Self {
        Self {
            inner,
            connections,
            refused,
        }
    }
}

impl<A, S> Accept<TcpStream, S> for LimitAcceptor<A>
where
    A: Accept<Counted, S>,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = Either<A::Future, Ready<io::Result<(A::Stream, A::Service)>>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let admitted = match stream.peer_addr() {
            Ok(peer) => self
                .connections
                .admit(peer.ip())
                .map_err(|why| (peer.ip(), why)),
            // Gone before it was looked at: nothing to serve.
            Err(e) => return Either::Right(std::future::ready(Err(e))),
        };
        match admitted {
            Ok(slot) => Either::Left(self.inner.accept(
                Counted {
                    stream,
                    _slot: slot,
                },
                service,
            )),
            Err((ip, why)) => {
                (self.refused)(ip, why);
                Either::Right(std::future::ready(Err(io::Error::other(
                    "too many connections",
                ))))
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
