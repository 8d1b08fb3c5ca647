//! A connection must be answered: one that has written nothing for [`ANSWER_TIMEOUT`] (since it
//! was accepted, or since its last write) is closed.
//!
//! This is what bounds time on a connection: a client that connects and says nothing, leaves a
//! keep-alive connection idle, trickles a request head or body a byte at a time, or stops reading
//! an answer larger than the socket buffers holds the connection for at most this long, whatever
//! it sends. A push stream writes a keep-alive comment every 15 s, so it stays open.
//!
//! The time a request takes counts too: its upload and its handler (hyper reads on while a
//! handler runs, and that read fails at the deadline). Every handler is bounded well below it (the
//! database's timeouts are a few seconds), and the largest body, a 256 KiB secret-scanning
//! report, needs under 9 KB/s to arrive in time.
//!
//! Why not hyper's `header_read_timeout`: it arms a new timer for every request (a boxed sleep
//! registered with tokio's timer wheel when the read waits, and deregistered when the head has
//! come), about 3 % of the token endpoint's CPU beside Ed25519 signing (`perf`, 64 connections).
//! Here one timer per connection is armed once and moved only when it fires: a request costs a
//! clock read at its answer's write and, when the read waits, one poll of a timer already
//! registered.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a connection may go without writing anything (an answer, a push stream's keep-alive,
/// a TLS handshake's message) before it is closed.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// `io`, closed with [`io::ErrorKind::TimedOut`] once it has written nothing for `limit`.
#[derive(Debug)]
pub(super) struct Answered<IO> {
    io: IO,
    limit: Duration,
    /// When the connection was accepted or last wrote something.
    last_write: Instant,
    /// Armed for `last_write + limit` as it was when the timer was last set; moved on when it
    /// fires before the connection's real deadline.
    timer: Pin<Box<Sleep>>,
}

impl<IO> Answered<IO> {
    /// `io`, accepted now.
    pub(super) fn new(io: IO, limit: Duration) -> Self {
        let now = Instant::now();
        Self {
            io,
            limit,
            last_write: now,
            timer: Box::pin(tokio::time::sleep_until(now + limit)),
        }
    }

    /// Called when an I/O call is about to wait: registers the timer with this task (a no-op
    /// when it already is) and fails the call once the deadline has passed.
    fn waiting<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let due = self.last_write + self.limit;
            if Instant::now() >= due {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "nothing written to the connection for the answer timeout",
                )));
            }
            // It wrote since the timer was set: wait for the new deadline.
            self.timer.as_mut().reset(due);
        }
    }

    fn wrote(&mut self, written: &Poll<io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) {
            self.last_write = Instant::now();
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Answered<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Pending => this.waiting(cx),
            done => done,
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Answered<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write(cx, buf);
        this.wrote(&written);
        match written {
            Poll::Pending => this.waiting(cx),
            done => done,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(&written);
        match written {
            Poll::Pending => this.waiting(cx),
            done => done,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Pending => this.waiting(cx),
            done => done,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMIT: Duration = ANSWER_TIMEOUT;

    /// Reads until the connection fails, and how it failed.
    async fn read_until_closed(conn: &mut Answered<tokio::io::DuplexStream>) -> io::ErrorKind {
        let mut buf = [0u8; 64];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) => panic!("the peer closed, the deadline did not"),
                Ok(_) => {}
                Err(e) => return e.kind(),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_hears_nothing_is_closed_at_the_limit() {
        let (ours, _peer) = tokio::io::duplex(1024);
        let start = Instant::now();
        let mut conn = Answered::new(ours, LIMIT);
        assert_eq!(read_until_closed(&mut conn).await, io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), LIMIT);
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_trickled_in_do_not_keep_a_connection_open() {
        let (ours, mut peer) = tokio::io::duplex(1024);
        let start = Instant::now();
        let mut conn = Answered::new(ours, LIMIT);
        tokio::spawn(async move {
            // Half a request head, a byte every 10 s, for longer than the limit.
            for b in b"GET / HTTP/1.1\r\n" {
                tokio::time::sleep(Duration::from_secs(10)).await;
                if peer.write_all(&[*b]).await.is_err() {
                    return;
                }
            }
        });
        assert_eq!(read_until_closed(&mut conn).await, io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), LIMIT);
    }

    #[tokio::test(start_paused = true)]
    async fn each_answer_gives_the_connection_the_whole_limit_again() {
        let (ours, _peer) = tokio::io::duplex(1024);
        let start = Instant::now();
        let mut conn = Answered::new(ours, LIMIT);
        // The read waits (the timer is now armed for 30 s), then an answer goes out at 20 s.
        let mut buf = [0u8; 8];
        let waited = tokio::time::timeout(Duration::from_secs(20), conn.read(&mut buf)).await;
        assert!(waited.is_err(), "nothing to read yet");
        conn.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        assert_eq!(read_until_closed(&mut conn).await, io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), Duration::from_secs(20) + LIMIT);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_the_client_does_not_read_is_cut_at_the_limit() {
        // The peer reads nothing: once the pipe is full, the write waits until the deadline.
        let (ours, _peer) = tokio::io::duplex(64);
        let start = Instant::now();
        let mut conn = Answered::new(ours, LIMIT);
        let written = conn.write_all(&[b'x'; 1024]).await;
        assert_eq!(written.unwrap_err().kind(), io::ErrorKind::TimedOut);
        // The first 64 bytes went out at once, and restarted the clock then.
        assert_eq!(start.elapsed(), LIMIT);
    }
}
