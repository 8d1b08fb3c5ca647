//! `keymint serve`: wiring the store, the domain and HTTP together, and starting the background
//! work (in `server/background.rs`): applying changes made by other processes within a second, the
//! signing-key lifecycle, re-signing the revocation list, retention, and batched writes of
//! last-used times and usage counts.
#![allow(clippy::disallowed_methods)] // the server is an edge: its background tasks read the clock

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use keymint_jwks::{Issuer, UnixTime};
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

pub use self::answered::ANSWER_TIMEOUT;
use self::background::{flush_last_used, maintain, prune_old, watch_changes};
use self::connections::LimitAcceptor;
pub use crate::domain::client_slots::ConnectionLimits;
use crate::domain::client_slots::{Connections, Refused};

mod answered;
mod clock_offset;
mod connections;

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
    /// How many connections may be open, in total and per client.
    pub connections: ConnectionLimits,
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
    /// The maintenance task changed the signing keys but could not read them back: the watcher
    /// reads them again until it can.
    signing_stale: std::sync::atomic::AtomicBool,
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
    clock_offset::check(&*store).await;
    signing::ensure_active(&*store, &enc, now).await?;
    signing::maintain(&*store, &enc, now, cfg.max_token_ttl).await?;
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
        signing_stale: std::sync::atomic::AtomicBool::new(false),
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
    // As client addresses are compared: canonical (a mapped `::ffff:10.0.0.0/104` is 10.0.0.0/8).
    let trusted: Arc<Vec<ipnet::IpNet>> = Arc::new(
        cfg.trusted_proxies
            .iter()
            .map(|n| crate::domain::client::canonical_net(*n))
            .collect(),
    );
    let app = http::router(AppState::from(AppParts {
        tokens: rt.tokens.clone(),
        signing: Arc::clone(&rt.signing),
        list: rt.list.clone(),
        store: Arc::clone(&store),
        settings: Arc::clone(&shared),
        trusted_proxies: Arc::clone(&trusted),
        admin,
        leaks: Arc::new(LeakDesk::new(
            Arc::clone(&store),
            KeyHasher::new(&secrets.pepper),
            cfg.scanner_keys.clone(),
            Arc::clone(&shared),
        )),
        // Counted by the client each request names (behind a trusted proxy, the forwarded one).
        streams: Connections::new(cfg.connections, Arc::new(Vec::new())),
        event_frames: crate::http::EventFrames::default(),
    }));
    let feed = rt.list.clone();
    let connections = Connections::new(cfg.connections, Arc::clone(&trusted));
    let audit = rt.tokens.clone();
    let lines = connections::RefusalLines::default();
    let refused: Arc<dyn Fn(std::net::IpAddr, Refused) + Send + Sync> = Arc::new(move |ip, why| {
        let reason = match why {
            Refused::Total => "too_many_connections",
            Refused::PerClient => "too_many_connections_from_client",
            Refused::PerNetwork => "too_many_connections_from_network",
        };
        let client = crate::domain::client::ClientContext { ip, origin: None };
        let now = UnixTime::now();
        let (own_line, summed) = lines.take(i64::try_from(now.as_secs()).unwrap_or(i64::MAX));
        if summed > 0 {
            tracing::warn!(
                target: "keymint::audit",
                refused = summed,
                "connections refused over the limits in the last second without a line each \
                 (counted in the usage rollups and keymint_requests_refused_total)"
            );
        }
        if own_line {
            audit.note_refusal("connection", &client, reason, reason, now);
        } else {
            audit.count_refusal("connection", &client, reason, now);
        }
    });
    let handle = axum_server::Handle::new();
    let on_shutdown = handle.clone();
    let std_listener = listener
        .into_std()
        .map_err(|e| DomainError::Internal(Fault::because("listener", e)))?;
    // HTTP/1.1 only (TLS offers only `http/1.1` by ALPN; without this a client could speak
    // HTTP/2 by prior knowledge, with no idle limit and 200 streams a connection). Time on a
    // connection is bounded by the connection itself (`answered`), not by hyper's per-request
    // header timer or a first-request timer.
    let server = axum_server::from_tcp(std_listener)
        .map_err(|e| DomainError::Internal(Fault::because("listener", e)))?
        .http1_only()
        .handle(handle);
    ready();
    tokio::spawn(async move {
        shutdown.await;
        // Push streams never end on their own; closing the feed ends them so shutdown completes.
        feed.close();
        on_shutdown.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    let make = app.into_make_service_with_connect_info::<SocketAddr>();
    let served = match cfg.tls.clone() {
        None => {
            let server = server.acceptor(LimitAcceptor::new(
                axum_server::accept::DefaultAcceptor::new(),
                connections,
                refused,
            ));
            server.serve(make).await
        }
        Some(tls) => {
            let tls = axum_server::tls_rustls::RustlsAcceptor::new(
                axum_server::tls_rustls::RustlsConfig::from_config(tls),
            );
            let server = server.acceptor(LimitAcceptor::new(tls, connections, refused));
            server.serve(make).await
        }
    }
    .map_err(|e| DomainError::Internal(Fault::because("server", e)));
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

mod background;
#[cfg(test)]
mod tests;
