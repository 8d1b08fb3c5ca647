//! A raw HTTP/1.1 server on a loopback `TcpListener` for fault injection: it answers every request
//! with a document, an endless body, a trickle, a 100 MB body or an endless server-sent event line,
//! logs how much of each answer the kernel took and how each connection ended, and can go down and
//! come back on the same port. Used by `tests/live_source_faults.rs`.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keymint_testkit::wait_until;

/// The revocation list's documented size cap (`LiveConfig` default).
pub const LIST_CAP: u64 = 64 * 1024 * 1024;
/// What [`Answer::Huge`] announces and sends.
pub const HUNDRED_MB: u64 = 104_857_600;
/// The trickle's pace.
pub const TRICKLE: Duration = Duration::from_millis(50);

/// Headers for a body whose end only the server's closing would mark.
const OPEN_ENDED: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";

/// Headers of a server-sent event stream, which only ends when the server closes it.
const EVENT_STREAM: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";

/// What a server answers to every request.
#[derive(Clone, Debug)]
pub enum Answer {
    /// 200 with this body and its `Content-Length`, then the server closes.
    Doc(String),
    /// Headers without a length, then spaces as fast as the client reads them, never closed.
    Endless,
    /// Headers without a length, then one byte every [`TRICKLE`], never closed.
    Trickle,
    /// `Content-Length: 104857600`, and the bytes as fast as the client reads them.
    Huge,
    /// An event stream that opens a `revocations` event and sends one `data:` line that never
    /// ends, as fast as the client reads it. The server gives up after [`endless_line_bound`]
    /// bytes (logged as [`Ending::Complete`]), so that a client without a line cap fails the test
    /// instead of eating the machine's memory.
    EndlessEventLine,
    /// An event stream that opens a `revocations` event and sends `data:` lines of 64 KiB each,
    /// never the blank line that ends the event, as fast as the client reads them, up to
    /// [`endless_line_bound`] bytes: every line is short, only their sum outgrows a list.
    EndlessDataLines,
    /// An event stream that sends one keep-alive comment and then nothing, open until the server
    /// goes down: a push channel that is up with nothing to say.
    KeepAliveEvents,
}

impl Answer {
    /// A short name for the answer, as the server's log records it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Doc(_) => "doc",
            Self::Endless => "endless",
            Self::Trickle => "trickle",
            Self::Huge => "100 MB",
            Self::EndlessEventLine => "endless event line",
            Self::KeepAliveEvents => "keep-alive events",
            Self::EndlessDataLines => "endless data lines",
        }
    }
}

/// How a connection ended, as the server saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Everything was written.
    Complete,
    /// A write failed: the client hung up.
    ClientHungUp,
    /// A write blocked for 2 s: the client kept the connection but stopped reading.
    Stalled,
    /// The test ended or the server went down.
    Stopped,
}

/// One connection as the server saw it.
#[derive(Debug, Clone)]
pub struct Conn {
    /// What the server answered ([`Answer::kind`]).
    pub kind: &'static str,
    /// Body bytes the kernel took from the server (sent, or queued in the socket buffers).
    pub body_bytes: u64,
    /// From the end of the request until the server stopped writing.
    pub lasted: Duration,
    /// How the connection ended.
    pub ending: Ending,
}

/// An HTTP/1.1 server on a raw `TcpListener`, one thread per connection.
pub struct RawServer {
    /// Where it listens.
    pub addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
    log: Arc<Mutex<Vec<Conn>>>,
    /// Requests read, answered or still being answered.
    started: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl RawServer {
    /// A server on a free loopback port answering `answer`.
    pub fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut server = Self {
            addr: listener.local_addr().unwrap(),
            answer: Arc::new(Mutex::new(answer)),
            log: Arc::default(),
            started: Arc::default(),
            stop: Arc::default(),
            accept: None,
        };
        server.listen(listener);
        server
    }

    fn listen(&mut self, listener: TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let (answer, log, stop, started) = (
            Arc::clone(&self.answer),
            Arc::clone(&self.log),
            Arc::clone(&self.stop),
            Arc::clone(&self.started),
        );
        self.accept = Some(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let (answer, log, stop, started) = (
                            Arc::clone(&answer),
                            Arc::clone(&log),
                            Arc::clone(&stop),
                            Arc::clone(&started),
                        );
                        std::thread::spawn(move || serve_one(s, &answer, &log, &stop, &started));
                    }
                    // Non-blocking, so that `go_down` can stop the loop: a pause between two
                    // looks for a connection, which no assertion times.
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            // Dropping the listener closes the port: connecting is now refused.
        }));
    }

    /// Stops accepting and closes the listening socket (and stops every writer).
    pub fn go_down(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            t.join().unwrap();
        }
    }

    /// Listens again on the same port.
    pub fn come_back(&mut self) {
        // std sets SO_REUSEADDR, so closed connections in TIME_WAIT do not hold the port.
        let listener = wait_until(
            &format!("binding {} again", self.addr),
            Duration::from_secs(2),
            || TcpListener::bind(self.addr).ok(),
        );
        self.stop = Arc::default();
        self.listen(listener);
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What every following request gets.
    pub fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// Requests read so far, whether their answers are finished or not.
    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// Finished connections that got this kind of answer.
    pub fn conns(&self, kind: &str) -> Vec<Conn> {
        let log = self.log.lock().unwrap();
        log.iter().filter(|c| c.kind == kind).cloned().collect()
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve_one(
    mut s: TcpStream,
    answer: &Mutex<Answer>,
    log: &Mutex<Vec<Conn>>,
    stop: &AtomicBool,
    started_count: &std::sync::atomic::AtomicUsize,
) {
    // Accepted sockets do not inherit non-blocking mode on Linux; be explicit anyway.
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    // The request head; a GET has no body.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 16 * 1024 {
            return;
        }
    }
    let answer = answer.lock().unwrap().clone();
    started_count.fetch_add(1, Ordering::SeqCst);
    let started = Instant::now();
    let (body_bytes, ending) = match &answer {
        Answer::Doc(body) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            match s
                .write_all(head.as_bytes())
                .and_then(|()| s.write_all(body.as_bytes()))
            {
                Ok(()) => (body.len() as u64, Ending::Complete),
                Err(_) => (0, Ending::ClientHungUp),
            }
        }
        Answer::Endless => match s.write_all(OPEN_ENDED) {
            // Starts like a key set, so only the cap can stop a parser that waits for the end.
            Ok(()) => pump(&mut s, stop, b"{\"keys\":[", u64::MAX, None),
            Err(_) => (0, Ending::ClientHungUp),
        },
        Answer::Trickle => match s.write_all(OPEN_ENDED) {
            Ok(()) => pump(&mut s, stop, b"{", u64::MAX, Some(TRICKLE)),
            Err(_) => (0, Ending::ClientHungUp),
        },
        Answer::Huge => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {HUNDRED_MB}\r\nConnection: close\r\n\r\n"
            );
            match s.write_all(head.as_bytes()) {
                Ok(()) => pump(&mut s, stop, b"", HUNDRED_MB, None),
                Err(_) => (0, Ending::ClientHungUp),
            }
        }
        Answer::EndlessEventLine => match s.write_all(EVENT_STREAM) {
            Ok(()) => pump(
                &mut s,
                stop,
                b"event: revocations\ndata: ",
                endless_line_bound(),
                None,
            ),
            Err(_) => (0, Ending::ClientHungUp),
        },
        Answer::EndlessDataLines => match s.write_all(EVENT_STREAM) {
            Ok(()) => data_lines(&mut s, stop),
            Err(_) => (0, Ending::ClientHungUp),
        },
        Answer::KeepAliveEvents => match s.write_all(EVENT_STREAM) {
            Ok(()) => keep_alive(&mut s, stop),
            Err(_) => (0, Ending::ClientHungUp),
        },
    };
    log.lock().unwrap().push(Conn {
        kind: answer.kind(),
        body_bytes,
        lasted: started.elapsed(),
        ending,
    });
}

/// Writes `event: revocations` and then 64 KiB `data:` lines up to [`endless_line_bound`].
fn data_lines(s: &mut TcpStream, stop: &AtomicBool) -> (u64, Ending) {
    let mut line = b"data: ".to_vec();
    line.extend(std::iter::repeat_n(b'x', 64 * 1024));
    line.push(b'\n');
    if s.write_all(b"event: revocations\n").is_err() {
        return (0, Ending::ClientHungUp);
    }
    let mut written = 0u64;
    while written < endless_line_bound() {
        if stop.load(Ordering::SeqCst) {
            return (written, Ending::Stopped);
        }
        match s.write_all(&line) {
            Ok(()) => written += line.len() as u64,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (written, Ending::Stalled);
            }
            Err(_) => return (written, Ending::ClientHungUp),
        }
    }
    (written, Ending::Complete)
}

/// Writes one keep-alive comment, then holds the stream open until the server goes down or the
/// client hangs up (a read that returns nothing; the read timeout is how often it looks).
fn keep_alive(s: &mut TcpStream, stop: &AtomicBool) -> (u64, Ending) {
    const COMMENT: &[u8] = b": keep-alive\n\n";
    if s.write_all(COMMENT).is_err() {
        return (0, Ending::ClientHungUp);
    }
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::SeqCst) {
        match s.read(&mut buf) {
            Ok(0) => return (COMMENT.len() as u64, Ending::ClientHungUp),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (COMMENT.len() as u64, Ending::ClientHungUp),
        }
    }
    (COMMENT.len() as u64, Ending::Stopped)
}

/// Writes `first`, then spaces up to `total` bytes: 64 KiB at a time as fast as the socket takes
/// them, or one byte per `pace`.
fn pump(
    s: &mut TcpStream,
    stop: &AtomicBool,
    first: &[u8],
    total: u64,
    pace: Option<Duration>,
) -> (u64, Ending) {
    let chunk = [b' '; 64 * 1024];
    let mut written = 0u64;
    if s.write_all(first).is_err() {
        return (0, Ending::ClientHungUp);
    }
    written += first.len() as u64;
    while written < total {
        if stop.load(Ordering::SeqCst) {
            return (written, Ending::Stopped);
        }
        let want = match pace {
            Some(_) => 1,
            None => (total - written).min(chunk.len() as u64) as usize,
        };
        match s.write(&chunk[..want]) {
            Ok(n) => written += n as u64,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (written, Ending::Stalled);
            }
            Err(_) => return (written, Ending::ClientHungUp),
        }
        // The fault itself (a server that trickles): what the tests assert is how the client
        // copes, never how long the pauses were.
        if let Some(p) = pace {
            std::thread::sleep(p);
        }
    }
    (written, Ending::Complete)
}

/// What the kernel may hold between the two ends of a loopback connection, plus 1 MiB for the
/// client's own buffering and HTTP framing (see the module doc).
pub fn socket_slack() -> u64 {
    let max_of = |file: &str, fallback: u64| {
        std::fs::read_to_string(file)
            .ok()
            .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
            .unwrap_or(fallback)
    };
    max_of("/proc/sys/net/ipv4/tcp_rmem", 32 << 20)
        + max_of("/proc/sys/net/ipv4/tcp_wmem", 4 << 20)
        + (1 << 20)
}

/// More than a client that stops reading an event line at the list's cap can let the server
/// write: reaching it means the client kept reading.
pub fn endless_line_bound() -> u64 {
    LIST_CAP + socket_slack() + (1 << 20)
}
