//! `keymint serve`: wiring the store, the domain and HTTP together, plus the background work:
//! applying changes made by other processes within a second, the signing-key lifecycle, re-signing
//! the revocation list, and batched writes of last-used times and audit records.
#![allow(clippy::disallowed_methods)] // the server is an edge: its background tasks read the clock

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use keymint_jwks::{Issuer, PROPAGATION_BOUND, UnixTime};
use keymint_verifier::MAX_LEEWAY;
use tokio::net::TcpListener;

use crate::config::Secrets;
use crate::domain::admin::AdminGate;
use crate::domain::admin::api::{AdminApi, AdminDeps};
use crate::domain::keys::key_hash::KeyHasher;
use crate::domain::leaks::LeakDesk;
use crate::domain::leaks::scanner_keys::ScannerKeyring;
use crate::domain::leaks::webhook::{Deliverer, Schedule};
use crate::domain::revocation;
use crate::domain::revocation::ListFeed;
use crate::domain::settings::{self, Settings, SharedSettings};
use crate::domain::signing;
use crate::domain::signing::secret_box::EncryptionKey;
use crate::domain::token::TokenService;
use crate::domain::usage::{self, UsageLog};
use crate::domain::{DomainError, Fault};
use crate::http::{self, AppParts, AppState};
use crate::store::Store;

/// How often the change feed is polled: a change made elsewhere applies here within this (plus a
/// database round trip). On Postgres a notification wakes the watcher sooner.
pub const CHANGE_POLL: Duration = Duration::from_millis(200);

/// `serve` settings. The four shared ones (issuer, cache period, token lifetime, list validity)
/// are what the command line resolved against the stored ones; [`serve`] stores them if they are
/// not yet, and refuses them if they differ from what is stored.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// `iss`.
    pub issuer: Issuer,
    /// JWKS cache period; rotations wait it out.
    pub jwks_max_age: Duration,
    /// Server-wide maximum token lifetime.
    pub max_token_ttl: Duration,
    /// Validity of each signed revocation list.
    pub list_validity: Duration,
    /// Serve HTTPS with this configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How long stored audit rows and usage rollups are kept.
    pub audit_retention: Duration,
    /// How often counted uses are written to the database ([`usage::FLUSH_INTERVAL`] by default).
    pub usage_flush: Duration,
    /// The secret scanner's public keys: reports are accepted when set.
    pub scanner_keys: Option<Arc<ScannerKeyring>>,
}

/// A running issuer's shared pieces.
struct Runtime<S> {
    store: Arc<S>,
    enc: Arc<EncryptionKey>,
    signing: Arc<ArcSwap<signing::SigningSet>>,
    list: ListFeed,
    tokens: TokenService<S>,
    /// The shared settings in force, swapped when the change feed says an admin changed them.
    settings: SharedSettings,
    /// Held by whoever reloads the signing set or signs the list. The watcher and the maintenance
    /// task both do; without it, a set loaded before a change could be stored after a newer one,
    /// or a list signed by a key that a concurrent reload had just replaced.
    refresh: tokio::sync::Mutex<()>,
}

impl<S: Store> Runtime<S> {
    async fn reload_signing(&self) -> Result<(), DomainError> {
        let _one_at_a_time = self.refresh.lock().await;
        let set = signing::load(&*self.store, &self.enc).await?;
        self.signing.store(Arc::new(set));
        Ok(())
    }

    async fn refresh_list(&self) -> Result<(), DomainError> {
        let _one_at_a_time = self.refresh.lock().await;
        let signer = self.signing.load().active.clone();
        let settings = self.settings.load_full();
        let list = revocation::current_list(
            &*self.store,
            &signer,
            settings.issuer(),
            UnixTime::now(),
            settings.list_validity(),
        )
        .await?;
        let serial = list.serial;
        metrics::gauge!("keymint_revocation_list_serial").set(serial as f64);
        metrics::gauge!("keymint_revocation_list_bytes").set(list.jws.len() as f64);
        if self.list.publish(list) {
            tracing::info!(serial, "revocation list updated");
        }
        Ok(())
    }

    fn retire_for(&self) -> Duration {
        self.settings.load().max_token_ttl() + MAX_LEEWAY + PROPAGATION_BOUND
    }

    /// Adopts the stored settings after an admin changed them. The list is re-signed at once
    /// (by the caller, after every batch of changes): under a new issuer URL, the stored list no
    /// longer matches and `current_list` signs a new one.
    async fn reload_settings(&self) -> Result<(), DomainError> {
        let new = settings::load(&*self.store).await?;
        let old = self.settings.load_full();
        if *old == new {
            return Ok(());
        }
        if new.max_token_ttl() > old.max_token_ttl() {
            revocation::note_token_ttl(&*self.store, new.max_token_ttl()).await?;
        }
        tracing::info!(
            issuer = %new.issuer(),
            max_token_ttl = new.max_token_ttl().as_secs(),
            jwks_max_age = new.jwks_max_age().as_secs(),
            list_validity = new.list_validity().as_secs(),
            "settings changed"
        );
        self.settings.store(Arc::new(new));
        Ok(())
    }
}

/// Prepares state (first signing key, first list) and serves until `shutdown` resolves. `ready`
/// runs once everything is prepared, just before the first connection is accepted: a start that
/// fails on the way (settings another replica stored, a database that went away) never announces
/// itself as listening.
pub async fn serve<S: Store>(
    store: Arc<S>,
    secrets: Secrets,
    cfg: ServeConfig,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(),
) -> Result<(), DomainError> {
    let enc = Arc::new(secrets.encryption_key);
    let now = UnixTime::now();
    let wanted = Settings::new(
        cfg.issuer.clone(),
        cfg.max_token_ttl,
        cfg.jwks_max_age,
        cfg.list_validity,
    )?;
    // Stored on a first start; refused if another replica's first start stored others meanwhile.
    settings::establish(&*store, &wanted).await?;
    signing::ensure_active(&*store, &enc, now).await?;
    signing::maintain(
        &*store,
        &enc,
        now,
        cfg.max_token_ttl + MAX_LEEWAY + PROPAGATION_BOUND,
    )
    .await?;
    revocation::note_token_ttl(&*store, cfg.max_token_ttl).await?;
    let shared: SharedSettings = Arc::new(ArcSwap::from_pointee(wanted));
    // Read before the state below is loaded: a change another replica or the CLI makes while this
    // one starts is then applied by the watcher rather than missed until the next.
    let changes_from = store.last_change().await?;
    let signing_set = Arc::new(ArcSwap::from_pointee(signing::load(&*store, &enc).await?));
    let first_list = revocation::current_list(
        &*store,
        &signing_set.load().active,
        &cfg.issuer,
        now,
        cfg.list_validity,
    )
    .await?;
    let uses = UsageLog::new();
    let tokens = TokenService::new(
        Arc::clone(&store),
        KeyHasher::new(&secrets.pepper),
        Arc::clone(&signing_set),
        Arc::clone(&shared),
        uses.clone(),
    );
    tokens.reload_origins(now).await?;
    tokens.reload_public_scopes().await?;
    // The feed position was just read: the propagation bound counts from here. Without this, a
    // database that went down before the watcher's first read left the bound unarmed, and keys
    // cached meanwhile were minted from for as long as the outage lasted (seen in CI on a loaded
    // machine).
    tokens.feed_read(UnixTime::now());
    let rt = Arc::new(Runtime {
        store: Arc::clone(&store),
        enc,
        signing: signing_set,
        list: ListFeed::new(first_list),
        tokens,
        settings: Arc::clone(&shared),
        refresh: tokio::sync::Mutex::new(()),
    });

    let (stop_usage, usage_stopped) = tokio::sync::oneshot::channel::<()>();
    let usage_task = tokio::spawn(usage::run_writer(
        Arc::clone(&store),
        uses,
        cfg.usage_flush,
        async {
            let _ = usage_stopped.await;
        },
    ));
    let pruner = tokio::spawn(prune_old(Arc::clone(&store), cfg.audit_retention));
    let (stop_webhooks, webhooks_stopped) = tokio::sync::oneshot::channel::<()>();
    let webhooks = tokio::spawn(
        Deliverer::new(Arc::clone(&store), Arc::clone(&rt.enc), Schedule::default()).run(async {
            let _ = webhooks_stopped.await;
        }),
    );
    let watcher = tokio::spawn(watch_changes(Arc::clone(&rt), changes_from));
    let maintenance = tokio::spawn(maintain(Arc::clone(&rt)));

    let admin = Arc::new(AdminApi::new(AdminDeps {
        store: Arc::clone(&store),
        hasher: KeyHasher::new(&secrets.pepper),
        enc: Arc::clone(&rt.enc),
        signing: Arc::clone(&rt.signing),
        list: rt.list.clone(),
        gate: AdminGate::new(&cfg.issuer, &rt.signing.load(), &rt.list.current())?,
        settings: Arc::clone(&shared),
    }));
    let app = http::router(AppState::from(AppParts {
        tokens: rt.tokens.clone(),
        signing: Arc::clone(&rt.signing),
        list: rt.list.clone(),
        store: Arc::clone(&store),
        settings: Arc::clone(&shared),
        trusted_proxies: Arc::new(cfg.trusted_proxies.clone()),
        admin,
        leaks: Arc::new(LeakDesk::new(
            Arc::clone(&store),
            KeyHasher::new(&secrets.pepper),
            cfg.scanner_keys.clone(),
            Arc::clone(&shared),
        )),
    }));
    let feed = rt.list.clone();
    ready();
    let served = match cfg.tls.clone() {
        None => axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Push streams never end on their own; closing the feed ends them so shutdown completes.
            feed.close();
        })
        .await
        .map_err(|e| DomainError::Internal(Fault::because("server", e))),
        Some(tls) => {
            let handle = axum_server::Handle::new();
            let on_shutdown = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                feed.close();
                on_shutdown.graceful_shutdown(Some(Duration::from_secs(10)));
            });
            let std_listener = listener
                .into_std()
                .map_err(|e| DomainError::Internal(Fault::because("listener", e)))?;
            axum_server::from_tcp_rustls(
                std_listener,
                axum_server::tls_rustls::RustlsConfig::from_config(tls),
            )
            .map_err(|e| DomainError::Internal(Fault::because("listener", e)))?
            .handle(handle)
            .serve(app.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .map_err(|e| DomainError::Internal(Fault::because("server", e)))
        }
    };
    watcher.abort();
    maintenance.abort();
    flush_last_used(&rt).await;
    pruner.abort();
    // An attempt in flight ends first (its outcome is recorded); the rest wait in the database.
    let _ = stop_webhooks.send(());
    let _ = tokio::time::timeout(Duration::from_secs(15), webhooks).await;
    // The usage writer writes what is counted, once more, and ends.
    let _ = stop_usage.send(());
    drop(rt);
    let _ = tokio::time::timeout(Duration::from_secs(5), usage_task).await;
    served
}

async fn watch_changes<S: Store>(rt: Arc<Runtime<S>>, mut last: i64) {
    // A failed re-read of the public scopes is retried on the next round, not forgotten.
    let mut scopes_pending = false;
    let mut settings_pending = false;
    loop {
        rt.store.change_hint(CHANGE_POLL).await;
        let page = match rt.store.changes_since(last).await {
            Ok(c) => {
                rt.tokens.feed_read(UnixTime::now());
                c
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the change feed");
                continue;
            }
        };
        let changes = page.changes;
        let Some(newest) = changes.last().map(|c| c.id) else {
            // A change of settings that could not be read last round is retried without waiting
            // for another change.
            if settings_pending && adopt_settings(&rt).await {
                settings_pending = false;
            }
            continue;
        };
        let mut signing_changed = false;
        let mut keys_changed = false;
        let mut scopes_changed = false;
        let mut settings_changed = false;
        for c in &changes {
            match c.kind.as_str() {
                "key" => {
                    rt.tokens.invalidate(&c.target);
                    keys_changed = true;
                }
                "signing_key" => signing_changed = true,
                "scope" => scopes_changed = true,
                "settings" => settings_changed = true,
                _ => {}
            }
        }
        // More changes than a page, or changes pruned before this process read them (it could
        // not reach the database for longer than the feed's retention): what they named is not
        // known, so everything cached from the database is read again.
        if page.pruned_past
            || i64::try_from(changes.len()).unwrap_or(i64::MAX) >= crate::store::FEED_PAGE
        {
            if page.pruned_past {
                tracing::warn!(
                    after = last,
                    "changes this server had not read were pruned; reloading keys, scopes, settings and signing keys"
                );
                keys_changed = true;
                signing_changed = true;
            }
            rt.tokens.invalidate_all();
            scopes_changed = true;
            settings_changed = true;
        }
        // Before the list is refreshed below, so that a new issuer URL re-signs it in this round.
        settings_pending |= settings_changed;
        if settings_pending && adopt_settings(&rt).await {
            settings_pending = false;
        }
        scopes_pending |= scopes_changed;
        if scopes_pending {
            match rt.tokens.reload_public_scopes().await {
                Ok(()) => scopes_pending = false,
                Err(e) => tracing::warn!(error = %e, "cannot reload public scopes"),
            }
        }
        if keys_changed && let Err(e) = rt.tokens.reload_origins(UnixTime::now()).await {
            tracing::warn!(error = %e, "cannot reload publishable-key origins");
        }
        if signing_changed && let Err(e) = rt.reload_signing().await {
            tracing::error!(error = %e, "cannot reload signing keys");
        }
        if let Err(e) = rt.refresh_list().await {
            tracing::warn!(error = %e, "cannot refresh the revocation list");
        }
        last = newest;
    }
}

/// Adopts changed settings and re-signs the list under them; whether that worked (else the
/// watcher tries again next round).
async fn adopt_settings<S: Store>(rt: &Runtime<S>) -> bool {
    if let Err(e) = rt.reload_settings().await {
        tracing::warn!(error = %e, "cannot adopt the changed settings");
        return false;
    }
    if let Err(e) = rt.refresh_list().await {
        tracing::warn!(error = %e, "cannot refresh the revocation list");
    }
    true
}

async fn maintain<S: Store>(rt: Arc<Runtime<S>>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut usage_tick = 0u32;
    loop {
        tick.tick().await;
        match signing::maintain(&*rt.store, &rt.enc, UnixTime::now(), rt.retire_for()).await {
            Ok(true) => {
                if let Err(e) = rt.reload_signing().await {
                    tracing::error!(error = %e, "cannot reload signing keys");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "signing key maintenance failed"),
        }
        if let Err(e) = rt.refresh_list().await {
            tracing::warn!(error = %e, "cannot refresh the revocation list");
        }
        // The active key's age, read from the signing set in force.
        let set = rt.signing.load();
        let active = set.active.key().kid();
        if let Some(since) = set
            .records
            .iter()
            .find(|r| r.kid == *active)
            .map(|r| r.activate_at)
        {
            let age = crate::domain::unix(UnixTime::now()).saturating_sub(since);
            metrics::gauge!("keymint_signing_key_age_seconds").set(age as f64);
        }
        usage_tick += 1;
        if usage_tick.is_multiple_of(5) {
            flush_last_used(&rt).await;
        }
    }
}

/// Prunes audit rows and usage rollups past the retention, and the change feed past its own
/// ([`crate::domain::feed::FEED_RETENTION`]): at start, then every hour.
async fn prune_old<S: Store>(store: Arc<S>, retention: Duration) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tick.tick().await;
        match usage::prune(&*store, UnixTime::now(), retention).await {
            Ok(p) if p.audit + p.usage > 0 => {
                tracing::info!(
                    audit = p.audit,
                    usage = p.usage,
                    "pruned rows past the audit retention"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot prune audit rows; will retry"),
        }
        match crate::domain::feed::prune(&*store, UnixTime::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(changes = n, "pruned the change feed's old rows"),
            Err(e) => tracing::warn!(error = %e, "cannot prune the change feed; will retry"),
        }
    }
}

/// How often retention runs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

async fn flush_last_used<S: Store>(rt: &Runtime<S>) {
    let used = rt.tokens.take_last_used();
    if !used.is_empty()
        && let Err(e) = rt.store.touch_keys(&used).await
    {
        tracing::warn!(error = %e, "cannot record last-used times");
    }
}

#[cfg(test)]
mod tests;
