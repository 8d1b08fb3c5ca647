//! What the admin API does, one method per operation, each audited with the calling admin key as
//! the actor. The HTTP layer parses and authorizes; this does the work through the same domain
//! functions the CLI uses.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use keymint_jwks::{Algorithm, ApiKeyId, Jti, Kid, Scope, TenantId, UnixTime};

pub use super::views::{AuditPage, RevocationView, ScopeView, SigningKeyView};
use crate::domain::admin::{Access, AdminGate, AdminRead, AdminWrite, Granted};
use crate::domain::keys::api_key::PrintableKey;
use crate::domain::keys::key_hash::KeyHasher;
use crate::domain::keys::{self, KeyCursor, KeyView, KeysPage, NewKey};
use crate::domain::leaks;
use crate::domain::leaks::policy::{PolicyChange, TenantPolicy};
use crate::domain::refusal::Missing;
use crate::domain::revocation::{self, ListFeed};
use crate::domain::settings::{self, Partial, SettingName, SettingsView, SharedSettings};
use crate::domain::signing::secret_box::EncryptionKey;
use crate::domain::signing::{self, SigningSet};
use crate::domain::unix;
use crate::domain::{DomainError, Fault};
use crate::store::{AuditQuery, Store, TenantSummary, Visibility};

/// The most audit records one page returns.
pub const MAX_AUDIT_PAGE: i64 = 1000;

/// The admin API's operations, over what they need.
pub struct AdminApi<S>(AdminDeps<S>);

impl<S> std::fmt::Debug for AdminApi<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminApi").finish_non_exhaustive()
    }
}

/// What [`AdminApi::new`] needs.
#[derive(Debug)]
pub struct AdminDeps<S> {
    /// The store.
    pub store: Arc<S>,
    /// Hashes new keys' secrets.
    pub hasher: KeyHasher,
    /// Encrypts new signing keys.
    pub enc: Arc<EncryptionKey>,
    /// The signing set this replica serves.
    pub signing: Arc<ArcSwap<SigningSet>>,
    /// The list this replica serves.
    pub list: ListFeed,
    /// Verifies admin tokens.
    pub gate: AdminGate,
    /// The settings in force: the issuer URL (admin tokens' issuer and audience), the longest
    /// token lifetime (how long revocation entries stay listed) and the JWKS cache period (how
    /// long a rotated-in signing key is published before it signs).
    pub settings: SharedSettings,
}

impl<S: Store> AdminApi<S> {
    /// The admin API over these pieces.
    pub fn new(deps: AdminDeps<S>) -> Self {
        Self(deps)
    }

    /// The longest token lifetime in force, read once (a guard held across an await would pin
    /// the old settings).
    fn max_token_ttl(&self) -> Duration {
        self.0.settings.load().max_token_ttl()
    }

    /// The JWKS cache period in force.
    fn jwks_max_age(&self) -> Duration {
        self.0.settings.load().jwks_max_age()
    }

    /// Checks an admin token (from `Authorization: Bearer`) for `admin:read`.
    pub fn authorize_read(
        &self,
        token: Option<&str>,
        client_ip: std::net::IpAddr,
        now: UnixTime,
    ) -> Result<AdminRead, DomainError> {
        match self.authorize(token, Access::Read, client_ip, now)? {
            Granted::Read(r) => Ok(r),
            Granted::Write(_) => Err(DomainError::Internal(Fault::new("admin gate: wrong grant"))),
        }
    }

    /// Checks an admin token (from `Authorization: Bearer`) for `admin:write`.
    pub fn authorize_write(
        &self,
        token: Option<&str>,
        client_ip: std::net::IpAddr,
        now: UnixTime,
    ) -> Result<AdminWrite, DomainError> {
        match self.authorize(token, Access::Write, client_ip, now)? {
            Granted::Write(w) => Ok(w),
            Granted::Read(_) => Err(DomainError::Internal(Fault::new("admin gate: wrong grant"))),
        }
    }

    fn authorize(
        &self,
        token: Option<&str>,
        need: Access,
        client_ip: std::net::IpAddr,
        now: UnixTime,
    ) -> Result<Granted, DomainError> {
        let set = self.0.signing.load();
        let list = self.0.list.current();
        let settings = self.0.settings.load();
        self.0
            .gate
            .authorize(token, need, settings.issuer(), &set, &list, client_ip, now)
    }

    /// A page of keys, optionally of one tenant, newest first: at most `limit` (1 to
    /// [`keys::KEYS_PAGE`]), after `after` ([`keys::page`]). A million keys are listed a page at a
    /// time, never loaded at once.
    pub async fn list_keys(
        &self,
        _: &AdminRead,
        tenant: Option<&TenantId>,
        after: Option<&KeyCursor>,
        limit: u32,
        now: UnixTime,
    ) -> Result<KeysPage, DomainError> {
        keys::page(&*self.0.store, tenant, after, limit, now).await
    }

    /// One key.
    pub async fn key(
        &self,
        _: &AdminRead,
        id: &ApiKeyId,
        now: UnixTime,
    ) -> Result<KeyView, DomainError> {
        let rec = self
            .0
            .store
            .key(id)
            .await?
            .ok_or_else(|| DomainError::NotFound(Missing::Key(id.clone())))?;
        Ok(KeyView::from_record(&rec, now))
    }

    /// Creates a customer key; the printable key is in the answer once.
    pub async fn create_key(
        &self,
        admin: &AdminWrite,
        new: &NewKey,
        now: UnixTime,
    ) -> Result<(KeyView, PrintableKey), DomainError> {
        keys::create(
            &*self.0.store,
            &self.0.hasher,
            new,
            now,
            admin.admin().actor(),
        )
        .await
    }

    /// Revokes a key and every token it minted.
    pub async fn revoke_key(
        &self,
        admin: &AdminWrite,
        id: &ApiKeyId,
        now: UnixTime,
    ) -> Result<(), DomainError> {
        revocation::revoke_key(
            &*self.0.store,
            id,
            now,
            revocation::covered_ttl(&*self.0.store, self.max_token_ttl()).await?,
            admin.admin().actor(),
        )
        .await
    }

    /// Rotates a key; with `revoke_old` the old key is revoked at once (a leaked key).
    pub async fn rotate_key(
        &self,
        admin: &AdminWrite,
        id: &ApiKeyId,
        grace: Duration,
        revoke_old: bool,
        now: UnixTime,
    ) -> Result<(KeyView, PrintableKey), DomainError> {
        let grace = if revoke_old { Duration::ZERO } else { grace };
        let made = keys::rotate(
            &*self.0.store,
            &self.0.hasher,
            id,
            grace,
            now,
            admin.admin().actor(),
        )
        .await?;
        if revoke_old {
            revocation::revoke_key(
                &*self.0.store,
                id,
                now,
                revocation::covered_ttl(&*self.0.store, self.max_token_ttl()).await?,
                admin.admin().actor(),
            )
            .await?;
        }
        Ok(made)
    }

    /// Declared scopes.
    pub async fn scopes(&self, _: &AdminRead) -> Result<Vec<ScopeView>, DomainError> {
        Ok(self
            .0
            .store
            .scopes()
            .await?
            .into_iter()
            .map(|s| ScopeView {
                name: s.name.to_string(),
                public: s.visibility.is_public(),
            })
            .collect())
    }

    /// Declares a scope, public or not.
    pub async fn put_scope(
        &self,
        admin: &AdminWrite,
        scope: &Scope,
        visibility: Visibility,
        now: UnixTime,
    ) -> Result<ScopeView, DomainError> {
        keys::put_scope(
            &*self.0.store,
            scope,
            visibility,
            now,
            admin.admin().actor(),
        )
        .await?;
        Ok(ScopeView {
            name: scope.to_string(),
            public: visibility.is_public(),
        })
    }

    /// Tenants with their key counts.
    pub async fn tenants(
        &self,
        _: &AdminRead,
        now: UnixTime,
    ) -> Result<Vec<TenantSummary>, DomainError> {
        Ok(self.0.store.tenants(unix(now)).await?)
    }

    /// Revokes a tenant: its keys and every token it was issued until now; how many keys.
    pub async fn revoke_tenant(
        &self,
        admin: &AdminWrite,
        tenant: &TenantId,
        now: UnixTime,
    ) -> Result<u64, DomainError> {
        revocation::revoke_tenant(
            &*self.0.store,
            tenant,
            now,
            revocation::covered_ttl(&*self.0.store, self.max_token_ttl()).await?,
            admin.admin().actor(),
        )
        .await
    }

    /// A tenant's policy (the defaults when none was set).
    pub async fn tenant_policy(
        &self,
        _: &AdminRead,
        tenant: &TenantId,
    ) -> Result<TenantPolicy, DomainError> {
        leaks::policy::get(&*self.0.store, tenant).await
    }

    /// Changes what a secret-scanning report of one of `tenant`'s keys does, and who is told.
    pub async fn set_tenant_policy(
        &self,
        admin: &AdminWrite,
        tenant: &TenantId,
        change: &PolicyChange,
        now: UnixTime,
    ) -> Result<TenantPolicy, DomainError> {
        leaks::policy::set(
            &*self.0.store,
            &self.0.enc,
            tenant,
            change,
            now,
            admin.admin().actor(),
        )
        .await
    }

    /// Revocation entries in force.
    pub async fn revocations(
        &self,
        _: &AdminRead,
        now: UnixTime,
    ) -> Result<Vec<RevocationView>, DomainError> {
        Ok(self
            .0
            .store
            .revocations(unix(now))
            .await?
            .into_iter()
            .map(|e| RevocationView {
                kind: e.target.kind().to_owned(),
                id: e.target.id().to_owned(),
                revoked_at: e.revoked_at,
                drop_after: e.drop_after,
            })
            .collect())
    }

    /// Revokes one token by `jti`.
    pub async fn revoke_token(
        &self,
        admin: &AdminWrite,
        jti: &Jti,
        now: UnixTime,
    ) -> Result<(), DomainError> {
        revocation::revoke_token(
            &*self.0.store,
            jti,
            now,
            revocation::covered_ttl(&*self.0.store, self.max_token_ttl()).await?,
            admin.admin().actor(),
        )
        .await
    }

    /// Signing keys still published or revoked.
    pub async fn signing_keys(&self, _: &AdminRead) -> Result<Vec<SigningKeyView>, DomainError> {
        Ok(self
            .0
            .store
            .signing_keys()
            .await?
            .iter()
            .map(SigningKeyView::from)
            .collect())
    }

    /// Starts a signing-key rotation: a *next* key, active after the JWKS cache period.
    pub async fn rotate_signing_key(
        &self,
        admin: &AdminWrite,
        alg: Algorithm,
        now: UnixTime,
    ) -> Result<SigningKeyView, DomainError> {
        let rec = signing::rotate(
            &*self.0.store,
            &self.0.enc,
            alg,
            now,
            self.jwks_max_age(),
            admin.admin().actor(),
        )
        .await?;
        Ok(SigningKeyView::from(&rec))
    }

    /// Emergency revocation of a signing key.
    pub async fn revoke_signing_key(
        &self,
        admin: &AdminWrite,
        kid: &Kid,
        now: UnixTime,
    ) -> Result<(), DomainError> {
        signing::revoke(
            &*self.0.store,
            &self.0.enc,
            kid,
            now,
            revocation::covered_ttl(&*self.0.store, self.max_token_ttl()).await?,
            admin.admin().actor(),
        )
        .await
    }

    /// Where `id` was used from since `since`, how often, and what was refused.
    pub async fn key_usage(
        &self,
        _: &AdminRead,
        id: &ApiKeyId,
        since: UnixTime,
    ) -> Result<crate::domain::usage::KeyUsage, DomainError> {
        crate::domain::usage::key_usage(&*self.0.store, id, since).await
    }

    /// Stored audit records matching `query` (its limit capped at [`MAX_AUDIT_PAGE`]).
    pub async fn audit(
        &self,
        _: &AdminRead,
        mut query: AuditQuery,
    ) -> Result<AuditPage, DomainError> {
        query.limit = query.limit.clamp(1, MAX_AUDIT_PAGE);
        let items = self.0.store.audit(&query).await?;
        let full = i64::try_from(items.len()).unwrap_or(i64::MAX) == query.limit;
        let next_before = if full {
            items.last().map(|e| e.id)
        } else {
            None
        };
        Ok(AuditPage { items, next_before })
    }

    /// The stored shared settings.
    pub async fn settings(&self, _: &AdminRead) -> Result<SettingsView, DomainError> {
        Ok(SettingsView::from(&settings::stored(&*self.0.store).await?))
    }

    /// Changes one shared setting; every replica adopts it from the change feed.
    pub async fn set_setting(
        &self,
        admin: &AdminWrite,
        name: SettingName,
        value: &str,
        now: UnixTime,
    ) -> Result<SettingsView, DomainError> {
        let value = Partial::one(name, value)?;
        settings::change(&*self.0.store, name, &value, now, admin.admin().actor()).await
    }
}
