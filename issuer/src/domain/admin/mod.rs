//! Admin keys and the admin API's gate.
//!
//! Admin keys are API keys like any other (same format, hash and token endpoint) with two
//! differences: only `keymint admin-keys create` makes them, and their tokens carry the reserved
//! `admin:*` scopes and the audience `<issuer>/v1/admin`, which no customer key can get. The admin
//! API verifies those tokens with `keymint-verifier`, exactly as an API server would: signature
//! against the issuer's own JWKS, revocation against its own signed list, so revoking an admin key
//! locks it out of the admin API like any other key.

pub mod api;
mod views;

pub use crate::domain::reserved::{ADMIN_PATH, READ, WRITE};

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use std::time::Duration;

use keymint_jwks::{Issuer, RevocationListError, Scope, ScopeSet, TenantId, UnixTime};
use keymint_verifier::{UpdateError, Verifier, VerifyError};

use crate::domain::keys::KeyView;
use crate::domain::keys::api_key::{KeyEnv, KeyKind, PrintableKey};
use crate::domain::keys::key_hash::KeyHasher;
use crate::domain::refusal::{AdminAuthRefusal, InvalidInput};
use crate::domain::reserved::{ADMIN_TENANT, MAX_ADMIN_KEY_LIFETIME, admin_audience};
use crate::domain::signing::SigningSet;
use crate::domain::unix;
use crate::domain::{DomainError, Fault};
use crate::store::{AuditRecord, KeyRecord, Store, StoredList};

/// Admin tokens are short: 5 minutes by default, 15 at most.
const ADMIN_TOKEN_TTL: i64 = 300;
const ADMIN_TOKEN_MAX_TTL: i64 = 900;

/// What an admin call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// [`READ`] or [`WRITE`].
    Read,
    /// [`WRITE`].
    Write,
}

/// The caller of an admin call, from its verified token.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The admin key that got the token.
    pub key_id: String,
    /// `admin-key:<key ID>`, as audit records name it.
    name: String,
    /// Where the call came from.
    client_ip: std::net::IpAddr,
}

impl Admin {
    /// The actor named in audit records, with the client address.
    pub fn actor(&self) -> crate::domain::audit::Actor<'_> {
        crate::domain::audit::Actor {
            name: &self.name,
            client_ip: Some(self.client_ip),
        }
    }
}

/// Proof that the caller holds a verified admin token with `admin:read` or `admin:write`. Only
/// [`AdminGate::authorize`] (through `AdminApi::authorize_read`) makes one, and every reading admin
/// operation takes it: a handler that forgets the check does not compile.
#[derive(Debug)]
pub struct AdminRead(Admin);

/// Proof that the caller holds a verified admin token with `admin:write`; see [`AdminRead`].
#[derive(Debug)]
pub struct AdminWrite(Admin);

impl AdminRead {
    /// The caller.
    pub fn admin(&self) -> &Admin {
        &self.0
    }
}

impl AdminWrite {
    /// The caller.
    pub fn admin(&self) -> &Admin {
        &self.0
    }
}

/// What [`AdminGate::authorize`] proves, by the access asked for.
#[derive(Debug)]
pub enum Granted {
    /// `admin:read` (or more).
    Read(AdminRead),
    /// `admin:write`.
    Write(AdminWrite),
}

/// Verifies admin tokens against the issuer's own JWKS and revocation list, kept in step with
/// whatever this replica serves, for the issuer URL in force.
pub struct AdminGate {
    current: ArcSwap<IssuerGate>,
}

/// The gate for one issuer URL: a verifier pinned to it and its admin audience.
struct IssuerGate {
    issuer: Issuer,
    verifier: Verifier,
    /// ETag of the JWKS and serial of the list the verifier holds.
    applied: Mutex<(Arc<str>, i64)>,
}

impl std::fmt::Debug for AdminGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminGate").finish_non_exhaustive()
    }
}

impl AdminGate {
    /// A gate for `issuer`, starting from the current signing set and list.
    pub fn new(issuer: &Issuer, set: &SigningSet, list: &StoredList) -> Result<Self, DomainError> {
        Ok(Self {
            current: ArcSwap::from_pointee(IssuerGate::new(issuer, set, list)?),
        })
    }

    /// The gate for `issuer`. After an admin changed the issuer URL, the verifier is rebuilt for
    /// the new one as soon as the list at hand is signed under it (the change watcher re-signs it
    /// right after adopting the change); until then the gate in force stays, for a poll or so.
    fn for_issuer(&self, issuer: &Issuer, set: &SigningSet, list: &StoredList) -> Arc<IssuerGate> {
        let gate = self.current.load_full();
        if gate.issuer == *issuer {
            return gate;
        }
        match IssuerGate::new(issuer, set, list) {
            Ok(new) => {
                let new = Arc::new(new);
                self.current.store(Arc::clone(&new));
                new
            }
            Err(e) => {
                tracing::debug!(error = %e, "admin gate waits for a list under the new issuer");
                gate
            }
        }
    }

    /// Checks `token` (from `Authorization: Bearer`) for `need`, against `issuer`, `set` and
    /// `list` as served now.
    #[allow(clippy::too_many_arguments)] // each is what this replica serves now, read once
    pub fn authorize(
        &self,
        token: Option<&str>,
        need: Access,
        issuer: &Issuer,
        set: &SigningSet,
        list: &StoredList,
        client_ip: std::net::IpAddr,
        now: UnixTime,
    ) -> Result<Granted, DomainError> {
        let gate = self.for_issuer(issuer, set, list);
        gate.sync(set, list);
        let Some(token) = token else {
            return Err(DomainError::AdminUnauthenticated(AdminAuthRefusal::NoToken));
        };
        let verified = gate.verifier.verify_at(token, now).map_err(|e| match e {
            VerifyError::SourcesUnavailable { .. } => {
                DomainError::Internal(Fault::because("admin verifier", e))
            }
            // The issuer's own list past its time: it could not be re-signed, which takes the
            // database. Not the caller's fault (a 401 would count against them as a guess, and
            // block an admin for a minute after the database came back): 503, try again.
            VerifyError::RevocationListExpired { .. } | VerifyError::NoRevocationList => {
                DomainError::OwnListExpired
            }
            other => DomainError::AdminUnauthenticated(AdminAuthRefusal::Token(other)),
        })?;
        let scopes = &verified.claims().scope;
        let has = |s: &str| Scope::new(s).is_ok_and(|s| scopes.contains(&s));
        let allowed = match need {
            Access::Read => has(READ) || has(WRITE),
            Access::Write => has(WRITE),
        };
        if !allowed {
            return Err(DomainError::AdminForbidden {
                needed: match need {
                    Access::Read => READ,
                    Access::Write => WRITE,
                },
            });
        }
        let key_id = verified.claims().sub.to_string();
        let admin = Admin {
            name: format!("admin-key:{key_id}"),
            key_id,
            client_ip,
        };
        Ok(match need {
            Access::Read => Granted::Read(AdminRead(admin)),
            Access::Write => Granted::Write(AdminWrite(admin)),
        })
    }
}

impl IssuerGate {
    fn new(issuer: &Issuer, set: &SigningSet, list: &StoredList) -> Result<Self, DomainError> {
        let verifier = Verifier::builder(issuer.clone(), admin_audience(issuer)?)
            .jwks(set.published.clone())
            .revocation_list(list.jws.clone())
            .build()
            .map_err(|e| DomainError::Internal(Fault::because("admin verifier", e)))?;
        Ok(Self {
            issuer: issuer.clone(),
            verifier,
            applied: Mutex::new((set.etag.clone(), list.serial)),
        })
    }

    fn sync(&self, set: &SigningSet, list: &StoredList) {
        let mut applied = self
            .applied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if applied.0 != set.etag {
            self.verifier.set_keys(set.published.clone());
            applied.0 = set.etag.clone();
        }
        if applied.1 < list.serial {
            match self.verifier.update_revocations(&list.jws) {
                Ok(_) => applied.1 = list.serial,
                // The signing set and the list are swapped one after the other: for a moment after
                // a rotation or an emergency revocation, the list at hand can be signed by a key
                // the set at hand does not hold (either way round). The list in force stays until
                // a matching pair arrives, within one refresh.
                Err(UpdateError::List(RevocationListError::UnknownKid(kid))) => {
                    tracing::debug!(%kid, "admin gate waits for the key that signed the list")
                }
                Err(e) => {
                    tracing::error!(error = %e, "admin gate cannot apply the revocation list")
                }
            }
        }
    }
}

/// The scopes an admin key may carry.
pub fn admin_scopes(values: &[String]) -> Result<ScopeSet, DomainError> {
    let set = ScopeSet::from_values(values.iter().map(String::as_str))
        .map_err(|e| DomainError::Invalid(InvalidInput::Scopes(e)))?;
    if set.is_empty() {
        return Err(DomainError::Invalid(InvalidInput::NoAdminScope));
    }
    if let Some(s) = set.iter().find(|s| !matches!(s.as_str(), READ | WRITE)) {
        return Err(DomainError::Invalid(InvalidInput::NotAnAdminScope(
            s.clone(),
        )));
    }
    Ok(set)
}

/// Creates an admin key; the printable key is returned once and never stored.
pub async fn create_admin_key<S: Store>(
    store: &S,
    hasher: &KeyHasher,
    scopes: &ScopeSet,
    label: Option<String>,
    expires_in: Duration,
    now: UnixTime,
    actor: &str,
) -> Result<(KeyView, PrintableKey), DomainError> {
    if expires_in.is_zero() || expires_in > MAX_ADMIN_KEY_LIFETIME {
        return Err(DomainError::Invalid(InvalidInput::KeyLifetime(
            MAX_ADMIN_KEY_LIFETIME,
        )));
    }
    let (key_id, printable, secret_hash) =
        crate::domain::keys::mint(hasher, KeyKind::Secret, KeyEnv::Live)?;
    let tenant = TenantId::new(ADMIN_TENANT)
        .map_err(|e| DomainError::Internal(Fault::because("the admin tenant", e)))?;
    let rec = KeyRecord {
        key_id: key_id.to_string(),
        kind: KeyKind::Secret.as_str().into(),
        env: KeyEnv::Live.as_str().into(),
        tenant: tenant.to_string(),
        secret_hash,
        scopes: scopes.to_string(),
        // The audience is the issuer's admin audience, fixed at token time.
        audiences: String::new(),
        default_ttl: ADMIN_TOKEN_TTL,
        max_ttl: ADMIN_TOKEN_MAX_TTL,
        expires_at: unix(now.saturating_add(expires_in)),
        allow_ips: String::new(),
        allow_origins: String::new(),
        rate_limit: None,
        label,
        owner: Some(actor.into()),
        is_admin: true,
        created_at: unix(now),
        last_used_at: None,
        revoked_at: None,
        rotated_to: None,
    };
    let audit = AuditRecord {
        at: unix(now),
        action: "admin_key.create".into(),
        outcome: "ok".into(),
        actor: Some(actor.into()),
        key_id: Some(key_id.to_string()),
        scopes: Some(rec.scopes.clone()),
        ..AuditRecord::default()
    };
    store.insert_key(&rec, &audit).await?;
    crate::domain::audit::log(&audit);
    Ok((KeyView::from_record(&rec, now), printable))
}
