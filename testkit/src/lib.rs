//! How keymint's tests wait for something to happen: they poll for the event, with a deadline,
//! and never sleep a fixed time before asserting.
//!
//! A fixed sleep is both slow (it always waits the worst case) and flaky (on a loaded machine the
//! worst case is longer). Polling returns as soon as the event happened and fails, naming what it
//! waited for, only when it did not happen in time.
//!
//! One caveat, for checks that something did *not* happen: a poll for "nothing changed" passes at
//! once and proves nothing. Wait first for a positive marker showing the system has processed past
//! the point where the unwanted thing would have happened (a later event, a counter, a log line, a
//! serial), then assert the negative.
//!
//! ```
//! use std::time::Duration;
//! let mut calls = 0;
//! let n = keymint_testkit::wait_until("the third call", Duration::from_secs(1), || {
//!     calls += 1;
//!     (calls == 3).then_some(calls)
//! });
//! assert_eq!(n, 3);
//! ```

use std::future::Future;
use std::time::{Duration, Instant};

/// The pause between two polls: short next to every deadline, long enough not to spin.
pub const POLL_EVERY: Duration = Duration::from_millis(10);

/// Polls `f` every [`POLL_EVERY`] until it gives a value, and returns it; panics naming `what` if
/// `within` passes first. `f` is always called at least once, and once more at the deadline.
#[track_caller]
#[allow(clippy::panic)] // a test helper: a missed deadline is a failed test
pub fn wait_until<T>(what: &str, within: Duration, f: impl FnMut() -> Option<T>) -> T {
    match try_wait_until(within, f) {
        Some(v) => v,
        None => panic!("{what}: not within {within:?}"),
    }
}

/// [`wait_until`] for when a missed deadline is not a failure (a process that will not stop is
/// killed instead): `None` if `within` passed first.
pub fn try_wait_until<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        let last_chance = Instant::now() >= deadline;
        if let Some(v) = f() {
            return Some(v);
        }
        if last_chance {
            return None;
        }
        std::thread::sleep(POLL_EVERY.min(deadline.saturating_duration_since(Instant::now())));
    }
}

/// [`wait_until`] for async tests: polls `f` every [`POLL_EVERY`] on tokio's clock.
///
/// Under `#[tokio::test(start_paused = true)]` both the pauses and the deadline are on the paused
/// clock: while nothing else can run, tokio jumps the clock ahead, so a missed deadline fails at
/// once rather than after `within` of real time. Work done outside tokio's timers (another
/// thread, a socket) does not hold that jump back: such waits need real time.
#[allow(clippy::panic)] // a test helper: a missed deadline is a failed test
pub async fn wait_until_async<T, F>(what: &str, within: Duration, mut f: impl FnMut() -> F) -> T
where
    F: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let last_chance = tokio::time::Instant::now() >= deadline;
        if let Some(v) = f().await {
            return v;
        }
        if last_chance {
            panic!("{what}: not within {within:?}");
        }
        tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + POLL_EVERY)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_first_value() {
        let mut n = 0;
        let got = wait_until("n to reach 5", Duration::from_secs(5), || {
            n += 1;
            (n >= 5).then_some(n)
        });
        assert_eq!(got, 5);
    }

    #[test]
    #[should_panic(expected = "the impossible: not within 30ms")]
    fn panics_naming_what_it_waited_for() {
        wait_until("the impossible", Duration::from_millis(30), || None::<()>);
    }

    #[test]
    fn polls_once_more_at_the_deadline() {
        let start = Instant::now();
        let within = Duration::from_millis(50);
        wait_until("a call at the deadline", within, || {
            (start.elapsed() >= within).then_some(())
        });
    }

    #[tokio::test(start_paused = true)]
    async fn async_waits_on_the_paused_clock() {
        let start = tokio::time::Instant::now();
        let ready_at = start + Duration::from_secs(60);
        wait_until_async(
            "a minute on the paused clock",
            Duration::from_secs(61),
            || async { (tokio::time::Instant::now() >= ready_at).then_some(()) },
        )
        .await;
        assert!(start.elapsed() >= Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "never: not within 3600s")]
    async fn async_misses_a_deadline_without_waiting_for_it() {
        wait_until_async("never", Duration::from_secs(3600), || async { None::<()> }).await;
    }
}
