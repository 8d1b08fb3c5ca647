//! The server's log writer: formatted lines are appended to one shared buffer under a mutex, and a
//! background thread writes the buffer out every [`FLUSH_INTERVAL`].
//!
//! Why not `tracing_appender::non_blocking`: its queue wakes the writer thread for every line, and
//! the thread spins (`sched_yield`) before it parks. Profiled under the token endpoint's load on two
//! cores, those wake-ups and yields took CPU from the request workers and widened the latency tail
//! (p99 1.3-1.4x the bare signer with the audit line on, 1.05-1.1x with it off). Here a request
//! appends to a `Vec` and wakes the thread only when the buffer goes from empty to non-empty, which
//! under load is once per interval.
//!
//! Nothing is dropped and memory is bounded: when the buffer holds [`MAX_BUFFERED`] bytes, the
//! request that would overflow it writes the buffer out itself (the same back-pressure a full
//! queue gives). Lines keep their order: the buffer lock is held until the output lock is taken.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait in memory before it is written. A log shipper sees lines at most this
/// late; a crash loses at most this much.
pub(super) const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// The most bytes held in memory (about 3,000 audit lines); beyond it a request writes the buffer
/// out itself. At 30,000 issuances a second the thread's interval fills about half of it.
pub(super) const MAX_BUFFERED: usize = 1024 * 1024;

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    out: Mutex<Box<dyn Write + Send>>,
    max_buffered: usize,
}

struct State {
    buf: Vec<u8>,
    stopping: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding either lock leaves bytes, not broken invariants: keep logging.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Writes `buf` out and empties it. Called with the state lock held, so no later line can be
    /// written before these.
    fn drain(&self, buf: &mut Vec<u8>) {
        let mut out = lock(&self.out);
        // A log that cannot be written (stderr closed, disk full) must not take the server down;
        // there is nowhere left to report it.
        let _ = out.write_all(buf).and_then(|()| out.flush());
        buf.clear();
    }
}

/// The handle given to the `tracing` subscriber. Cloning it is cheap.
#[derive(Clone)]
pub(super) struct BatchedLog {
    shared: Arc<Shared>,
}

/// Writes what is left and stops the thread when dropped. Hold it until the process ends.
pub(super) struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl BatchedLog {
    /// Starts the writer thread over `out`.
    pub(super) fn spawn(out: impl Write + Send + 'static) -> io::Result<(Self, FlushGuard)> {
        Self::spawn_with(Box::new(out), FLUSH_INTERVAL, MAX_BUFFERED)
    }

    fn spawn_with(
        out: Box<dyn Write + Send>,
        interval: Duration,
        max_buffered: usize,
    ) -> io::Result<(Self, FlushGuard)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buf: Vec::new(),
                stopping: false,
            }),
            wake: Condvar::new(),
            out: Mutex::new(out),
            max_buffered,
        });
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("keymint-log".into())
                .spawn(move || run(&shared, interval))?
        };
        Ok((
            Self {
                shared: Arc::clone(&shared),
            },
            FlushGuard {
                shared,
                thread: Some(thread),
            },
        ))
    }
}

fn run(shared: &Shared, interval: Duration) {
    // Swapped with the shared buffer, so both keep their capacity between rounds.
    let mut spare = Vec::new();
    let mut state = lock(&shared.state);
    loop {
        // Sleep until a line arrives (or the guard is dropped).
        while state.buf.is_empty() && !state.stopping {
            state = shared
                .wake
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if !state.stopping {
            // Let the lines of the next interval join this one write.
            state = shared
                .wake
                .wait_timeout_while(state, interval, |s| !s.stopping)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        std::mem::swap(&mut state.buf, &mut spare);
        let stopping = state.stopping;
        // Take the output before letting requests append again: an overflowing request must not
        // write its newer lines ahead of these.
        let mut out = lock(&shared.out);
        drop(state);
        let _ = out.write_all(&spare).and_then(|()| out.flush());
        drop(out);
        spare.clear();
        if stopping {
            return;
        }
        state = lock(&shared.state);
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        lock(&self.shared.state).stopping = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Lines logged after the thread's last round (by other threads still running).
        let mut state = lock(&self.shared.state);
        let mut buf = std::mem::take(&mut state.buf);
        self.shared.drain(&mut buf);
    }
}

/// One formatted event's writer.
pub(super) struct LineWriter<'a>(&'a Shared);

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut state = lock(&self.0.state);
        if state.stopping && state.buf.is_empty() {
            // The thread is gone or going: write through.
            drop(state);
            let mut out = lock(&self.0.out);
            out.write_all(bytes)?;
            return Ok(bytes.len());
        }
        if state.buf.len() + bytes.len() > self.0.max_buffered {
            let mut buf = std::mem::take(&mut state.buf);
            self.0.drain(&mut buf);
            state.buf = buf;
        }
        let was_empty = state.buf.is_empty();
        state.buf.extend_from_slice(bytes);
        drop(state);
        if was_empty {
            self.0.wake.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing is the thread's job; a per-line flush would undo the batching.
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedLog {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(&self.shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output that records what reached it, and how many writes it took.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let mut s = self.0.lock().unwrap();
            s.0.extend_from_slice(b);
            s.1 += 1;
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().0.clone()).unwrap()
        }
        fn writes(&self) -> usize {
            self.0.lock().unwrap().1
        }
    }

    fn line(log: &BatchedLog, s: &str) {
        log.make_writer().write_all(s.as_bytes()).unwrap();
    }

    #[test]
    fn lines_reach_the_output_without_a_flush_call() {
        let sink = Sink::default();
        let (log, _guard) =
            BatchedLog::spawn_with(Box::new(sink.clone()), Duration::from_millis(1), 1 << 20)
                .unwrap();
        line(&log, "one\n");
        keymint_testkit::wait_until("the line in the output", Duration::from_secs(10), || {
            (sink.text() == "one\n").then_some(())
        });
    }

    #[test]
    fn dropping_the_guard_writes_every_line_in_order() {
        let sink = Sink::default();
        // An interval far longer than the test: only the guard's drop can write these.
        let (log, guard) =
            BatchedLog::spawn_with(Box::new(sink.clone()), Duration::from_secs(3600), 1 << 20)
                .unwrap();
        let want: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        for i in 0..1000 {
            line(&log, &format!("line {i}\n"));
        }
        drop(guard);
        assert_eq!(sink.text(), want);
        // Batched: far fewer writes than lines.
        assert!(sink.writes() < 10, "{} writes", sink.writes());
        // After the guard, lines are written through rather than lost.
        line(&log, "late\n");
        assert!(sink.text().ends_with("late\n"));
    }

    #[test]
    fn a_full_buffer_is_written_by_the_writer_and_nothing_is_lost() {
        let sink = Sink::default();
        // 64 bytes at most in memory and a thread that never wakes on its own in the test's time.
        let (log, guard) =
            BatchedLog::spawn_with(Box::new(sink.clone()), Duration::from_secs(3600), 64).unwrap();
        for i in 0..100 {
            line(&log, &format!("l{i:03}\n"));
        }
        // 100 lines of 5 bytes: the buffer overflowed several times before the guard dropped.
        assert!(sink.writes() >= 7, "{} writes", sink.writes());
        drop(guard);
        let want: String = (0..100).map(|i| format!("l{i:03}\n")).collect();
        assert_eq!(sink.text(), want);
    }

    #[test]
    fn concurrent_writers_lose_nothing_and_keep_each_ones_order() {
        let sink = Sink::default();
        let (log, guard) =
            BatchedLog::spawn_with(Box::new(sink.clone()), Duration::from_millis(1), 4096).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..5000 {
                        line(&log, &format!("{t} {i}\n"));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let text = sink.text();
        let mut next = [0u32; 4];
        for l in text.lines() {
            let (t, i) = l.split_once(' ').unwrap();
            let t: usize = t.parse().unwrap();
            assert_eq!(
                i.parse::<u32>().unwrap(),
                next[t],
                "thread {t} out of order"
            );
            next[t] += 1;
        }
        assert_eq!(next, [5000; 4]);
    }
}
