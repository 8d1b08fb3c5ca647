//! The domain's monotonic clock, injected like rustls's `TimeProvider`.
//!
//! Wall-clock time (`now: UnixTime`, whole seconds: what tokens and the store carry) is a
//! parameter of every domain call, read once at the edge (`http/`, `cli/`, `server.rs`). Rate
//! limits and the failure throttle need sub-second, monotonic time, and governor's limiters read
//! their clock themselves, so that time comes from a [`Ticker`] handed to the service at
//! construction. Tests hold a manual ticker and move it, so every window boundary is exact.
//! `clippy.toml` forbids the clock reads everywhere else in the issuer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where monotonic time comes from. Cheap to clone; clones share the same source.
#[derive(Debug, Clone)]
pub struct Ticker(Source);

#[derive(Debug, Clone)]
enum Source {
    System,
    /// A fixed origin plus an offset in nanoseconds that only [`ManualTicker::advance`] moves.
    Manual {
        origin: Instant,
        offset: Arc<AtomicU64>,
    },
}

impl Ticker {
    /// The system's monotonic clock (what the server runs on).
    pub fn system() -> Self {
        Self(Source::System)
    }

    /// A ticker that stands still until its handle advances it (tests).
    pub fn manual() -> (Self, ManualTicker) {
        #[allow(clippy::disallowed_methods)] // the origin only: nothing reads the clock after it
        let origin = Instant::now();
        let offset = Arc::new(AtomicU64::new(0));
        (
            Self(Source::Manual {
                origin,
                offset: Arc::clone(&offset),
            }),
            ManualTicker { offset },
        )
    }

    /// The current monotonic instant.
    pub fn now(&self) -> Instant {
        match &self.0 {
            #[allow(clippy::disallowed_methods)] // this is the clock
            Source::System => Instant::now(),
            Source::Manual { origin, offset } => {
                *origin + Duration::from_nanos(offset.load(Ordering::SeqCst))
            }
        }
    }
}

impl Default for Ticker {
    fn default() -> Self {
        Self::system()
    }
}

/// governor's limiters read this clock, so a manual ticker moves them too.
impl governor::clock::Clock for Ticker {
    type Instant = Instant;

    fn now(&self) -> Instant {
        Ticker::now(self)
    }
}

/// The handle that moves a [`Ticker::manual`].
#[derive(Debug, Clone)]
pub struct ManualTicker {
    offset: Arc<AtomicU64>,
}

impl ManualTicker {
    /// Moves the ticker forward by `d`.
    pub fn advance(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.offset.fetch_add(nanos, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_ticker_moves_only_when_advanced_and_its_clones_follow() {
        let (ticker, hand) = Ticker::manual();
        let clone = ticker.clone();
        let start = ticker.now();
        assert_eq!(ticker.now(), start);
        hand.advance(Duration::from_millis(1500));
        assert_eq!(ticker.now() - start, Duration::from_millis(1500));
        assert_eq!(clone.now(), ticker.now());
    }
}
