//! `serve`'s start: what it announces, and when.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keymint_jwks::Issuer;
use zeroize::Zeroizing;

use super::{ServeConfig, serve};
use crate::config::Secrets;
use crate::domain::keys::key_hash::Pepper;
use crate::domain::signing::secret_box::EncryptionKey;
use crate::store::{FlakyStore, SqliteStore};

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn setup(
    name: &str,
) -> (
    TempDir,
    Arc<FlakyStore<SqliteStore>>,
    tokio::net::TcpListener,
) {
    let dir = std::env::temp_dir().join(format!("keymint-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(FlakyStore::new(
        SqliteStore::open(&dir.join("db")).await.unwrap(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    (TempDir(dir), store, listener)
}

fn secrets() -> Secrets {
    Secrets {
        encryption_key: EncryptionKey::new(&Zeroizing::new([3; 32])).unwrap(),
        pepper: Pepper::new([4; 32]),
    }
}

fn config(listener: &tokio::net::TcpListener) -> ServeConfig {
    let listen = listener.local_addr().unwrap();
    ServeConfig {
        listen,
        issuer: Issuer::new(format!("http://{listen}")).unwrap(),
        jwks_max_age: Duration::from_secs(60),
        max_token_ttl: Duration::from_secs(600),
        list_validity: Duration::from_secs(3600),
        tls: None,
        trusted_proxies: Vec::new(),
        audit_retention: Duration::from_secs(86_400),
        usage_flush: Duration::from_secs(30),
        scanner_keys: None,
        connections: Default::default(),
    }
}

#[tokio::test]
async fn a_start_that_fails_during_setup_never_announces_itself() {
    let (_dir, store, listener) = setup("fails").await;
    store.set_down(true);
    let cfg = config(&listener);
    let announced = AtomicUsize::new(0);
    let served = serve(
        store,
        secrets(),
        cfg,
        listener,
        std::future::pending(),
        || {
            announced.fetch_add(1, Ordering::SeqCst);
        },
    )
    .await;
    assert!(served.is_err(), "a start on a database that is down fails");
    assert_eq!(
        announced.load(Ordering::SeqCst),
        0,
        "and never says it is listening"
    );
}

/// A server started on `store`, announced ready; stop it by sending on the first, then await
/// the second. `announced` counts its announcements.
async fn serving(
    store: Arc<FlakyStore<SqliteStore>>,
    listener: tokio::net::TcpListener,
    announced: Arc<AtomicUsize>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), crate::domain::DomainError>>,
) {
    let cfg = config(&listener);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut ready_tx = Some(ready_tx);
    let server = tokio::spawn(serve(
        store,
        secrets(),
        cfg,
        listener,
        async {
            let _ = stop_rx.await;
        },
        move || {
            announced.fetch_add(1, Ordering::SeqCst);
            if let Some(tx) = ready_tx.take() {
                let _ = tx.send(());
            }
        },
    ));
    ready_rx.await.expect("serve announced itself");
    (stop_tx, server)
}

#[tokio::test]
async fn a_start_announces_itself_once_when_ready_to_answer() {
    let (_dir, store, listener) = setup("ready").await;
    let url = format!("http://{}/readyz", listener.local_addr().unwrap());
    let announced = Arc::new(AtomicUsize::new(0));
    let (stop_tx, server) = serving(store, listener, Arc::clone(&announced)).await;
    // Announced means ready: the first request after it is answered, and answered ready.
    let status = tokio::task::spawn_blocking(move || match ureq::get(&url).call() {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("no answer after the announcement: {e}"),
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
    assert_eq!(announced.load(Ordering::SeqCst), 1);
}

/// The body of a GET, from a blocking thread.
async fn get_text(url: String) -> String {
    tokio::task::spawn_blocking(move || ureq::get(&url).call().unwrap().into_string().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signing_set_that_could_not_be_read_after_a_revocation_elsewhere_is_read_again() {
    let (dir, store, listener) = setup("signing-retry").await;
    let jwks_url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    let (stop_tx, server) = serving(Arc::clone(&store), listener, Arc::default()).await;

    // Another process (the CLI, another replica) revokes the active signing key while this
    // server cannot read the signing keys back.
    let elsewhere = SqliteStore::open(&dir.0.join("db")).await.unwrap();
    let enc = secrets().encryption_key;
    let active = crate::domain::signing::load(&elsewhere, &enc)
        .await
        .unwrap()
        .active
        .key()
        .kid()
        .to_string();
    assert!(get_text(jwks_url.clone()).await.contains(&active));
    store.set_failing(Some("signing_keys"));
    crate::domain::signing::revoke(
        &elsewhere,
        &enc,
        &keymint_jwks::Kid::new(active.clone()).unwrap(),
        keymint_jwks::UnixTime::now(),
        Duration::from_secs(600),
        "test",
    )
    .await
    .unwrap();
    // The watcher's round that read the revocation is over once it polls again: the call after
    // the first one that started with the revocation in.
    let polled = store.calls("changes_since");
    keymint_testkit::wait_until_async(
        "the watcher read past the revocation",
        Duration::from_secs(20),
        || async { (store.calls("changes_since") >= polled + 2).then_some(()) },
    )
    .await;
    assert!(
        get_text(jwks_url.clone()).await.contains(&active),
        "while the keys cannot be read, the old set stays (nothing better is known)"
    );

    store.set_failing(None);
    keymint_testkit::wait_until_async(
        "the revoked key leaves the JWKS once the keys can be read",
        Duration::from_secs(20),
        || async { (!get_text(jwks_url.clone()).await.contains(&active)).then_some(()) },
    )
    .await;
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
}
