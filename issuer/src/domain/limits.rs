//! Rate limits: per key (its own quota) and failed authentications per client IP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

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
    pub fn limiter(self) -> DefaultDirectRateLimiter {
        let quota = match self.per {
            Period::Second => Quota::per_second(self.count),
            Period::Minute => Quota::per_minute(self.count),
        };
        RateLimiter::direct(quota)
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
    ) -> governor::DefaultKeyedRateLimiter<K> {
        let quota = match self.per {
            Period::Second => Quota::per_second(self.count),
            Period::Minute => Quota::per_minute(self.count),
        };
        RateLimiter::keyed(quota)
    }
}

/// Like [`check`], for one key of a keyed limiter.
pub fn check_keyed<K: std::hash::Hash + Eq + Clone>(
    limiter: &governor::DefaultKeyedRateLimiter<K>,
    key: &K,
) -> Option<Duration> {
    limiter
        .check_key(key)
        .err()
        .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
}

/// How long until `limiter` admits one more request, or `None` if it admits it now (consuming it).
pub fn check(limiter: &DefaultDirectRateLimiter) -> Option<Duration> {
    limiter
        .check()
        .err()
        .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
}

/// One key's rate limiters: its own quota and, for publishable keys, a tenth of it per client IP
/// (an `Origin` header is easy to forge outside a browser, and one client must not exhaust the key
/// for every other). Kept apart from the cached key, so that re-reading a changed key keeps the
/// quota already spent unless the limit itself changed.
#[derive(Debug)]
pub struct KeyLimits {
    /// The stored `N/s` / `N/m` these were built from, and whether per client too.
    spec: (Option<String>, bool),
    key: Option<DefaultDirectRateLimiter>,
    per_client: Option<governor::DefaultKeyedRateLimiter<IpAddr>>,
    checks: AtomicU32,
}

/// How many checks between sweeps of a publishable key's per-client limiters.
const SWEEP_EVERY: u32 = 4096;

impl KeyLimits {
    /// Limiters for a stored `rate_limit` (none when absent or unreadable); `per_client` for
    /// publishable keys.
    pub fn new(rate_limit: Option<&str>, per_client: bool) -> Self {
        let spec = rate_limit.and_then(RateSpec::parse);
        Self {
            spec: (rate_limit.map(str::to_owned), per_client),
            key: spec.map(RateSpec::limiter),
            per_client: spec
                .filter(|_| per_client)
                .map(|r| r.per_client().keyed_limiter()),
            checks: AtomicU32::new(0),
        }
    }

    /// Whether these limiters were built for this `rate_limit` and kind.
    pub fn serve(&self, rate_limit: Option<&str>, per_client: bool) -> bool {
        self.spec.0.as_deref() == rate_limit && self.spec.1 == per_client
    }

    /// Counts one request from `ip`; how long to wait when over either limit. The client's own
    /// share is checked first, so a client over it spends nothing of the key's quota.
    pub fn check(&self, ip: &IpAddr) -> Option<Duration> {
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
            if let Some(wait) = check_keyed(per_client, ip) {
                return Some(wait);
            }
        }
        self.key.as_ref().and_then(check)
    }
}

/// Throttles failed authentications per client, so guessing keys costs the guesser, not the
/// database: after `burst` failures within `window` a client is refused (without any lookup) for
/// `cooldown`. A client is an IPv4 address or an IPv6 /64 (one subscriber's allocation: rotating
/// through its addresses must not reset the count).
#[derive(Debug)]
pub struct FailureThrottle {
    burst: u32,
    window: Duration,
    cooldown: Duration,
    capacity: usize,
    state: Mutex<Tracked>,
}

#[derive(Debug)]
struct Tracked {
    clients: HashMap<IpAddr, Failures>,
    /// When expired entries were last swept: at most once a second, not on every failure.
    swept: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    window_start: Instant,
    blocked_until: Option<Instant>,
}

/// The unit a client is throttled by: the address itself, or its /64 for IPv6.
fn client_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
    }
}

impl FailureThrottle {
    /// The most clients tracked at once. When that many are failing at once, new ones go
    /// untracked (each of their failures still costs them a full request) rather than the table
    /// growing without bound.
    const MAX_TRACKED: usize = 100_000;

    /// `burst` failures per `window`, then a `cooldown`.
    pub fn new(burst: u32, window: Duration, cooldown: Duration) -> Self {
        Self::with_capacity(burst, window, cooldown, Self::MAX_TRACKED)
    }

    fn with_capacity(burst: u32, window: Duration, cooldown: Duration, capacity: usize) -> Self {
        Self {
            burst,
            window,
            cooldown,
            capacity,
            state: Mutex::new(Tracked {
                clients: HashMap::new(),
                swept: None,
            }),
        }
    }

    /// If `ip`'s client is blocked, how long it still is.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state
            .clients
            .get(&client_of(ip))
            .and_then(|f| f.blocked_until)
            .and_then(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// Records a failed authentication from `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let client = client_of(ip);
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.clients.len() >= self.capacity
            && !state.clients.contains_key(&client)
            && state
                .swept
                .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
        {
            let window = self.window;
            state.clients.retain(|_, f| {
                now.duration_since(f.window_start) < window
                    || f.blocked_until.is_some_and(|u| u > now)
            });
            state.swept = Some(now);
        }
        if state.clients.len() >= self.capacity && !state.clients.contains_key(&client) {
            return;
        }
        let f = state.clients.entry(client).or_insert(Failures {
            count: 0,
            window_start: now,
            blocked_until: None,
        });
        if now.duration_since(f.window_start) >= self.window {
            f.count = 0;
            f.window_start = now;
        }
        f.count += 1;
        if f.count >= self.burst {
            f.blocked_until = Some(now + self.cooldown);
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clients
            .len()
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
    fn limiter_refuses_beyond_its_burst() {
        let l = RateSpec::parse("3/m").unwrap().limiter();
        assert!(check(&l).is_none());
        assert!(check(&l).is_none());
        assert!(check(&l).is_none());
        let wait = check(&l).expect("fourth request within a minute is refused");
        assert!(wait > Duration::from_secs(1) && wait <= Duration::from_secs(20));
    }

    #[test]
    fn key_limits_count_per_key_and_per_client_for_publishable_keys() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let secret = KeyLimits::new(Some("2/m"), false);
        assert!(secret.check(&a).is_none());
        assert!(secret.check(&b).is_none());
        assert!(
            secret.check(&a).is_some(),
            "the key's own quota is shared by all"
        );
        // 20/m for the key, 2/m per client.
        let publishable = KeyLimits::new(Some("20/m"), true);
        assert!(publishable.check(&a).is_none());
        assert!(publishable.check(&a).is_none());
        assert!(publishable.check(&a).is_some(), "a tenth per client");
        assert!(
            publishable.check(&b).is_none(),
            "another client has its own tenth"
        );
        assert!(KeyLimits::new(None, true).check(&a).is_none());
        // A client over its share spends nothing of the key's quota: ten more clients still get
        // the 18 requests left of it.
        let drained = KeyLimits::new(Some("20/m"), true);
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
        assert!(secret.serve(Some("2/m"), false));
        assert!(!secret.serve(Some("3/m"), false));
        assert!(!secret.serve(Some("2/m"), true));
        assert!(!secret.serve(None, false));
    }

    #[test]
    fn an_ipv6_client_is_its_64_and_the_table_never_grows_past_its_capacity() {
        let t = FailureThrottle::new(3, Duration::from_secs(60), Duration::from_secs(60));
        let now = Instant::now();
        // Three addresses of one /64: one client, blocked after three failures.
        for host in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"] {
            t.failed(host.parse().unwrap(), now);
        }
        assert!(
            t.blocked("2001:db8:1:2::77".parse().unwrap(), now)
                .is_some()
        );
        assert!(t.blocked("2001:db8:1:3::1".parse().unwrap(), now).is_none());

        let small =
            FailureThrottle::with_capacity(3, Duration::from_secs(60), Duration::from_secs(60), 2);
        for n in 1..=5u8 {
            small.failed(IpAddr::from([192, 0, 2, n]), now);
        }
        assert_eq!(small.tracked(), 2, "untracked beyond the capacity");
        // Once the tracked entries have expired, a sweep makes room again.
        let later = now + Duration::from_secs(61);
        small.failed(IpAddr::from([192, 0, 2, 9]), later);
        assert_eq!(small.tracked(), 1);
    }

    #[test]
    fn failures_block_an_ip_after_the_burst_and_only_that_ip() {
        let t = FailureThrottle::new(2, Duration::from_secs(60), Duration::from_secs(30));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let now = Instant::now();
        t.failed(ip, now);
        assert!(t.blocked(ip, now).is_none());
        t.failed(ip, now);
        assert!(t.blocked(ip, now).is_some());
        assert!(t.blocked(other, now).is_none());
        assert!(t.blocked(ip, now + Duration::from_secs(31)).is_none());
    }
}
