//! Webhook calls against a receiver on loopback: retried with backoff, persisted across a restart
//! (a new deliverer on the reopened database), bounded, signed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use keymint_jwks::{TenantId, UnixTime};
use zeroize::Zeroizing;

use super::policy::{self, PolicyChange, WebhookChange};
use super::webhook::{Deliverer, LeakEvent, Schedule, enqueue, signature};
use crate::domain::signing::secret_box::EncryptionKey;
use crate::store::{SqliteStore, Store};

/// Answers 500 to the first `failures` calls, 200 after; keeps every call.
struct Receiver {
    url: String,
    calls: Arc<Mutex<Vec<(HeaderMap, String)>>>,
}

async fn receiver(failures: usize) -> Receiver {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(AtomicUsize::new(0));
    let (c, n) = (Arc::clone(&calls), Arc::clone(&seen));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (c, n) = (Arc::clone(&c), Arc::clone(&n));
            async move {
                c.lock().unwrap().push((headers, body));
                if n.fetch_add(1, Ordering::SeqCst) < failures {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url, calls }
}

fn schedule(max_attempts: i64) -> Schedule {
    Schedule {
        base: Duration::from_secs(2),
        cap: Duration::from_secs(60),
        max_attempts,
        poll: Duration::from_secs(1),
        timeout: Duration::from_secs(10),
    }
}

struct Setup {
    dir: std::path::PathBuf,
    enc: Arc<EncryptionKey>,
    secret: String,
}

/// A database with tenant `acme` calling `url`, and one call queued at t=1000.
async fn setup(name: &str, url: &str) -> Setup {
    let dir = std::env::temp_dir().join(format!("keymint-webhook-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqliteStore::open(&dir.join("db")).await.unwrap();
    let enc = Arc::new(EncryptionKey::new(&Zeroizing::new([5; 32])).unwrap());
    let change = PolicyChange {
        on_leak: None,
        webhook: Some(WebhookChange::parse(url).unwrap()),
    };
    let tenant = TenantId::new("acme").unwrap();
    let shown = policy::set(&store, &enc, &tenant, &change, UnixTime(900), "test".into())
        .await
        .unwrap();
    let secret = shown.webhook_secret.unwrap();
    assert_eq!(
        policy::get(&store, &tenant).await.unwrap().webhook_secret,
        None,
        "the secret is shown once"
    );
    let stored = store.tenant_policy("acme").await.unwrap();
    let event = LeakEvent {
        kind: "key.leaked",
        action: "revoked",
        key_id: "KEY1",
        tenant: "acme",
        found_at: "https://github.com/o/r/blob/x/.env",
        source: "content",
        reported_at: 1000,
    };
    enqueue(&store, stored.as_ref(), &event, UnixTime(1000))
        .await
        .unwrap();
    Setup { dir, enc, secret }
}

#[tokio::test]
async fn a_webhook_failing_twice_is_delivered_on_the_third_attempt_across_a_restart() {
    let rx = receiver(2).await;
    let s = setup("retry", &rx.url).await;
    let store = Arc::new(SqliteStore::open(&s.dir.join("db")).await.unwrap());
    let first = Deliverer::new(Arc::clone(&store), Arc::clone(&s.enc), schedule(8));
    assert_eq!(first.run_once(UnixTime(1000)).await.unwrap(), 1);
    // Backoff: nothing is due a second later.
    assert_eq!(first.run_once(UnixTime(1001)).await.unwrap(), 0);
    // The issuer restarts: a new process, the same database.
    drop(first);
    drop(store);
    let store = Arc::new(SqliteStore::open(&s.dir.join("db")).await.unwrap());
    let again = Deliverer::new(Arc::clone(&store), Arc::clone(&s.enc), schedule(8));
    assert_eq!(again.run_once(UnixTime(1002)).await.unwrap(), 1);
    assert_eq!(again.run_once(UnixTime(1005)).await.unwrap(), 0);
    assert_eq!(again.run_once(UnixTime(1006)).await.unwrap(), 1);
    assert_eq!(
        again.run_once(UnixTime(5000)).await.unwrap(),
        0,
        "delivered once"
    );
    let calls = rx.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    let (headers, body) = &calls[2];
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["type"], "key.leaked");
    assert_eq!(v["key_id"], "KEY1");
    assert_eq!(v["found_at"], "https://github.com/o/r/blob/x/.env");
    let sig = headers["keymint-signature"].to_str().unwrap();
    assert_eq!(sig, signature(s.secret.as_bytes(), 1006, body));
    assert!(!body.contains(&s.secret));
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[tokio::test]
async fn a_webhook_that_never_answers_well_is_given_up_after_its_attempts() {
    let rx = receiver(usize::MAX).await;
    let s = setup("giveup", &rx.url).await;
    let store = Arc::new(SqliteStore::open(&s.dir.join("db")).await.unwrap());
    let d = Deliverer::new(Arc::clone(&store), Arc::clone(&s.enc), schedule(3));
    for at in [1000, 1002, 1006] {
        assert_eq!(
            d.run_once(UnixTime(at)).await.unwrap(),
            1,
            "attempt at {at}"
        );
    }
    assert_eq!(d.run_once(UnixTime(100_000)).await.unwrap(), 0);
    assert_eq!(rx.calls.lock().unwrap().len(), 3);
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// Holds every call until `release` says true, then answers 500: a receiver that hangs.
async fn holding_receiver() -> (Receiver, tokio::sync::watch::Sender<bool>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let (release, released) = tokio::sync::watch::channel(false);
    let c = Arc::clone(&calls);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (c, mut released) = (Arc::clone(&c), released.clone());
            async move {
                c.lock().unwrap().push((headers, body));
                let _ = released.wait_for(|r| *r).await;
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (Receiver { url, calls }, release)
}

/// Found in review: calls were made one at a time, oldest first, sixteen a round. A tenant whose
/// receiver hangs, with a backlog of leaked keys, held every other tenant's notices behind it
/// (a thousand calls of ten seconds: hours). Now a round takes at most two calls of a tenant and
/// makes them all at once: another tenant's call is made in the same round, while the hanging
/// ones still hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_whose_receiver_hangs_does_not_hold_up_another_tenants_call() {
    let (hang, release) = holding_receiver().await;
    let good = receiver(0).await;
    // `acme` calls the hanging receiver, with 20 more calls queued before `globex`'s one.
    let s = setup("fair", &hang.url).await;
    let store = Arc::new(SqliteStore::open(&s.dir.join("db")).await.unwrap());
    let event = |tenant: &'static str| LeakEvent {
        kind: "key.leaked",
        action: "revoked",
        key_id: "KEY2",
        tenant,
        found_at: "https://github.com/o/r/blob/x/.env",
        source: "content",
        reported_at: 1000,
    };
    let acme = store.tenant_policy("acme").await.unwrap();
    for _ in 0..20 {
        enqueue(&*store, acme.as_ref(), &event("acme"), UnixTime(1000))
            .await
            .unwrap();
    }
    let change = PolicyChange {
        on_leak: None,
        webhook: Some(WebhookChange::parse(&good.url).unwrap()),
    };
    let globex = TenantId::new("globex").unwrap();
    policy::set(
        &*store,
        &s.enc,
        &globex,
        &change,
        UnixTime(900),
        "test".into(),
    )
    .await
    .unwrap();
    let policy = store.tenant_policy("globex").await.unwrap();
    enqueue(&*store, policy.as_ref(), &event("globex"), UnixTime(1001))
        .await
        .unwrap();

    let d = Deliverer::new(Arc::clone(&store), Arc::clone(&s.enc), schedule(8));
    let round = tokio::spawn(async move { d.run_once(UnixTime(1001)).await });
    keymint_testkit::wait_until_async(
        "globex's call, while acme's hang",
        Duration::from_secs(10),
        || async {
            // Two of acme's per round, both hanging.
            let hanging = hang.calls.lock().unwrap().len();
            (good.calls.lock().unwrap().len() == 1 && hanging == 2).then_some(())
        },
    )
    .await;
    release.send(true).unwrap();
    assert_eq!(round.await.unwrap().unwrap(), 3);
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[test]
fn webhook_urls_must_be_https_or_loopback_http() {
    assert!(WebhookChange::parse("https://hooks.example/keymint").is_ok());
    assert!(WebhookChange::parse("http://127.0.0.1:9/h").is_ok());
    assert!(WebhookChange::parse("http://hooks.example/keymint").is_err());
    assert!(WebhookChange::parse("ftp://hooks.example/").is_err());
    assert!(WebhookChange::parse("not a url").is_err());
}
