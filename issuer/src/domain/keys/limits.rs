//! Rate limits per key: its own quota and, for publishable keys, a share per client.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::domain::client::client_of;

use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::domain::clock::Ticker;

/// One key's own limiter, on the injected clock.
pub type DirectLimiter = RateLimiter<NotKeyed, InMemoryState, Ticker, NoOpMiddleware<Instant>>;
/// A limiter per `K` (e.g. per client), on the injected clock.
pub type KeyedLimiter<K> =
    RateLimiter<K, DefaultKeyedStateStore<K>, Ticker, NoOpMiddleware<Instant>>;

/// A parsed `N/s` or `N/m` rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSpec {
    /// Requests per period.
    pub count: NonZeroU32,
    /// The period.
    pub per: Period,
}

/// Rate limit period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Per second.
    Second,
    /// Per minute.
    Minute,
}

impl RateSpec {
    /// Parses `50/s` or `3000/m`.
    pub fn parse(s: &str) -> Option<Self> {
        let (n, p) = s.split_once('/')?;
        let count = NonZeroU32::new(n.trim().parse().ok()?)?;
        let per = match p.trim() {
            "s" | "sec" | "second" => Period::Second,
            "m" | "min" | "minute" => Period::Minute,
            _ => return None,
        };
        Some(Self { count, per })
    }

    /// The limiter for one key: the whole quota may be spent in a burst, then it refills evenly.
    pub fn limiter(self, ticker: &Ticker) -> DirectLimiter {
        RateLimiter::direct_with_clock(self.quota(), ticker.clone())
    }

    fn quota(self) -> Quota {
        match self.per {
            Period::Second => Quota::per_second(self.count),
            Period::Minute => Quota::per_minute(self.count),
        }
    }
}

impl std::fmt::Display for RateSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = match self.per {
            Period::Second => "s",
            Period::Minute => "m",
        };
        write!(f, "{}/{p}", self.count)
    }
}

impl RateSpec {
    /// The per-client share of a publishable key's quota: a tenth, at least one per period.
    pub fn per_client(self) -> Self {
        let count = NonZeroU32::new(self.count.get() / 10).unwrap_or(NonZeroU32::MIN);
        Self {
            count,
            per: self.per,
        }
    }

    /// A limiter with this quota per key of type `K` (e.g. per client IP).
    pub fn keyed_limiter<K: std::hash::Hash + Eq + Clone>(
        self,
        ticker: &Ticker,
    ) -> KeyedLimiter<K> {
        RateLimiter::dashmap_with_clock(self.quota(), ticker.clone())
    }
}

/// Like [`check`], for one key of a keyed limiter.
pub fn check_keyed<K: std::hash::Hash + Eq + Clone>(
    limiter: &KeyedLimiter<K>,
    key: &K,
) -> Option<Duration> {
    limiter
        .check_key(key)
        .err()
        .map(|not_until| not_until.wait_time_from(limiter.clock().now()))
}

/// How long until `limiter` admits one more request, or `None` if it admits it now (consuming it).
pub fn check(limiter: &DirectLimiter) -> Option<Duration> {
    limiter
        .check()
        .err()
        .map(|not_until| not_until.wait_time_from(limiter.clock().now()))
}

/// One key's rate limiters: its own quota and, for publishable keys, a tenth of it per client IP
/// (an `Origin` header is easy to forge outside a browser, and one client must not exhaust the key
/// for every other). Kept apart from the cached key, so that re-reading a changed key keeps the
/// quota already spent unless the limit itself changed.
#[derive(Debug)]
pub struct KeyLimits {
    /// The setting these were built from, and whether per client too.
    spec: (RateSetting, bool),
    key: Option<DirectLimiter>,
    per_client: Option<KeyedLimiter<IpAddr>>,
    checks: AtomicU32,
}

/// A key's stored `rate_limit`, read once at the store's edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateSetting {
    /// No limit stored.
    Unlimited,
    /// `N/s` or `N/m`.
    Limit(RateSpec),
    /// A stored value that does not parse: every request is refused (fail closed), never "no
    /// limit".
    Unreadable,
}

impl RateSetting {
    /// The setting a stored column holds.
    pub fn of(stored: Option<&str>) -> Self {
        match stored {
            None => Self::Unlimited,
            Some(s) => RateSpec::parse(s).map_or(Self::Unreadable, Self::Limit),
        }
    }
}

/// How many checks between sweeps of a publishable key's per-client limiters.
const SWEEP_EVERY: u32 = 4096;

impl KeyLimits {
    /// Limiters for a stored `rate_limit` (none when absent; every request refused when it does
    /// not parse); `per_client` for publishable keys.
    pub fn new(rate: RateSetting, per_client: bool, ticker: &Ticker) -> Self {
        let spec = match rate {
            RateSetting::Limit(spec) => Some(spec),
            RateSetting::Unlimited | RateSetting::Unreadable => None,
        };
        Self {
            spec: (rate, per_client),
            key: spec.map(|r| r.limiter(ticker)),
            per_client: spec
                .filter(|_| per_client)
                .map(|r| r.per_client().keyed_limiter(ticker)),
            checks: AtomicU32::new(0),
        }
    }

    /// Whether these limiters were built for this setting and kind.
    pub fn serve(&self, rate: RateSetting, per_client: bool) -> bool {
        self.spec == (rate, per_client)
    }

    /// Counts one request from `ip`; how long to wait when over either limit. The client's own
    /// share is checked first, so a client over it spends nothing of the key's quota.
    pub fn check(&self, ip: &IpAddr) -> Option<Duration> {
        if self.spec.0 == RateSetting::Unreadable {
            return Some(Duration::from_secs(60));
        }
        if let Some(per_client) = &self.per_client {
            // Forget clients whose share has refilled, now and then, so that a key used from
            // ever new addresses does not grow without bound.
            if self
                .checks
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(SWEEP_EVERY)
            {
                per_client.retain_recent();
            }
            // Keyed like the failure throttle: an IPv6 /64 is one client, so rotating through
            // the addresses of one allocation does not multiply its share.
            if let Some(wait) = check_keyed(per_client, &client_of(*ip)) {
                return Some(wait);
            }
        }
        self.key.as_ref().and_then(check)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_specs_parse() {
        assert_eq!(RateSpec::parse("50/s").unwrap().to_string(), "50/s");
        assert_eq!(RateSpec::parse("3000/m").unwrap().per, Period::Minute);
        for bad in ["0/s", "x/s", "5/h", "5", ""] {
            assert!(RateSpec::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn limiter_refuses_beyond_its_burst_and_refills_evenly() {
        let (ticker, hand) = Ticker::manual();
        let l = RateSpec::parse("3/m").unwrap().limiter(&ticker);
        assert!(check(&l).is_none());
        assert!(check(&l).is_none());
        assert!(check(&l).is_none());
        let wait = check(&l).expect("fourth request within a minute is refused");
        assert_eq!(
            wait,
            Duration::from_secs(20),
            "one request refills every 20 s"
        );
        hand.advance(Duration::from_secs(19));
        assert_eq!(check(&l), Some(Duration::from_secs(1)), "a second early");
        hand.advance(Duration::from_secs(1));
        assert!(check(&l).is_none(), "refilled at exactly 20 s");
        assert!(check(&l).is_some(), "and only one");
    }

    #[test]
    fn key_limits_count_per_key_and_per_client_for_publishable_keys() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let (t, _) = Ticker::manual();
        let secret = KeyLimits::new(RateSetting::of(Some("2/m")), false, &t);
        assert!(secret.check(&a).is_none());
        assert!(secret.check(&b).is_none());
        assert!(
            secret.check(&a).is_some(),
            "the key's own quota is shared by all"
        );
        // 20/m for the key, 2/m per client.
        let publishable = KeyLimits::new(RateSetting::of(Some("20/m")), true, &t);
        assert!(publishable.check(&a).is_none());
        assert!(publishable.check(&a).is_none());
        assert!(publishable.check(&a).is_some(), "a tenth per client");
        assert!(
            publishable.check(&b).is_none(),
            "another client has its own tenth"
        );
        assert!(
            KeyLimits::new(RateSetting::Unlimited, true, &t)
                .check(&a)
                .is_none()
        );
        // A client over its share spends nothing of the key's quota: ten more clients still get
        // the 18 requests left of it.
        let drained = KeyLimits::new(RateSetting::of(Some("20/m")), true, &t);
        for n in 0..12 {
            assert_eq!(
                drained.check(&a).is_none(),
                n < 2,
                "request {n} from one client"
            );
        }
        let others: Vec<IpAddr> = (10..19u8).map(|n| IpAddr::from([192, 0, 2, n])).collect();
        for ip in &others {
            assert!(drained.check(ip).is_none());
            assert!(drained.check(ip).is_none());
        }
        assert!(
            drained.check(&"192.0.2.99".parse().unwrap()).is_some(),
            "the key's own quota is spent"
        );
        assert!(secret.serve(RateSetting::of(Some("2/m")), false));
        assert!(
            KeyLimits::new(RateSetting::of(Some("lots")), false, &t)
                .check(&a)
                .is_some(),
            "an unreadable stored limit refuses, it does not mean no limit"
        );
        assert!(!secret.serve(RateSetting::of(Some("3/m")), false));
        assert!(!secret.serve(RateSetting::of(Some("2/m")), true));
        assert!(!secret.serve(RateSetting::Unlimited, false));
    }

    /// Issue #13: 600 requests from rotating addresses of one /64 spent a publishable key's whole
    /// quota, and a client in another /64 got 429.
    #[test]
    fn a_publishable_keys_per_client_share_counts_an_ipv6_64_as_one_client() {
        let limits = KeyLimits::new(RateSetting::of(Some("600/m")), true, &Ticker::manual().0);
        let mut served = 0;
        for n in 0..600u16 {
            let ip = IpAddr::from(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, n + 1));
            if limits.check(&ip).is_none() {
                served += 1;
            }
        }
        assert_eq!(served, 60, "one /64 gets a tenth of the key's quota");
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(
            limits.check(&other).is_none(),
            "a client in another /64 is still served"
        );
    }
}
