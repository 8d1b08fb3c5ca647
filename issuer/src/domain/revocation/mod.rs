//! Revocations and the signed revocation list.

use std::time::Duration;

use keymint_jwks::{
    ApiKeyId, Issuer, Jti, LIST_VERSION, PROPAGATION_BOUND, RevocationEntry, RevocationList,
    RevocationTarget, Signer, TenantId, UnixTime, jws,
};
use keymint_verifier::MAX_LEEWAY;

use crate::domain::refusal::{ConflictReason, InvalidInput, Missing};
use crate::domain::unix;
use crate::domain::{DomainError, Fault};
use crate::store::{
    Applied, AuditRecord, RevocationRecord, SigningKeyState, Store, StoreError, StoredList,
};

/// The list a server serves, and a way to wait for the next one (the push channel).
#[derive(Debug, Clone)]
pub struct ListFeed {
    tx: std::sync::Arc<tokio::sync::watch::Sender<std::sync::Arc<StoredList>>>,
    closed: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
}

impl ListFeed {
    /// A feed starting with `first`.
    pub fn new(first: StoredList) -> Self {
        Self {
            tx: std::sync::Arc::new(tokio::sync::watch::channel(std::sync::Arc::new(first)).0),
            closed: std::sync::Arc::new(tokio::sync::watch::channel(false).0),
        }
    }

    /// The list in force.
    pub fn current(&self) -> std::sync::Arc<StoredList> {
        std::sync::Arc::clone(&self.tx.borrow())
    }

    /// Publishes a list if its serial is newer; returns whether it was.
    pub fn publish(&self, list: StoredList) -> bool {
        self.tx.send_if_modified(|cur| {
            if list.serial > cur.serial {
                *cur = std::sync::Arc::new(list);
                true
            } else {
                false
            }
        })
    }

    /// A receiver that wakes on every new list.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<std::sync::Arc<StoredList>> {
        self.tx.subscribe()
    }

    /// A receiver that turns `true` when the server shuts down, so that push streams end.
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closed.subscribe()
    }

    /// Ends every push stream.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }
}

/// Default validity of a signed list.
pub const DEFAULT_LIST_VALIDITY: Duration = Duration::from_secs(24 * 3600);

/// When an entry revoked at `revoked_at` can no longer matter: the propagation bound, the longest
/// token lifetime in force and the verifiers' largest leeway later.
pub fn drop_after(revoked_at: UnixTime, max_token_ttl: Duration) -> UnixTime {
    revoked_at
        .saturating_add(PROPAGATION_BOUND)
        .saturating_add(max_token_ttl)
        .saturating_add(MAX_LEEWAY)
}

/// The setting where every server records the longest token lifetime it was ever started with.
pub const TTL_HIGH_WATER: &str = "max_token_ttl_high";

/// How long an entry stays stored after its `drop_after`, though no list carries it any more: a
/// replica whose clock is behind still signs it into its lists until its own clock gets there.
pub const KEEP_DROPPED: Duration = Duration::from_secs(24 * 3600);

/// Deletes the entries dropped from the list more than [`KEEP_DROPPED`] before `now`, in batches;
/// how many went. Without it the table kept every revocation ever made (every token and tenant
/// revocation, one row per key of a revoked tenant), and signing a list read past all of them.
pub async fn prune_dropped<S: Store>(store: &S, now: UnixTime) -> Result<u64, DomainError> {
    let keep = i64::try_from(KEEP_DROPPED.as_secs()).unwrap_or(i64::MAX);
    let before = unix(now).saturating_sub(keep);
    crate::domain::usage::in_batches(crate::domain::usage::PRUNE_BATCH, || {
        store.prune_revocations(before, crate::domain::usage::PRUNE_BATCH)
    })
    .await
}

/// Raises the recorded longest token lifetime any server on this database may issue to `own`
/// (at `serve` start).
pub async fn note_token_ttl<S: Store>(store: &S, own: Duration) -> Result<(), DomainError> {
    let high = token_ttl_high(store).await?;
    if own > high {
        store
            .set_setting(TTL_HIGH_WATER, &own.as_secs().to_string())
            .await?;
    }
    Ok(())
}

async fn token_ttl_high<S: Store>(store: &S) -> Result<Duration, DomainError> {
    Ok(store
        .setting(TTL_HIGH_WATER)
        .await?
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_secs))
}

/// How long a revocation entry must cover tokens for: the longest lifetime *any* replica may have
/// given a token (the high-water mark every server records at start), not only `own`, the
/// revoking process's. An entry dropped too early would let a longer-lived token of another
/// replica come back to life.
pub async fn covered_ttl<S: Store>(store: &S, own: Duration) -> Result<Duration, DomainError> {
    Ok(own.max(token_ttl_high(store).await?))
}

/// The entry for `target`, revoked `now`.
pub(crate) fn record(
    target: RevocationTarget,
    now: UnixTime,
    max_token_ttl: Duration,
) -> RevocationRecord {
    RevocationRecord {
        target,
        revoked_at: unix(now),
        drop_after: unix(drop_after(now, max_token_ttl)),
    }
}

fn admin_audit(action: &str, actor: crate::domain::audit::Actor<'_>, now: UnixTime) -> AuditRecord {
    actor.stamp(AuditRecord {
        at: unix(now),
        action: action.into(),
        outcome: "ok".into(),
        ..AuditRecord::default()
    })
}

/// Revokes one API key: the issuer refuses it from now on and every token it minted is listed.
pub async fn revoke_key<S: Store>(
    store: &S,
    key_id: &ApiKeyId,
    now: UnixTime,
    max_token_ttl: Duration,
    actor: impl Into<crate::domain::audit::Actor<'_>>,
) -> Result<(), DomainError> {
    let key = store
        .key(key_id)
        .await?
        .ok_or_else(|| DomainError::NotFound(Missing::Key(key_id.clone())))?;
    let mut audit = admin_audit("key.revoke", actor.into(), now);
    audit.key_id = Some(key_id.to_string());
    audit.tenant = Some(key.tenant.clone());
    let entry = record(RevocationTarget::Key(key_id.clone()), now, max_token_ttl);
    if store.revoke_key(key_id, &entry, &audit).await? == Applied::Unchanged {
        return Err(DomainError::Conflict(ConflictReason::AlreadyRevoked(
            key_id.clone(),
        )));
    }
    crate::domain::audit::log(&audit);
    Ok(())
}

/// Revokes one token by `jti`.
pub async fn revoke_token<S: Store>(
    store: &S,
    jti: &Jti,
    now: UnixTime,
    max_token_ttl: Duration,
    actor: impl Into<crate::domain::audit::Actor<'_>>,
) -> Result<(), DomainError> {
    let mut audit = admin_audit("token.revoke", actor.into(), now);
    audit.detail = Some(format!("jti={jti}"));
    // Revoking a token twice is no error: the entry only lives on to the later drop time.
    let _added = store
        .add_revocation(
            &record(RevocationTarget::Jti(jti.clone()), now, max_token_ttl),
            &audit,
        )
        .await?;
    crate::domain::audit::log(&audit);
    Ok(())
}

/// Revokes a whole tenant: all its keys, and every token of it issued before now plus the
/// propagation bound. Returns how many keys were revoked.
pub async fn revoke_tenant<S: Store>(
    store: &S,
    tenant: &TenantId,
    now: UnixTime,
    max_token_ttl: Duration,
    actor: impl Into<crate::domain::audit::Actor<'_>>,
) -> Result<u64, DomainError> {
    if tenant.as_str() == crate::domain::reserved::ADMIN_TENANT {
        return Err(DomainError::Invalid(InvalidInput::AdminTenantRevocation));
    }
    let mut audit = admin_audit("tenant.revoke", actor.into(), now);
    audit.tenant = Some(tenant.to_string());
    let n = store
        .revoke_tenant(
            tenant,
            &record(RevocationTarget::Tenant(tenant.clone()), now, max_token_ttl),
            &audit,
        )
        .await?;
    crate::domain::audit::log(&audit);
    Ok(n)
}

fn entry_from(r: &RevocationRecord) -> RevocationEntry {
    RevocationEntry {
        target: r.target.clone(),
        revoked_at: UnixTime(u64::try_from(r.revoked_at).unwrap_or(0)),
        drop_after: UnixTime(u64::try_from(r.drop_after).unwrap_or(0)),
    }
}

/// The list to serve now: the newest stored one if it reflects every revocation, is younger than
/// a third of its validity and was signed by `signer`, otherwise a freshly signed one with the next
/// serial.
///
/// The signer check matters when the active key is revoked: a task that loaded the signing set
/// before the revocation may sign the list that revokes it with that very key, which is already out
/// of the JWKS; no verifier could apply that list, so the next call with the new signer replaces it.
///
/// Several processes may race here; a list is stored only if the newest stored one is still the
/// one it was made to follow, so of processes racing from one list one wins and the losers serve
/// the winner's bytes.
pub async fn current_list<S: Store>(
    store: &S,
    signer: &Signer,
    issuer: &Issuer,
    now: UnixTime,
    validity: Duration,
) -> Result<StoredList, DomainError> {
    let latest = store.latest_list().await?;
    let t = unix(now);
    if let Some(l) = &latest {
        let refresh = i64::try_from(validity.as_secs() / 3).unwrap_or(i64::MAX);
        let fresh = t < l.iat.saturating_add(refresh) && t >= l.iat;
        if fresh
            && signed_by(l, signer)
            && issued_by(l, issuer)
            && !store.list_changed_since(l.as_of).await?
        {
            return Ok(l.clone());
        }
    }
    if !in_force(store, signer).await? {
        // A signer loaded before a rotation or an emergency revocation must not sign: its key has
        // left (or is leaving) the JWKS, so nobody could apply the list. Whoever holds it reloads
        // the signing set within a poll and signs then; until that, the stored list stands.
        tracing::debug!(kid = %signer.key().kid(), "not signing the list with a key no longer in force");
        return latest.ok_or_else(|| {
            DomainError::Internal(Fault::new(
                "no revocation list and the signing key is not in force",
            ))
        });
    }
    let as_of = store.last_change().await?;
    let entries = store.revocations(t).await?.iter().map(entry_from).collect();
    let serial = next_serial(latest.as_ref().map(|l| l.serial), t);
    let list = RevocationList {
        v: LIST_VERSION,
        iss: issuer.clone(),
        serial: u64::try_from(serial).unwrap_or(1),
        iat: now,
        exp: now.saturating_add(validity),
        entries,
    };
    let signed = signer
        .sign_revocation_list(&list)
        .map_err(|e| DomainError::Internal(Fault::because("signing the revocation list", e)))?;
    let stored = StoredList {
        serial,
        jws: signed.jws().to_owned(),
        iat: t,
        exp: unix(list.exp),
        as_of,
    };
    match store
        .insert_list(&stored, latest.as_ref().map(|l| l.serial))
        .await
    {
        Ok(()) => Ok(stored),
        Err(StoreError::Conflict) => store
            .latest_list()
            .await?
            .ok_or_else(|| DomainError::Internal(Fault::new("revocation list vanished"))),
        Err(e) => Err(e.into()),
    }
}

/// The serial of the list signed at `t` after the stored `latest`: one more, and never below the
/// signing time in milliseconds. A database restored from a backup (or moved back from Postgres
/// to an older SQLite file) holds an older serial than the lists verifiers have already seen;
/// counting on from it, every new list would be refused as a rollback until the serial caught up,
/// and the revocations in it ignored meanwhile. Time moves on between the last list served and the
/// restore, so the first list after it is above any served before. (More than a thousand lists a
/// second would outrun the clock; the issuer signs one per change, at most a few a second.)
pub(crate) fn next_serial(latest: Option<i64>, t: i64) -> i64 {
    let after = latest.map_or(1, |s| s.saturating_add(1));
    after.max(t.saturating_mul(1000))
}

/// Whether `signer` is still an active signing key in `store`.
async fn in_force<S: Store>(store: &S, signer: &Signer) -> Result<bool, DomainError> {
    let kid = signer.key().kid();
    Ok(store
        .signing_keys()
        .await?
        .iter()
        .any(|k| k.kid == *kid && k.state == SigningKeyState::Active))
}

/// Whether `list` was signed under `issuer`. After an admin changed the issuer URL, the stored
/// list names the old one, and verifiers configured for the new one refuse it: it is replaced at
/// once rather than when it would have been refreshed anyway. (A replica that has not adopted the
/// change yet may sign one more under the old URL; the others replace it in their next round.)
fn issued_by(list: &StoredList, issuer: &Issuer) -> bool {
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: String,
    }
    jws::Compact::split(&list.jws, usize::MAX)
        .ok()
        .and_then(|c| c.decode_payload().ok())
        .and_then(|p| serde_json::from_slice::<Iss>(&p).ok())
        .is_some_and(|p| p.iss == issuer.as_str())
}

/// Whether `list` carries `signer`'s key ID.
fn signed_by(list: &StoredList, signer: &Signer) -> bool {
    jws::Compact::split(&list.jws, usize::MAX)
        .and_then(|c| c.decode_header())
        .is_ok_and(|h| h.kid.as_deref() == Some(signer.key().kid().as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_after_covers_propagation_lifetime_and_leeway() {
        let t = drop_after(UnixTime(1000), Duration::from_secs(3600));
        assert_eq!(t, UnixTime(1000 + 5 + 3600 + 300));
    }

    #[test]
    fn a_list_after_a_restored_backup_is_above_every_list_served_before() {
        let t = 1_800_000_000;
        // The first list, and two in the same second.
        assert_eq!(next_serial(None, t), t * 1000);
        assert_eq!(next_serial(Some(t * 1000), t), t * 1000 + 1);
        // A database stored before the serials followed the clock moves up to it.
        assert_eq!(next_serial(Some(41), t), t * 1000);
        // Served: lists up to an hour after the backup was taken at t. Restored two minutes
        // later, the database holds the backup's serial; the next list is above all of them.
        let served = next_serial(Some(t * 1000), t + 3600);
        let restored = next_serial(Some(t * 1000), t + 3600 + 120);
        assert!(restored > served, "{restored} <= {served}");
        // A clock set back never lowers it.
        assert_eq!(next_serial(Some(served), t - 60), served + 1);
        assert_eq!(next_serial(Some(i64::MAX), t), i64::MAX);
    }

    #[tokio::test]
    async fn a_list_signed_under_another_issuer_is_replaced() {
        let dir = std::env::temp_dir().join(format!("keymint-list-iss-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = crate::store::SqliteStore::open(&dir.join("db"))
            .await
            .unwrap();
        let enc = crate::domain::signing::secret_box::EncryptionKey::new(&zeroize::Zeroizing::new(
            [7; 32],
        ))
        .unwrap();
        let now = UnixTime(1_700_000_000);
        crate::domain::signing::ensure_active(&store, &enc, now)
            .await
            .unwrap();
        let signer = crate::domain::signing::load(&store, &enc)
            .await
            .unwrap()
            .active;
        let day = Duration::from_secs(86_400);
        let old = Issuer::new("http://127.0.0.1:8080").unwrap();
        let new = Issuer::new("https://issuer.example").unwrap();
        let first = current_list(&store, &signer, &old, now, day).await.unwrap();
        let same = current_list(&store, &signer, &old, now, day).await.unwrap();
        assert_eq!(same.serial, first.serial, "a fresh list is kept");
        let moved = current_list(&store, &signer, &new, now, day).await.unwrap();
        assert_eq!(moved.serial, first.serial + 1);
        assert!(issued_by(&moved, &new) && !issued_by(&first, &new));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The table kept every entry ever made. Entries dropped from the list more than a day ago
    /// are deleted; one dropped less than a day ago, or still listed, stays.
    #[tokio::test]
    async fn entries_dropped_from_the_list_over_a_day_ago_are_pruned() {
        use crate::store::{AuditRecord, RevocationRecord};
        let dir = std::env::temp_dir().join(format!("keymint-rev-prune-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = crate::store::SqliteStore::open(&dir.join("db"))
            .await
            .unwrap();
        const NOW: i64 = 1_800_000_000;
        const DAY: i64 = 86_400;
        // Dropped a day and a second ago, exactly a day ago, an hour ago; still listed.
        let ends = [NOW - DAY - 1, NOW - DAY, NOW - 3600, NOW + 3600];
        for (n, drop_after) in ends.into_iter().enumerate() {
            let entry = RevocationRecord {
                target: keymint_jwks::RevocationTarget::Jti(Jti::new(format!("jti{n}")).unwrap()),
                revoked_at: drop_after - 4000,
                drop_after,
            };
            let audit = AuditRecord {
                at: entry.revoked_at,
                action: "revocation.add".into(),
                outcome: "ok".into(),
                ..AuditRecord::default()
            };
            let _added = store.add_revocation(&entry, &audit).await.unwrap();
        }
        assert_eq!(
            prune_dropped(&store, UnixTime(NOW.unsigned_abs()))
                .await
                .unwrap(),
            1
        );
        let left: Vec<i64> = store
            .revocations(i64::MIN)
            .await
            .unwrap()
            .iter()
            .map(|r| r.drop_after)
            .collect();
        assert_eq!(left, vec![NOW - DAY, NOW - 3600, NOW + 3600]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Issue #13: a replica started with `--max-token-ttl 1h` revoking a key made entries that
    /// left the list while a replica with `--max-token-ttl 2h` could still have live tokens.
    #[tokio::test]
    async fn entries_cover_the_longest_lifetime_any_server_was_started_with() {
        let dir = std::env::temp_dir().join(format!("keymint-ttl-high-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = crate::store::SqliteStore::open(&dir.join("db"))
            .await
            .unwrap();
        let hour = Duration::from_secs(3600);
        assert_eq!(covered_ttl(&store, hour).await.unwrap(), hour);
        note_token_ttl(&store, 2 * hour).await.unwrap();
        // A later, shorter-lived start does not lower the mark.
        note_token_ttl(&store, hour).await.unwrap();
        assert_eq!(covered_ttl(&store, hour).await.unwrap(), 2 * hour);
        assert_eq!(covered_ttl(&store, 3 * hour).await.unwrap(), 3 * hour);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
