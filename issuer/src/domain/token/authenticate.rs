//! Who is asking: the presented key parsed, looked up (once, then cached) and checked, every
//! failure counted against the client, and refusals audited.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use keymint_jwks::UnixTime;

use super::TokenService;
use super::active_key::ActiveKey;
use crate::domain::client::ClientContext;
use crate::domain::keys::api_key::{self, KeyKind};
use crate::domain::keys::limits::{KeyLimits, RateSetting, RateSpec};
use crate::domain::usage::{Outcome, Presented, Usage};
use crate::domain::{ClientFailure, DomainError, unix};
use crate::store::{KeyRecord, Store};

impl<S: Store> TokenService<S> {
    /// The key behind `credential` if it is well formed, known, its secret right, and it is
    /// active; each failure counts against the client IP, and a blocked IP is refused at once.
    pub(super) async fn authenticate(
        &self,
        credential: &str,
        ip: IpAddr,
        now: UnixTime,
        seen: &mut super::Seen,
    ) -> Result<(KeyKind, Arc<ActiveKey>), DomainError> {
        // The client's own block refuses it at once; its network's (see `throttle`) only keeps
        // it from the database below.
        if let Some(retry_after) = self.throttle.blocked_client(ip, self.ticker.now()) {
            return Err(DomainError::RateLimited { retry_after });
        }
        let presented = api_key::parse(credential).map_err(|e| match e {
            api_key::KeyFormatError::Checksum => self.failed(ip, ClientFailure::ChecksumMismatch),
            _ => self.failed(ip, ClientFailure::MalformedKey),
        })?;
        seen.presented = Some(presented.key_id.clone());
        let key = match self.keys.get(presented.key_id.as_str()) {
            Some(k) => k,
            None => {
                let id = presented.key_id.as_str();
                if self.unknown.get(id).is_some() {
                    return Err(self.failed(ip, ClientFailure::UnknownKey));
                }
                if let Some(retry_after) = self.throttle.blocked(ip, self.ticker.now()) {
                    return Err(DomainError::RateLimited { retry_after });
                }
                if !self.throttle.lookup_allowed(self.ticker.now()) {
                    // Under a spread-out guessing attack: cold keys wait, cached keys do not.
                    return Err(DomainError::RateLimited {
                        retry_after: Duration::from_secs(1),
                    });
                }
                let generation = self.keys.generation();
                let Some(record) = self.store.key(&presented.key_id).await? else {
                    self.unknown.insert(id.to_owned(), ());
                    // A key created while this read ran, its change already applied here: not
                    // remembered as unknown (the watcher's removal came before this insert).
                    if self.keys.generation() != generation {
                        self.unknown.remove(id);
                    }
                    return Err(self.failed(ip, ClientFailure::UnknownKey));
                };
                if ActiveKey::limited_per_client(&record) {
                    // A publishable key read for the first time may carry a scope made public
                    // moments ago, before the change watcher got to it: read the public set now
                    // (a key is read once, then cached), so a new key works at once.
                    self.reload_public_scopes().await?;
                }
                let k = Arc::new(ActiveKey::from_record(record, |r, spec| {
                    self.limits_for(r, spec)
                })?);
                self.keys.insert(&k, generation);
                k
            }
        };
        seen.key = Some(Arc::clone(&key));
        key.warm();
        seen.verified = self.hasher.verify(
            presented.key_id.as_str(),
            presented.secret.expose(),
            &key.secret_hash,
        );
        let refused = if !seen.verified {
            Some(ClientFailure::WrongSecret)
        } else if key.kind != presented.kind || key.env != presented.env {
            Some(ClientFailure::KindOrEnvMismatch)
        } else if key.revoked {
            Some(ClientFailure::RevokedKey)
        } else if key.expires_at <= unix(now) {
            Some(ClientFailure::ExpiredKey)
        } else {
            None
        };
        match refused {
            Some(reason) => Err(self.failed(ip, reason)),
            None => Ok((presented.kind, key)),
        }
    }

    /// The limiters for `record`: the ones already counting for this key if its limit has not
    /// changed, new ones otherwise.
    fn limits_for(&self, record: &KeyRecord, spec: RateSpec) -> Arc<KeyLimits> {
        let rate = RateSetting::Limit(spec);
        let per_client = ActiveKey::limited_per_client(record);
        if let Some(l) = self.limits.get(&record.key_id)
            && l.serve(rate, per_client)
        {
            return l;
        }
        let fresh = Arc::new(KeyLimits::new(rate, per_client, &self.ticker));
        self.limits
            .insert(record.key_id.clone(), Arc::clone(&fresh));
        fresh
    }

    /// If `ip`'s client (its address, its IPv6 /64) is blocked for failing too often, for how
    /// long still. A block of its wider network only keeps it from database lookups of keys (see
    /// `throttle`): the admin API and leak reports check what they are sent without one.
    pub fn blocked(&self, ip: IpAddr) -> Option<Duration> {
        self.throttle.blocked_client(ip, self.ticker.now())
    }

    /// A request refused before any key was looked at (no credentials, malformed Basic, a
    /// `client_id` that is not the key's, a key in the query string or sent in clear, a bad admin
    /// token): one audit line with the client's address and the reason, counted against the
    /// client like a wrong key. In the database it adds to a count (never a row a request), so a
    /// flood of such requests grows no table.
    ///
    /// `code` is a stable reason code (stored in the usage rollups, so never anything the client
    /// chose: a bogus admin token's `kid` or expiry time would make each refusal a row of its
    /// own); `detail` is for the log line, server-written words. Returns how long the client is
    /// now blocked, if it is.
    pub fn refuse_request(
        &self,
        action: &str,
        client: &ClientContext,
        code: &str,
        detail: &str,
        now: UnixTime,
    ) -> Option<Duration> {
        // A client already blocked is refused at once; its further refusals are not counted.
        let already = self.blocked(client.ip);
        self.note_refusal(action, client, code, detail, now);
        if already.is_some() {
            return already;
        }
        self.throttle.failed(client.ip, self.ticker.now());
        self.blocked(client.ip)
    }

    /// A refusal that is not a failed authentication (a valid admin token without the scope, a
    /// fault of the issuer's own): the same audit line and count as [`Self::refuse_request`],
    /// without counting against the client.
    pub fn note_refusal(
        &self,
        action: &str,
        client: &ClientContext,
        code: &str,
        detail: &str,
        now: UnixTime,
    ) {
        self.refusal(action, client, code, detail, now, true);
    }

    /// [`Self::note_refusal`] without the log line (counted in the rollups and the metric): for
    /// refusals so many that their lines are summed up instead.
    pub fn count_refusal(&self, action: &str, client: &ClientContext, code: &str, now: UnixTime) {
        self.refusal(action, client, code, code, now, false);
    }

    fn refusal(
        &self,
        action: &str,
        client: &ClientContext,
        code: &str,
        detail: &str,
        now: UnixTime,
        logged: bool,
    ) {
        let usage = Usage {
            at: unix(now),
            action,
            outcome: Outcome::Refused,
            code,
            reason: Some(detail),
            key: Presented::None,
            tenant: None,
            scopes: None,
            client: client.ip,
            origin: client.origin.as_deref(),
            issued: None,
        };
        if logged {
            self.uses.record(&usage);
        } else {
            self.uses.count(&usage);
        }
        metrics::counter!("keymint_requests_refused_total", "action" => action.to_owned())
            .increment(1);
    }

    /// An admin call refused after its token was accepted (a malformed body, a reserved scope,
    /// an unknown key, a conflict): an audit line naming the admin key, the client, the code and
    /// why, counted under the admin key; not a failed authentication.
    pub fn note_admin_refusal(
        &self,
        action: &str,
        client: &ClientContext,
        admin_key: &str,
        code: &str,
        reason: &str,
        now: UnixTime,
    ) {
        self.uses.record(&Usage {
            at: unix(now),
            action,
            outcome: Outcome::Refused,
            code,
            reason: Some(reason),
            key: Presented::Known(admin_key),
            tenant: None,
            scopes: None,
            client: client.ip,
            origin: client.origin.as_deref(),
            issued: None,
        });
        metrics::counter!("keymint_requests_refused_total", "action" => "admin.call").increment(1);
    }

    /// Counts a failed authentication against `ip` and says why it failed.
    pub(super) fn failed(&self, ip: IpAddr, reason: ClientFailure) -> DomainError {
        self.throttle.failed(ip, self.ticker.now());
        DomainError::InvalidClient { reason }
    }
}
