//! Telling a tenant's owner that one of its keys leaked: a signed call to the tenant's webhook,
//! queued in the database (so retries survive a restart), tried with exponential backoff a
//! bounded number of times, and never on the revocation's path (the key is revoked first, the
//! call queued after).
//!
//! The call is `POST <webhook_url>` with a JSON body ([`LeakEvent`]) and
//! `Keymint-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`; the receiver
//! recomputes it with the secret shown once when the webhook was set, and refuses an old `t`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use keymint_jwks::UnixTime;
use ring::hmac;
use ring::rand::SecureRandom as _;
use zeroize::Zeroizing;

use crate::domain::signing::secret_box::EncryptionKey;
use crate::domain::{DomainError, Fault, unix};
use crate::store::{Applied, Store, TenantPolicyRecord, WebhookDelivery};

/// How many finished (delivered or failed) calls are kept for inspection.
pub const KEEP_FINISHED: i64 = 10_000;
/// How long one attempt holds a call before another replica may try it, in attempt timeouts:
/// well beyond one, so that no replica takes a call another is still making.
const LEASE_TIMEOUTS: u32 = 6;
/// How long one attempt may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The most calls taken per round; a round's attempts run together, so a round takes at most one
/// [`TIMEOUT`] whatever the receivers do.
const BATCH: i64 = 16;
/// The most calls of one tenant taken per round: a tenant whose receiver never answers, with a
/// backlog of a thousand leaked keys, must not hold every other tenant's notices behind it (one
/// at a time, ten seconds each, that was hours).
pub const PER_TENANT: i64 = 2;

/// When attempts are made.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Wait after the first failure; doubled after each further one.
    pub base: Duration,
    /// The longest wait between two attempts.
    pub cap: Duration,
    /// Attempts before the call is given up (`failed`).
    pub max_attempts: i64,
    /// How often due calls are looked for.
    pub poll: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
}

impl Default for Schedule {
    /// 8 attempts: after 0, 2, 6, 14, 30, 62, 126 and 254 seconds (about 4 minutes in all).
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(3600),
            max_attempts: 8,
            poll: Duration::from_secs(1),
            timeout: TIMEOUT,
        }
    }
}

impl Schedule {
    /// The wait after `attempts` failed attempts.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        self.base.saturating_mul(1 << exp).min(self.cap)
    }
}

/// A webhook secret, shown once when the webhook is set. `Debug` is redacted.
pub struct WebhookSecret(Zeroizing<String>);

impl WebhookSecret {
    /// A fresh 256-bit secret: `kmwh_` and 43 base64url characters.
    pub fn generate() -> Result<Self, DomainError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        ring::rand::SystemRandom::new()
            .fill(&mut bytes[..])
            .map_err(|_| DomainError::Internal(Fault::new("no randomness for a webhook secret")))?;
        Ok(Self(Zeroizing::new(format!(
            "kmwh_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..])
        ))))
    }

    /// The secret, to show once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Sealed for the database, bound to `tenant`.
    pub fn seal(&self, enc: &EncryptionKey, tenant: &str) -> Result<Vec<u8>, DomainError> {
        enc.seal(&aad(tenant), self.0.as_bytes())
            .map_err(|e| DomainError::Internal(Fault::because("sealing a webhook secret", e)))
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

fn aad(tenant: &str) -> String {
    format!("webhook:{tenant}")
}

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &[u8], t: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", super::report::hex(tag.as_ref()))
}

/// What the owner is told.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LeakEvent<'a> {
    /// Always `key.leaked`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `revoked` or `flagged`.
    pub action: &'static str,
    /// The key (its ID; never the key).
    pub key_id: &'a str,
    /// Its tenant.
    pub tenant: &'a str,
    /// Where the scanner found it.
    pub found_at: &'a str,
    /// The scanner's `source` (`content`, `commit`, …).
    pub source: &'a str,
    /// When the report arrived (Unix seconds).
    pub reported_at: i64,
}

/// Queues the call for `event` if the tenant has a webhook. The revocation is already committed.
pub async fn enqueue<S: Store>(
    store: &S,
    policy: Option<&TenantPolicyRecord>,
    event: &LeakEvent<'_>,
    now: UnixTime,
) -> Result<(), DomainError> {
    let Some(url) = policy.and_then(|p| p.webhook_url.as_deref()) else {
        return Ok(());
    };
    let body = serde_json::to_string(event)
        .map_err(|e| DomainError::Internal(Fault::because("webhook body", e)))?;
    store
        .enqueue_webhook(&WebhookDelivery {
            id: 0,
            tenant: event.tenant.to_owned(),
            url: url.to_owned(),
            body,
            state: "pending".into(),
            attempts: 0,
            next_at: unix(now),
            created_at: unix(now),
            last_error: None,
        })
        .await?;
    Ok(())
}

/// Makes the calls that are due; one per replica, started by `serve`.
pub struct Deliverer<S> {
    store: Arc<S>,
    enc: Arc<EncryptionKey>,
    schedule: Schedule,
    agent: ureq::Agent,
}

impl<S: Store> Deliverer<S> {
    /// A deliverer over `store`, opening secrets with `enc`.
    pub fn new(store: Arc<S>, enc: Arc<EncryptionKey>, schedule: Schedule) -> Self {
        Self {
            store,
            enc,
            schedule,
            agent: ureq::AgentBuilder::new()
                .timeout(schedule.timeout)
                .redirects(0)
                .build(),
        }
    }

    /// Makes the calls due at `now` (one attempt each, all at once; at most 16, at most
    /// [`PER_TENANT`] of one tenant); how many were attempted.
    pub async fn run_once(&self, now: UnixTime) -> Result<usize, DomainError> {
        let now = unix(now);
        let due = self.store.due_webhooks(now, BATCH, PER_TENANT).await?;
        let lease = self.schedule.timeout.saturating_mul(LEASE_TIMEOUTS);
        let lease = now.saturating_add(i64::try_from(lease.as_secs()).unwrap_or(i64::MAX));
        let mut claimed = Vec::with_capacity(due.len());
        for mut d in due {
            if self.store.claim_webhook(d.id, d.next_at, lease).await? == Applied::Unchanged {
                continue; // another replica took it
            }
            d.attempts += 1;
            claimed.push(d);
        }
        let tried = claimed.len();
        let outcomes =
            futures_util::future::join_all(claimed.iter().map(|d| self.attempt(d, now))).await;
        for (mut d, outcome) in claimed.into_iter().zip(outcomes) {
            match outcome {
                Ok(()) => {
                    d.state = "delivered".into();
                    d.last_error = None;
                    tracing::info!(target: "keymint::audit", tenant = %d.tenant, delivery = d.id, attempts = d.attempts, "leak webhook delivered");
                }
                Err(why) if d.attempts >= self.schedule.max_attempts => {
                    tracing::warn!(target: "keymint::audit", tenant = %d.tenant, delivery = d.id, attempts = d.attempts, error = %why, "leak webhook given up");
                    d.state = "failed".into();
                    d.last_error = Some(why);
                }
                Err(why) => {
                    let wait = self.schedule.backoff(d.attempts);
                    d.next_at =
                        now.saturating_add(i64::try_from(wait.as_secs()).unwrap_or(i64::MAX));
                    tracing::info!(tenant = %d.tenant, delivery = d.id, attempts = d.attempts, retry_in = wait.as_secs(), error = %why, "leak webhook failed; will retry");
                    d.last_error = Some(why);
                }
            }
            self.store.finish_webhook(&d, KEEP_FINISHED).await?;
        }
        Ok(tried)
    }

    async fn attempt(&self, d: &WebhookDelivery, now: i64) -> Result<(), String> {
        let policy = self
            .store
            .tenant_policy(&d.tenant)
            .await
            .map_err(|e| e.to_string())?;
        let sealed = policy
            .and_then(|p| p.webhook_secret)
            .ok_or("the tenant's webhook was removed")?;
        let secret = self
            .enc
            .open(&aad(&d.tenant), &sealed)
            .map_err(|_| "the webhook secret does not open with this encryption key")?;
        let sig = signature(&secret, now, &d.body);
        let (agent, url, body, id) = (self.agent.clone(), d.url.clone(), d.body.clone(), d.id);
        tokio::task::spawn_blocking(move || {
            agent
                .post(&url)
                .set("Content-Type", "application/json")
                .set("Keymint-Signature", &sig)
                .set("Keymint-Delivery", &id.to_string())
                .send_string(&body)
                .map(|_| ())
                .map_err(|e| match e {
                    ureq::Error::Status(code, _) => format!("answered {code}"),
                    other => other.kind().to_string(),
                })
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Polls for due calls until `stop` resolves.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            #[allow(clippy::disallowed_methods)] // the background task is an edge
            let now = UnixTime::now();
            if let Err(e) = self.run_once(now).await {
                tracing::warn!(error = %e, "cannot run the leak webhooks");
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.schedule.poll) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let s = Schedule::default();
        let waits: Vec<u64> = (1..=8).map(|n| s.backoff(n).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256]);
        assert_eq!(s.backoff(40), s.cap);
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_time_dot_body() {
        // RFC 4231 is over raw messages; this pins the framing with a known value.
        let sig = signature(b"key", 1, "{}");
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"key");
        let want = super::super::report::hex(hmac::sign(&key, b"1.{}").as_ref());
        assert_eq!(sig, format!("t=1,v1={want}"));
        assert!(!format!("{:?}", WebhookSecret::generate().unwrap()).contains("kmwh_"));
    }
}
