//! Signing keys: generation, encryption at rest, and the rotation lifecycle
//! *next* (published, not signing) → *active* (signing) → *retired* (published until every token it
//! signed has expired) → removed.
//!
//! A rotation publishes the new key as *next* and promotes it only once the JWKS cache period has
//! passed, so a verifier that refreshes on that period has the new key before it meets a token
//! signed by it.
//!
//! A *next* key is always published: besides the one a rotation schedules, a *standby* next key
//! ([`STANDBY`]) waits, never promoted by the clock, for an emergency revocation of the active
//! key to hand signing to it at once. Every verifier already holds it, so the list that revokes the
//! compromised key, and the tokens signed after it, verify everywhere without a key-set refetch.
//! Once it has taken over, a new standby is generated.

pub mod secret_box;

use std::sync::Arc;
use std::time::Duration;

use keymint_jwks::{Algorithm, Jwk, Jwks, Kid, RevocationTarget, Signer, SigningKey, UnixTime};
use ring::digest;

use crate::domain::refusal::{ConflictReason, Missing};
use crate::domain::signing::secret_box::EncryptionKey;
use crate::domain::unix;
use crate::domain::{DomainError, Fault};
use crate::store::{Applied, AuditRecord, SigningKeyRecord, SigningKeyState, Store, Successor};

/// What the running server signs and publishes, swapped as a whole.
#[derive(Debug)]
pub struct SigningSet {
    /// The key that signs now.
    pub active: Signer,
    /// Next, active and retired keys: what `/.well-known/jwks.json` serves.
    pub published: Jwks,
    /// `published` as JSON, ready to serve.
    pub jwks_json: Arc<str>,
    /// A strong ETag for `jwks_json`.
    pub etag: Arc<str>,
    /// Every key's record, for `signing-keys list`.
    pub records: Vec<SigningKeyRecord>,
}

fn new_record(
    enc: &EncryptionKey,
    alg: Algorithm,
    state: SigningKeyState,
    now: i64,
    activate_at: i64,
) -> Result<SigningKeyRecord, DomainError> {
    let key = SigningKey::generate(alg)
        .map_err(|e| DomainError::Internal(Fault::because("generating a signing key", e)))?;
    let kid = key.kid().clone();
    let encrypted = enc
        .seal(kid.as_str(), key.pkcs8_der())
        .map_err(|e| DomainError::Internal(Fault::because("sealing a signing key", e)))?;
    Ok(SigningKeyRecord {
        kid,
        alg: alg.as_str().to_owned(),
        encrypted_pkcs8: encrypted,
        public_jwk: key.public_jwk().to_json_value().to_string(),
        state,
        created_at: now,
        activate_at,
        retired_at: None,
        remove_after: None,
        revoked_at: None,
    })
}

/// The `activate_at` of a standby *next* key: published, but promoted only by an emergency
/// revocation of the active key (or never), not by the clock.
pub const STANDBY: i64 = i64::MAX;

/// Makes sure there is a key to sign with, and a *next* key published behind it: on first start,
/// generates one that is active at once (no verifier can have cached anything yet) and a standby.
pub async fn ensure_active<S: Store>(
    store: &S,
    enc: &EncryptionKey,
    now: UnixTime,
) -> Result<(), DomainError> {
    let keys = store.signing_keys().await?;
    if !keys
        .iter()
        .any(|k| matches!(k.state, SigningKeyState::Active | SigningKeyState::Next))
    {
        first_key(store, enc, now).await?;
    }
    ensure_next(store, enc, now).await?;
    Ok(())
}

async fn first_key<S: Store>(
    store: &S,
    enc: &EncryptionKey,
    now: UnixTime,
) -> Result<(), DomainError> {
    let now = unix(now);
    let rec = new_record(enc, Algorithm::EdDsa, SigningKeyState::Active, now, now)?;
    let audit = AuditRecord {
        at: now,
        action: "signing_key.create".into(),
        outcome: "ok".into(),
        detail: Some(format!("kid={} state=active (first key)", rec.kid)),
        ..AuditRecord::default()
    };
    match store.insert_signing_key(&rec, Some(&audit)).await {
        Ok(()) => {
            crate::domain::audit::log(&audit);
            Ok(())
        }
        // Two processes raced on first start; either key is fine.
        Err(crate::store::StoreError::Conflict) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Keeps a *next* key published: if there is none, generates a standby one ([`STANDBY`]) with the
/// active key's algorithm (verifiers that only have P-256 keep working after an emergency).
/// Returns whether it generated one. Several processes may race here; two standbys are harmless.
pub async fn ensure_next<S: Store>(
    store: &S,
    enc: &EncryptionKey,
    now: UnixTime,
) -> Result<bool, DomainError> {
    let keys = store.signing_keys().await?;
    if keys.iter().any(|k| k.state == SigningKeyState::Next) {
        return Ok(false);
    }
    let alg = keys
        .iter()
        .filter(|k| k.state == SigningKeyState::Active)
        .max_by_key(|k| k.activate_at)
        .and_then(|k| Algorithm::from_name(&k.alg))
        .unwrap_or(Algorithm::EdDsa);
    let t = unix(now);
    let rec = new_record(enc, alg, SigningKeyState::Next, t, STANDBY)?;
    let audit = AuditRecord {
        at: t,
        action: "signing_key.create".into(),
        outcome: "ok".into(),
        detail: Some(format!("kid={} state=next (standby successor)", rec.kid)),
        ..AuditRecord::default()
    };
    match store.insert_signing_key(&rec, Some(&audit)).await {
        Ok(()) => {
            crate::domain::audit::log(&audit);
            Ok(true)
        }
        Err(crate::store::StoreError::Conflict) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// How long after `jwks_max_age` a *next* key starts signing: rotation times are whole seconds
/// (up to 1 s early), and a replica publishes the new key when it next polls the change feed
/// (200 ms) — so a verifier that refreshes on the JWKS cache period has the key before it signs.
pub const ACTIVATION_MARGIN: Duration = Duration::from_secs(2);

/// Starts a rotation: a new key is published as *next* and becomes active once `jwks_max_age`
/// plus [`ACTIVATION_MARGIN`] has passed.
pub async fn rotate<S: Store>(
    store: &S,
    enc: &EncryptionKey,
    alg: Algorithm,
    now: UnixTime,
    jwks_max_age: Duration,
    actor: impl Into<crate::domain::audit::Actor<'_>>,
) -> Result<SigningKeyRecord, DomainError> {
    let keys = store.signing_keys().await?;
    // The standby is no rotation: it stays behind, for emergencies.
    if let Some(next) = keys
        .iter()
        .find(|k| k.state == SigningKeyState::Next && k.activate_at != STANDBY)
    {
        return Err(DomainError::Conflict(ConflictReason::RotationInProgress {
            next: next.kid.clone(),
            activate_at: next.activate_at,
        }));
    }
    let t = unix(now);
    let wait = jwks_max_age.saturating_add(ACTIVATION_MARGIN);
    let activate_at = t.saturating_add(i64::try_from(wait.as_secs()).unwrap_or(i64::MAX));
    let rec = new_record(enc, alg, SigningKeyState::Next, t, activate_at)?;
    let audit = actor.into().stamp(AuditRecord {
        at: t,
        action: "signing_key.rotate".into(),
        outcome: "ok".into(),
        detail: Some(format!(
            "kid={} state=next activate_at={activate_at}",
            rec.kid
        )),
        ..AuditRecord::default()
    });
    store.insert_signing_key(&rec, Some(&audit)).await?;
    crate::domain::audit::log(&audit);
    Ok(rec)
}

/// Advances the lifecycle: promotes a *next* key whose time has come (retiring the active one
/// until every token it signed has expired), removes retired keys past that, and generates a
/// standby *next* key if none is published. Idempotent and safe to run from several processes:
/// each transition is conditional on the state it leaves.
///
/// A retired key stays published for the longest token lifetime any server on this database was
/// ever started with (the high-water mark revocation entries use too), not only `max_token_ttl`,
/// this server's: after `settings set max-token-ttl` lowers it, tokens minted under the old
/// maximum are still alive, and their key must stay in the JWKS until they expire.
pub async fn maintain<S: Store>(
    store: &S,
    enc: &EncryptionKey,
    now: UnixTime,
    max_token_ttl: Duration,
) -> Result<bool, DomainError> {
    let t = unix(now);
    let keys = store.signing_keys().await?;
    let mut changed = false;
    let due = keys
        .iter()
        .filter(|k| k.state == SigningKeyState::Next && k.activate_at <= t)
        .max_by_key(|k| k.activate_at);
    if let Some(next) = due {
        let covered = crate::domain::revocation::covered_ttl(store, max_token_ttl).await?;
        let remove_after = unix(crate::domain::revocation::drop_after(now, covered));
        for old in keys.iter().filter(|k| k.state == SigningKeyState::Active) {
            changed |= store
                .transition_signing_key(
                    &old.kid,
                    SigningKeyState::Active,
                    SigningKeyState::Retired,
                    t,
                    Some(remove_after),
                    None,
                )
                .await?
                .changed();
        }
        let audit = AuditRecord {
            at: t,
            action: "signing_key.activate".into(),
            outcome: "ok".into(),
            detail: Some(format!("kid={}", next.kid)),
            ..AuditRecord::default()
        };
        if store
            .transition_signing_key(
                &next.kid,
                SigningKeyState::Next,
                SigningKeyState::Active,
                t,
                None,
                Some(&audit),
            )
            .await?
            .changed()
        {
            crate::domain::audit::log(&audit);
            changed = true;
        }
    }
    for old in keys
        .iter()
        .filter(|k| k.state == SigningKeyState::Retired && k.remove_after.is_some_and(|r| r <= t))
    {
        changed |= store
            .transition_signing_key(
                &old.kid,
                SigningKeyState::Retired,
                SigningKeyState::Removed,
                t,
                None,
                None,
            )
            .await?
            .changed();
    }
    changed |= ensure_next(store, enc, now).await?;
    Ok(changed)
}

/// Loads and decrypts the current signing set.
pub async fn load<S: Store>(store: &S, enc: &EncryptionKey) -> Result<SigningSet, DomainError> {
    let records = store.signing_keys().await?;
    let mut published = Vec::new();
    let mut active: Option<&SigningKeyRecord> = None;
    for r in &records {
        match r.state {
            SigningKeyState::Next | SigningKeyState::Retired => {}
            SigningKeyState::Active => {
                // Two actives can only be a transient race; the newest wins.
                if active.is_none_or(|a| a.activate_at <= r.activate_at) {
                    active = Some(r);
                }
            }
            SigningKeyState::Removed | SigningKeyState::Revoked => continue,
        }
        let jwk = Jwk::from_json(r.public_jwk.as_bytes()).map_err(|e| {
            DomainError::Internal(Fault::because(format!("stored JWK {}", r.kid), e))
        })?;
        published.push(jwk);
    }
    let active =
        active.ok_or_else(|| DomainError::Internal(Fault::new("no active signing key")))?;
    let alg = Algorithm::from_name(&active.alg).ok_or_else(|| {
        DomainError::Internal(Fault::new(format!("unknown algorithm {}", active.alg)))
    })?;
    let pkcs8 = enc.open(active.kid.as_str(), &active.encrypted_pkcs8).map_err(|e| {
        DomainError::Internal(Fault::because(
            format!(
                "cannot decrypt signing key {} (is KEYMINT_ENCRYPTION_KEY the one it was created with?)",
                active.kid
            ),
            e,
        ))
    })?;
    let key = SigningKey::from_pkcs8(alg, &pkcs8)
        .map_err(|e| DomainError::Internal(Fault::because("opening a stored signing key", e)))?;
    if *key.kid() != active.kid {
        return Err(DomainError::Internal(Fault::new(format!(
            "signing key {} does not match its kid",
            active.kid
        ))));
    }
    let published = Jwks::new(published)
        .map_err(|e| DomainError::Internal(Fault::because("the published key set", e)))?;
    let jwks_json: Arc<str> = published.to_json().into();
    let hash = digest::digest(&digest::SHA256, jwks_json.as_bytes());
    let etag = format!(
        "\"{}\"",
        keymint_jwks::jws::encode_segment(hash.as_ref().get(..16).unwrap_or_default())
    );
    Ok(SigningSet {
        active: Signer::new(key),
        published,
        jwks_json,
        etag: etag.into(),
        records,
    })
}

/// Emergency revocation of a compromised signing key: it leaves the JWKS at once, its private key is
/// destroyed, and a `kid` entry makes verifiers drop every token it signed. If it was the active
/// key, the *next* key published longest takes over at once (every verifier already holds it), or,
/// should there be none, a fresh key is generated and signs at once (verifiers fetch it when the
/// list or a token names it). Then a new standby *next* key is published.
pub async fn revoke<S: Store>(
    store: &S,
    enc: &EncryptionKey,
    kid: &Kid,
    now: UnixTime,
    max_token_ttl: Duration,
    actor: impl Into<crate::domain::audit::Actor<'_>>,
) -> Result<(), DomainError> {
    let keys = store.signing_keys().await?;
    let key = keys
        .iter()
        .find(|k| k.kid == *kid)
        .ok_or_else(|| DomainError::NotFound(Missing::SigningKey(kid.clone())))?;
    if matches!(
        key.state,
        SigningKeyState::Revoked | SigningKeyState::Removed
    ) {
        return Err(DomainError::Conflict(ConflictReason::SigningKeyGone {
            kid: kid.clone(),
            state: key.state.as_str(),
        }));
    }
    let t = unix(now);
    // An active key hands over in the revocation's own transaction: to the published next key,
    // or else to a new one.
    let fresh;
    let successor = if key.state == SigningKeyState::Active {
        match keys
            .iter()
            .filter(|k| k.state == SigningKeyState::Next)
            .min_by_key(|k| (k.created_at, k.kid.clone()))
        {
            Some(next) => Some(Successor::Promote(&next.kid)),
            None => {
                fresh = new_record(enc, Algorithm::EdDsa, SigningKeyState::Active, t, t)?;
                Some(Successor::Insert(&fresh))
            }
        }
    } else {
        None
    };
    let entry =
        crate::domain::revocation::record(RevocationTarget::Kid(kid.clone()), now, max_token_ttl);
    let audit = actor.into().stamp(AuditRecord {
        at: t,
        action: "signing_key.revoke".into(),
        outcome: "ok".into(),
        detail: Some(format!("kid={kid}")),
        ..AuditRecord::default()
    });
    if store
        .revoke_signing_key(kid, successor, &entry, &audit)
        .await?
        == Applied::Unchanged
    {
        return Err(DomainError::Conflict(ConflictReason::SigningKeyChanged(
            kid.clone(),
        )));
    }
    crate::domain::audit::log(&audit);
    // The revocation stands either way; a failure here is healed by the server's maintenance.
    if let Err(e) = ensure_next(store, enc, now).await {
        tracing::warn!(error = %e, "no standby signing key published after the revocation");
    }
    Ok(())
}
