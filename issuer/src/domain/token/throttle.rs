//! Failed authentications cost the guesser, not the database, and the throttle never fails open.
//!
//! Every failure counts against the client at three widths: its address (an IPv4 address or an
//! IPv6 /64, one subscriber's allocation), then wider networks with higher thresholds (IPv4 /24;
//! IPv6 /56 and /48), so rotating through the addresses of one allocation or of a few
//! neighbouring ones does not reset the count. A client blocked at its own width (its address,
//! its /64) is refused at once. A client whose wider network is blocked is refused any database
//! lookup, but a key already in memory whose secret verifies still works: the wider widths stop
//! guessers spread over a network from reaching the database, and must not let one of them shut
//! out the unrelated customers next door (behind the same NAT /24, in a hosting provider's /48),
//! whose keys cost a keyed hash to check. Each table is bounded: when it is full, the entry whose window started longest ago and
//! that is *not blocked* makes room (a blocked client is never evicted, so filling the table from
//! other addresses cannot unblock anyone), found in `O(log n)` from a time-ordered index.
//!
//! Behind the tables, a global failure budget: once more failures than it allows arrive in one
//! second (from anywhere), the server is under a spread-out guessing attack, and for the next
//! [`SLOW_FOR`] the database lookups of keys that are not already in memory are limited to
//! [`Throttle::SLOW_LOOKUPS_PER_SEC`] a second (429 beyond). Keys in use are cached, so they are
//! not slowed; only unknown (or cold) key IDs are.
//!
//! Time is a parameter (`now: Instant`), so tests pin exact boundaries.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long lookups stay slowed after the global failure budget was exceeded.
pub const SLOW_FOR: Duration = Duration::from_secs(10);

/// One width at which failures are counted.
#[derive(Debug, Clone, Copy)]
struct Width {
    v4_prefix: u8,
    v6_prefix: u8,
    burst: u32,
}

/// The widths, narrowest first: IPv4 /32 and /24 (20 and 100 failures a window; IPv4 has no third
/// width, wider IPv4 networks are too often shared by unrelated users), IPv6 /64, /56 and /48 (20,
/// 100 and 400).
const WIDTHS: [Width; 3] = [
    Width {
        v4_prefix: 32,
        v6_prefix: 64,
        burst: 20,
    },
    Width {
        v4_prefix: 24,
        v6_prefix: 56,
        burst: 100,
    },
    Width {
        v4_prefix: 32,
        v6_prefix: 48,
        burst: 400,
    },
];

/// The network `ip` belongs to at this width.
fn network(ip: IpAddr, width: Width) -> IpAddr {
    crate::domain::client::network(ip, width.v4_prefix, width.v6_prefix)
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    window_start: Instant,
    blocked_until: Option<Instant>,
}

/// One bounded table of failures by network.
#[derive(Debug, Default)]
struct Table {
    entries: HashMap<IpAddr, Failures>,
    /// Unblocked entries by the start of their window, oldest first: what may be evicted.
    unblocked: BTreeSet<(Instant, IpAddr)>,
    /// Blocked entries by the end of their block: forgotten once it has passed.
    blocked: BTreeSet<(Instant, IpAddr)>,
}

impl Table {
    fn blocked(&self, net: IpAddr, now: Instant) -> Option<Duration> {
        self.entries
            .get(&net)
            .and_then(|f| f.blocked_until)
            .and_then(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// Forgets blocks that have ended and windows that have closed, oldest first.
    fn expire(&mut self, now: Instant, window: Duration) {
        while let Some(&(until, net)) = self.blocked.first() {
            if until > now {
                break;
            }
            self.blocked.pop_first();
            self.entries.remove(&net);
        }
        while let Some(&(start, net)) = self.unblocked.first() {
            if now.saturating_duration_since(start) < window {
                break;
            }
            self.unblocked.pop_first();
            self.entries.remove(&net);
        }
    }

    /// Counts one failure of `net`; whether there was room to count it.
    fn fail(&mut self, net: IpAddr, now: Instant, t: &Limits, burst: u32) -> bool {
        self.expire(now, t.window);
        if !self.entries.contains_key(&net) && self.entries.len() >= t.capacity {
            // Full: the oldest unblocked entry makes room; blocked ones never do.
            match self.unblocked.pop_first() {
                Some((_, evicted)) => {
                    self.entries.remove(&evicted);
                }
                None => return false,
            }
        }
        let f = self.entries.entry(net).or_insert(Failures {
            count: 0,
            window_start: now,
            blocked_until: None,
        });
        if f.blocked_until.is_some() {
            return true;
        }
        self.unblocked.remove(&(f.window_start, net));
        if now.saturating_duration_since(f.window_start) >= t.window {
            f.count = 0;
            f.window_start = now;
        }
        f.count = f.count.saturating_add(1);
        if f.count >= burst {
            let until = now + t.cooldown;
            f.blocked_until = Some(until);
            self.blocked.insert((until, net));
        } else {
            self.unblocked.insert((f.window_start, net));
        }
        true
    }
}

/// The throttle's settings.
#[derive(Debug, Clone, Copy)]
struct Limits {
    window: Duration,
    cooldown: Duration,
    capacity: usize,
    global_per_sec: u32,
}

#[derive(Debug, Default)]
struct Global {
    /// Failures counted in the current second.
    second: Option<Instant>,
    failures: u32,
    /// Lookups slowed until then.
    slow_until: Option<Instant>,
    /// Uncached lookups made in the current second while slowed.
    lookup_second: Option<Instant>,
    lookups: u32,
    /// Failures that found every table full of blocked clients.
    untracked: u64,
}

/// Throttles failed authentications; see the module documentation.
#[derive(Debug)]
pub struct Throttle {
    limits: Limits,
    /// Scales the bursts of [`WIDTHS`] (tests use small numbers).
    burst_scale: (u32, u32),
    tables: Mutex<([Table; 3], Global)>,
}

impl Throttle {
    /// Clients tracked per width at most.
    pub const MAX_TRACKED: usize = 100_000;
    /// Failures a second, from everyone together, before lookups are slowed.
    pub const GLOBAL_FAILURES_PER_SEC: u32 = 1_000;
    /// Uncached key lookups a second while slowed.
    pub const SLOW_LOOKUPS_PER_SEC: u32 = 50;

    /// 20 failures a minute per client (more for wider networks), then a minute's pause: plenty
    /// for a typo, ruinous for a guesser.
    pub fn new() -> Self {
        Self::with(
            Duration::from_secs(60),
            Duration::from_secs(60),
            Self::MAX_TRACKED,
            Self::GLOBAL_FAILURES_PER_SEC,
            (1, 1),
        )
    }

    fn with(
        window: Duration,
        cooldown: Duration,
        capacity: usize,
        global_per_sec: u32,
        burst_scale: (u32, u32),
    ) -> Self {
        Self {
            limits: Limits {
                window,
                cooldown,
                capacity,
                global_per_sec,
            },
            burst_scale,
            tables: Mutex::new((Default::default(), Global::default())),
        }
    }

    fn burst(&self, w: Width) -> u32 {
        (w.burst * self.burst_scale.0 / self.burst_scale.1.max(1)).max(1)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ([Table; 3], Global)> {
        self.tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// If `ip` is blocked at any width, for how long still.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let state = self.lock();
        WIDTHS
            .iter()
            .zip(state.0.iter())
            .filter_map(|(w, t)| t.blocked(network(ip, *w), now))
            .max()
    }

    /// If `ip`'s own client (its address, its IPv6 /64) is blocked, for how long still.
    pub fn blocked_client(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let state = self.lock();
        state.0[0].blocked(network(ip, WIDTHS[0]), now)
    }

    /// Records a failed authentication from `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let limits = self.limits;
        let bursts = WIDTHS.map(|w| self.burst(w));
        let mut state = self.lock();
        let (tables, global) = &mut *state;
        // A client already blocked is refused without a lookup: its requests cost nothing more
        // and must not keep the global budget tripped for everyone else.
        // A client whose wider network is blocked is still counted, at its own width and in the
        // global budget: such a client may still use a key held in memory, so its failures
        // (wrong secrets for a known key ID) must still end in its own block.
        if tables[0].blocked(network(ip, WIDTHS[0]), now).is_some() {
            return;
        }
        let mut tracked = true;
        for (i, ((w, table), burst)) in WIDTHS.iter().zip(tables.iter_mut()).zip(bursts).enumerate()
        {
            let net = network(ip, *w);
            if table.blocked(net, now).is_some() {
                continue;
            }
            let counted = table.fail(net, now, &limits, burst);
            if i == 0 {
                tracked = counted;
            }
        }
        if !tracked {
            global.untracked = global.untracked.saturating_add(1);
        }
        if global
            .second
            .is_none_or(|s| now.saturating_duration_since(s) >= Duration::from_secs(1))
        {
            global.second = Some(now);
            global.failures = 0;
        }
        global.failures = global.failures.saturating_add(1);
        // A client the narrowest table has no room for (it is full of blocked clients) cannot be
        // blocked on its own: lookups are slowed for everyone instead, so the throttle never fails
        // open.
        if global.failures > limits.global_per_sec || !tracked {
            global.slow_until = Some(now + SLOW_FOR);
        }
    }

    /// Whether a database lookup of a key not in memory may go ahead now; when the global budget
    /// has been exceeded lately, at most [`Self::SLOW_LOOKUPS_PER_SEC`] a second do.
    pub fn lookup_allowed(&self, now: Instant) -> bool {
        let mut state = self.lock();
        let global = &mut state.1;
        if global.slow_until.is_none_or(|u| u <= now) {
            return true;
        }
        if global
            .lookup_second
            .is_none_or(|s| now.saturating_duration_since(s) >= Duration::from_secs(1))
        {
            global.lookup_second = Some(now);
            global.lookups = 0;
        }
        global.lookups += 1;
        global.lookups <= Self::SLOW_LOOKUPS_PER_SEC
    }

    #[cfg(test)]
    fn tracked(&self, width: usize) -> usize {
        self.lock().0.get(width).map_or(0, |t| t.entries.len())
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::client::client_of;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn small(capacity: usize) -> Throttle {
        // Bursts of 3 / 15 / 60 (a twentieth... scaled from 20 / 100 / 400 by 3/20).
        Throttle::with(
            Duration::from_secs(60),
            Duration::from_secs(60),
            capacity,
            1_000_000,
            (3, 20),
        )
    }

    #[test]
    fn failures_block_a_client_after_its_burst_and_only_that_client() {
        let t = small(100);
        let now = Instant::now();
        for _ in 0..2 {
            t.failed(ip("10.0.0.1"), now);
        }
        assert!(t.blocked(ip("10.0.0.1"), now).is_none());
        t.failed(ip("10.0.0.1"), now);
        assert_eq!(
            t.blocked(ip("10.0.0.1"), now),
            Some(Duration::from_secs(60))
        );
        assert!(t.blocked(ip("10.0.0.2"), now).is_none());
        assert!(
            t.blocked(ip("10.0.0.1"), now + Duration::from_secs(60))
                .is_none()
        );
    }

    #[test]
    fn an_ipv6_client_is_its_64_and_wider_networks_are_counted_too() {
        let t = small(1000);
        let now = Instant::now();
        for host in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"] {
            t.failed(ip(host), now);
        }
        assert!(t.blocked(ip("2001:db8:1:2::77"), now).is_some());
        assert!(t.blocked(ip("2001:db8:1:3::1"), now).is_none());
        // Rotating /64s inside one /56: blocked at the /56 after 15 failures, two per /64.
        let t = small(1000);
        for n in 0..15u16 {
            let host = std::net::Ipv6Addr::new(0x2001, 0xdb8, 7, n / 2, 0, 0, 0, n);
            t.failed(IpAddr::V6(host), now);
        }
        assert!(
            t.blocked(ip("2001:db8:7:ff::1"), now).is_some(),
            "another /64 of the same /56"
        );
        assert!(t.blocked(ip("2001:db8:7:100::1"), now).is_none());
        // Rotating /56s inside one /48 (two failures per /64, ten per /56): blocked at the /48
        // after 60.
        let t = small(1000);
        for n in 0..60u16 {
            let group = ((n / 10) << 8) | ((n / 2) % 5);
            let host = std::net::Ipv6Addr::new(0x2001, 0xdb8, 9, group, 0, 0, 0, n);
            t.failed(IpAddr::V6(host), now);
        }
        assert!(t.blocked(ip("2001:db8:9:ff00::1"), now).is_some());
        // IPv4 /24.
        let t = small(1000);
        for n in 0..15u8 {
            t.failed(IpAddr::from([198, 51, 100, n]), now);
        }
        assert!(t.blocked(ip("198.51.100.200"), now).is_some());
        assert!(t.blocked(ip("198.51.101.1"), now).is_none());
    }

    /// Issue #13: once the table was full, new clients went untracked, so a fresh address got 401
    /// on 30 wrong keys in a row, never 429.
    #[test]
    fn a_full_table_evicts_the_oldest_unblocked_client_and_never_a_blocked_one() {
        let t = small(4);
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        // A blocked client, then three others with one failure each, all within the window.
        for _ in 0..3 {
            t.failed(ip("192.0.2.1"), at(0));
        }
        for (n, s) in [(2u8, 1u64), (3, 2), (4, 3)] {
            t.failed(IpAddr::from([203, 0, 113, n]), at(s));
        }
        assert_eq!(t.tracked(0), 4);
        // Fresh addresses, three failures each: each is tracked and blocked, in place of the
        // oldest unblocked client.
        for n in 1..=3u8 {
            let fresh = IpAddr::from([198, 18, n, 1]);
            for _ in 0..3 {
                t.failed(fresh, at(4));
            }
            assert!(t.blocked(fresh, at(4)).is_some(), "{fresh}");
            assert_eq!(t.tracked(0), 4);
        }
        assert!(
            t.blocked(ip("192.0.2.1"), at(4)).is_some(),
            "the blocked client was never evicted"
        );
        assert!(t.lookup_allowed(at(4)), "nothing went untracked yet");
        // Now the table is full of blocked clients: one more fresh client cannot be tracked on
        // its own, and lookups are slowed for everyone instead of it failing open.
        t.failed(ip("100.64.0.1"), at(4));
        let allowed = (0..100).filter(|_| t.lookup_allowed(at(4))).count();
        assert_eq!(allowed, Throttle::SLOW_LOOKUPS_PER_SEC as usize);
        // Once blocks end, their room comes back.
        for _ in 0..3 {
            t.failed(ip("100.64.0.1"), at(65));
        }
        assert!(t.blocked(ip("100.64.0.1"), at(65)).is_some());
    }

    /// Found in review: IPv4 clients seen through a dual-stack listener or a proxy arrive as
    /// `::ffff:a.b.c.d`; masked as IPv6 they were all one `::/64`, so twenty failures from one
    /// blocked every IPv4 client.
    #[test]
    fn ipv4_mapped_addresses_are_their_ipv4_client() {
        let t = small(100);
        let now = Instant::now();
        for _ in 0..3 {
            t.failed(ip("::ffff:192.0.2.1"), now);
        }
        assert!(t.blocked(ip("192.0.2.1"), now).is_some());
        assert!(t.blocked(ip("::ffff:192.0.2.2"), now).is_none());
        assert_eq!(client_of(ip("::ffff:198.51.100.7")), ip("198.51.100.7"));
    }

    #[test]
    fn a_blocked_client_does_not_keep_the_global_budget_tripped() {
        let t = Throttle::with(
            Duration::from_secs(60),
            Duration::from_secs(60),
            1000,
            10,
            (3, 20),
        );
        let now = Instant::now();
        // Blocked after 3; the thousand failures after that are not counted.
        for _ in 0..1000 {
            t.failed(ip("10.2.0.1"), now);
        }
        assert!(t.blocked(ip("10.2.0.1"), now).is_some());
        assert!(
            (0..100).all(|_| t.lookup_allowed(now)),
            "one blocked client does not slow lookups for everyone"
        );
    }

    #[test]
    fn failures_beyond_the_global_budget_slow_uncached_lookups_for_a_while() {
        let t = Throttle::with(
            Duration::from_secs(60),
            Duration::from_secs(60),
            1000,
            10,
            (1, 1),
        );
        let now = Instant::now();
        for n in 0..10u8 {
            t.failed(IpAddr::from([10, 1, 0, n]), now);
        }
        assert!(t.lookup_allowed(now), "within the budget");
        t.failed(ip("10.1.1.1"), now);
        let allowed = (0..100).filter(|_| t.lookup_allowed(now)).count();
        assert_eq!(allowed, Throttle::SLOW_LOOKUPS_PER_SEC as usize);
        let next_second = now + Duration::from_secs(1);
        assert!(t.lookup_allowed(next_second));
        assert!(
            (0..100).all(|_| t.lookup_allowed(now + SLOW_FOR)),
            "no longer slowed once SLOW_FOR has passed"
        );
    }
}
