//! Open connections, bounded: in total and per client.
//!
//! Every open connection holds a file descriptor, and a push stream (`/v1/revocations/events`) or
//! an idle keep-alive connection holds it for as long as the client likes. Without a bound, one
//! client opening a few thousand connections would use up the process's open-file limit, and then
//! no one could connect and the database could not open a file. So a client (an IPv4 address or
//! an IPv6 /64, as for every other limit) may hold `ConnectionLimits::per_client` connections at
//! once, and all clients together `ConnectionLimits::total`; a connection beyond either is
//! closed as soon as it is accepted, with an audit line (reason `too_many_connections`) and the
//! refusal counted. A trusted proxy carries many clients' connections, so only the total binds it.
//!
//! Time is bounded as well: an admitted connection that has written nothing for
//! [`ANSWER_TIMEOUT`] is closed (see `answered`), so an idle or trickling connection does not
//! keep its place.

use std::future::Ready;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_server::accept::Accept;
use futures_util::future::Either;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::answered::{ANSWER_TIMEOUT, Answered};
use crate::domain::client_slots::{Connections, Refused, Slot};

/// A TCP stream holding its [`Slot`] for as long as it is open, and closed once it has answered
/// nothing for [`ANSWER_TIMEOUT`].
#[derive(Debug)]
pub(super) struct Counted {
    stream: Answered<TcpStream>,
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
                    stream: Answered::new(stream, ANSWER_TIMEOUT),
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

/// How many refused connections a second get an audit line each; the rest of that second's are
/// counted (rollups, metric) and summed up in one line. Refusing a connection costs a client one
/// TCP handshake, so without this a client at its limit could write log lines as fast as it can
/// connect.
pub(super) const REFUSALS_LOGGED_A_SECOND: u32 = 10;

/// The log budget of refused connections (see [`REFUSALS_LOGGED_A_SECOND`]).
#[derive(Debug, Default)]
pub(super) struct RefusalLines {
    second: std::sync::atomic::AtomicI64,
    logged: std::sync::atomic::AtomicU32,
    unlogged: std::sync::atomic::AtomicU64,
}

impl RefusalLines {
    /// Whether a refusal at `now` (Unix seconds) gets its own line; when a new second begins, the
    /// number of the last one's refusals without a line, if any.
    pub(super) fn take(&self, now: i64) -> (bool, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let mut summed = 0;
        if self.second.swap(now, Relaxed) != now {
            self.logged.store(0, Relaxed);
            summed = self.unlogged.swap(0, Relaxed);
        }
        let own = self.logged.fetch_add(1, Relaxed) < REFUSALS_LOGGED_A_SECOND;
        if !own {
            self.unlogged.fetch_add(1, Relaxed);
        }
        (own, summed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_connections_get_ten_lines_a_second_and_the_rest_are_summed_up() {
        let lines = RefusalLines::default();
        let own = (0..25).filter(|_| lines.take(100).0).count();
        assert_eq!(own, 10);
        // The next second: its first refusal has a line again, and says 15 went without.
        assert_eq!(lines.take(101), (true, 15));
        assert_eq!(lines.take(101), (true, 0));
    }
}
