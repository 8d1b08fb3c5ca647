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

#[tokio::test]
async fn a_start_announces_itself_once_when_ready_to_answer() {
    let (_dir, store, listener) = setup("ready").await;
    let cfg = config(&listener);
    let url = format!("http://{}/readyz", cfg.listen);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let announced = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&announced);
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
            counted.fetch_add(1, Ordering::SeqCst);
            if let Some(tx) = ready_tx.take() {
                let _ = tx.send(());
            }
        },
    ));
    ready_rx.await.expect("serve announced itself");
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
