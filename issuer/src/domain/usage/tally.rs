//! Counting uses into hourly rollups with bounded cardinality.
//!
//! Clients choose their addresses (forwarded headers, a whole IPv6 /64), their `Origin` header and
//! the key IDs they present. Each of those would be a new row, so every hour each key may keep
//! [`PER_KEY_KINDS`] distinct (client, origin, action, outcome, reason) combinations apart, the
//! key IDs nobody has (and requests with none) [`PER_UNKNOWN_KINDS`] between them, one tenant's
//! keys [`PER_TENANT_KINDS`] between them, and all keys together [`MAX_KINDS`]. Requests that name
//! a key but not its secret (key IDs are not secret) have a share of their own per key,
//! [`PER_CLAIMED_KINDS`], and [`MAX_CLAIMED_KINDS`] all together, so that someone who knows key
//! IDs can neither fill a holder's share with forged origins and push its real clients into
//! `other`, nor the hour's. A use beyond its share is still counted, under client and origin
//! `other` (and, for an unknown key, reason `other`): what a guesser or a broken client adds is
//! one row per key and outcome, never one per request or per address.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};

use crate::domain::client::{IpText, client_of};
use crate::store::UsageCount;

use super::event::{Presented, Usage};

/// Rollup period: an hour (see the module docs of [`super`] for why not a minute).
pub const BUCKET: i64 = 3600;
/// Distinct kinds kept apart in an hour, all keys together.
pub const MAX_KINDS: usize = 100_000;
/// Distinct kinds one tenant's keys keep apart in an hour, all together: a quarter of
/// [`MAX_KINDS`], so that one large or busy tenant cannot push every other tenant's new clients
/// into `other` for the rest of the hour.
pub const PER_TENANT_KINDS: usize = 25_000;
/// Distinct kinds all keys together keep apart in an hour among requests that presented a key's
/// ID with a wrong secret: key IDs are not secret, so these kinds are the sender's choice, and
/// together they may take a tenth of [`MAX_KINDS`], not all of it.
pub const MAX_CLAIMED_KINDS: usize = 10_000;
/// Distinct kinds one key keeps apart in an hour.
pub const PER_KEY_KINDS: u16 = 64;
/// Distinct kinds one key keeps apart in an hour among requests that presented its ID with a
/// wrong secret (anyone can): a share of their own, beside [`PER_KEY_KINDS`].
pub const PER_CLAIMED_KINDS: u16 = 16;
/// Distinct kinds the unknown and unreadable key IDs keep apart in an hour, together.
pub const PER_UNKNOWN_KINDS: u16 = 1_000;
/// Rows waiting for the database at most (reached only while it fails); beyond, counts are
/// dropped from the database and stay in the log.
pub(super) const MAX_PENDING: usize = 200_000;
/// The longest origin stored; a longer one is cut (an `Origin` header is the client's choice).
const MAX_ORIGIN: usize = 256;
/// The longest reason stored.
const MAX_REASON: usize = 200;
/// What stands for the clients and origins beyond a share.
pub const OTHER: &str = "other";

/// The rollup of the current hour's uses not yet written.
#[derive(Debug)]
pub struct Tally {
    hasher: RandomState,
    hour: i64,
    /// Hashes of the kinds kept apart this hour.
    admitted: HashSet<u64>,
    /// Kinds kept apart this hour, per key (by the hash of its stored ID).
    per_key: HashMap<u64, u16>,
    /// Kinds kept apart this hour by the uses of a tenant's keys that presented their secret,
    /// per tenant (by the hash of its ID).
    per_tenant: HashMap<u64, usize>,
    /// Kinds kept apart this hour among uses that presented a key ID with a wrong secret.
    claimed_kinds: usize,
    /// Counts since the last [`Tally::take`], by the hash of their kind. Hashes are SipHash with
    /// a random key: a client cannot aim two kinds at one hash.
    ///
    /// Only the numbers live in the map, the kind's text in `rows`: a request that adds to a
    /// count touches a 40-byte entry, not a 200-byte one with seven strings. With 10,000 keys in
    /// use the map is then a few hundred kilobytes, mostly in the CPU's cache (`perf` showed the
    /// misses on the larger map as about 0.6 % of the token endpoint's CPU).
    pending: HashMap<u64, Counted>,
    /// The kinds counted in `pending`, each at the index its entry holds (counts left at zero
    /// until [`Tally::take`] fills them in).
    rows: Vec<UsageCount>,
    dropped: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            hour: i64::MIN,
            admitted: HashSet::new(),
            per_key: HashMap::new(),
            per_tenant: HashMap::new(),
            claimed_kinds: 0,
            pending: HashMap::new(),
            rows: Vec::new(),
            dropped: 0,
        }
    }
}

impl Tally {
    /// Counts one use.
    pub fn add(&mut self, u: &Usage<'_>) {
        self.add_from(u, IpText::of(client_of(u.client)).as_str());
    }

    /// Counts one use from `client`, the text of `u`'s client (`client_of`) the caller has
    /// already written.
    pub(super) fn add_from(&mut self, u: &Usage<'_>, client: &str) {
        let bucket = u.at - u.at.rem_euclid(BUCKET);
        if bucket > self.hour {
            self.hour = bucket;
            self.admitted.clear();
            self.per_key.clear();
            self.per_tenant.clear();
            self.claimed_kinds = 0;
        }
        let key = u.key.stored();
        let mut origin = cut(u.origin.unwrap_or(""), MAX_ORIGIN);
        let mut reason = cut(u.code, MAX_REASON);
        let mut client = client;
        let mut h = hash_of(
            &self.hasher,
            bucket,
            key,
            u.action,
            u.outcome.as_str(),
            reason,
            client,
            origin,
        );
        // The common case first: this kind is already counting (so it was admitted this hour:
        // the bucket is part of the hash).
        if let Some(c) = self.pending.get_mut(&h) {
            seen(c, u.at);
            return;
        }
        if !self.admitted.contains(&h) {
            // A key's holder and those who only wrote its ID have separate shares.
            let claimed = matches!(u.key, Presented::Claimed(_));
            let kh = self.hasher.hash_one((key, claimed));
            let used = self.per_key.get(&kh).copied().unwrap_or(0);
            let share = match u.key {
                Presented::Known(_) => PER_KEY_KINDS,
                Presented::Claimed(_) => PER_CLAIMED_KINDS,
                Presented::Unknown(_) | Presented::None => PER_UNKNOWN_KINDS,
            };
            // Only a key's holder spends its tenant's share (anyone can present a key's ID).
            let tenant = match u.key {
                Presented::Known(_) => u.tenant.map(|t| self.hasher.hash_one(t)),
                _ => None,
            };
            let tenant_used = tenant
                .and_then(|t| self.per_tenant.get(&t).copied())
                .unwrap_or(0);
            let room = self.admitted.len() < MAX_KINDS
                && used < share
                && (used > 0 || self.per_key.len() < MAX_KINDS)
                && tenant_used < PER_TENANT_KINDS
                && (!claimed || self.claimed_kinds < MAX_CLAIMED_KINDS);
            if room {
                self.admitted.insert(h);
                self.per_key.insert(kh, used + 1);
                if let Some(t) = tenant {
                    self.per_tenant.insert(t, tenant_used + 1);
                }
                if claimed {
                    self.claimed_kinds += 1;
                }
            } else {
                client = OTHER;
                origin = OTHER;
                if matches!(u.key, Presented::Unknown(_) | Presented::None) {
                    reason = OTHER;
                }
                h = hash_of(
                    &self.hasher,
                    bucket,
                    key,
                    u.action,
                    u.outcome.as_str(),
                    reason,
                    client,
                    origin,
                );
            }
        }
        if let Some(c) = self.pending.get_mut(&h) {
            seen(c, u.at);
            return;
        }
        if self.pending.len() >= MAX_PENDING {
            self.dropped += 1;
            return;
        }
        self.insert(
            h,
            UsageCount {
                key_id: key.to_owned(),
                bucket,
                action: u.action.to_owned(),
                outcome: u.outcome.as_str().to_owned(),
                reason: reason.to_owned(),
                client: client.to_owned(),
                origin: origin.to_owned(),
                count: 1,
                first_seen: u.at,
                last_seen: u.at,
            },
        );
    }

    /// Starts counting a kind not pending yet, with the counts `row` carries.
    fn insert(&mut self, h: u64, mut row: UsageCount) {
        let counted = Counted {
            count: std::mem::take(&mut row.count),
            first_seen: row.first_seen,
            last_seen: row.last_seen,
            row: self.rows.len(),
        };
        self.rows.push(row);
        self.pending.insert(h, counted);
    }

    /// The counts since the last call, to be written.
    pub fn take(&mut self) -> Vec<UsageCount> {
        let mut rows = std::mem::take(&mut self.rows);
        for (_, c) in self.pending.drain() {
            // Every entry names its own row: `insert` pushes both together.
            if let Some(r) = rows.get_mut(c.row) {
                r.count = c.count;
                r.first_seen = c.first_seen;
                r.last_seen = c.last_seen;
            }
        }
        rows
    }

    /// Puts back counts the database did not take, adding to what came meanwhile (bounded like
    /// everything else pending).
    pub fn restore(&mut self, counts: Vec<UsageCount>) {
        for c in counts {
            let h = self.row_hash(&c);
            if let Some(p) = self.pending.get_mut(&h) {
                p.count += c.count;
                p.first_seen = p.first_seen.min(c.first_seen);
                p.last_seen = p.last_seen.max(c.last_seen);
            } else if self.pending.len() < MAX_PENDING {
                self.insert(h, c);
            } else {
                self.dropped += u64::try_from(c.count).unwrap_or(0);
            }
        }
    }

    /// Uses not counted in the database because it was down for too long, since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// Rows waiting.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn row_hash(&self, c: &UsageCount) -> u64 {
        hash_of(
            &self.hasher,
            c.bucket,
            &c.key_id,
            &c.action,
            &c.outcome,
            &c.reason,
            &c.client,
            &c.origin,
        )
    }
}

/// The numbers of one kind being counted; its text is `Tally::rows[row]`.
#[derive(Debug)]
struct Counted {
    count: i64,
    first_seen: i64,
    last_seen: i64,
    row: usize,
}

/// One more use of a kind already counting.
fn seen(c: &mut Counted, at: i64) {
    c.count += 1;
    c.first_seen = c.first_seen.min(at);
    c.last_seen = c.last_seen.max(at);
}

/// A kind's hash: SipHash with the tally's random key.
#[allow(clippy::too_many_arguments)]
fn hash_of(
    hasher: &RandomState,
    bucket: i64,
    key: &str,
    action: &str,
    outcome: &str,
    reason: &str,
    client: &str,
    origin: &str,
) -> u64 {
    hasher.hash_one((bucket, key, action, outcome, reason, client, origin))
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}
