//! Live key sources against a loopback server whose answers the test controls: readiness, the
//! unknown-`kid` cooldown, stale-if-error then fail-closed, rollback refusal, garbage and oversized
//! answers, slow answers. Sources that go down, endless bodies and 100 MB bodies are in
//! `live_source_faults.rs`.

mod common;

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::*;
use keymint_jwks::*;
use keymint_verifier::live::{LiveConfig, Source};
use keymint_verifier::{Verifier, VerifyError};

#[derive(Clone, Default)]
struct Served {
    jwks: Arc<Mutex<String>>,
    list: Arc<Mutex<String>>,
    /// When non-zero, every answer has this status.
    fail_with: Arc<AtomicU16>,
    jwks_hits: Arc<AtomicUsize>,
    list_hits: Arc<AtomicUsize>,
    /// When non-zero, every answer is delayed by this many milliseconds.
    delay_ms: Arc<AtomicU16>,
    not_modified: Arc<AtomicUsize>,
}

/// The key set with `ETag` and `Cache-Control: max-age=1`, answering 304 to a matching
/// `If-None-Match`.
async fn cached_jwks(State(s): State<Served>, headers: axum::http::HeaderMap) -> Response {
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let cache = [("etag", "\"v1\""), ("cache-control", "public, max-age=1")];
    if headers.get("if-none-match").is_some_and(|v| v == "\"v1\"") {
        s.not_modified.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (cache, s.jwks.lock().unwrap().clone()).into_response()
}

async fn jwks(State(s): State<Served>) -> Response {
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let delay = s.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(u64::from(delay))).await;
    }
    match s.fail_with.load(Ordering::SeqCst) {
        0 => s.jwks.lock().unwrap().clone().into_response(),
        code => StatusCode::from_u16(code).unwrap().into_response(),
    }
}

async fn list(State(s): State<Served>) -> Response {
    s.list_hits.fetch_add(1, Ordering::SeqCst);
    let delay = s.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(u64::from(delay))).await;
    }
    match s.fail_with.load(Ordering::SeqCst) {
        0 => s.list.lock().unwrap().clone().into_response(),
        code => StatusCode::from_u16(code).unwrap().into_response(),
    }
}

fn serve(served: Served) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new()
                .route("/jwks.json", get(jwks))
                .route("/cached-jwks.json", get(cached_jwks))
                .route("/revocations.jws", get(list))
                .with_state(served);
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{addr}")
}

fn signed_list(signer: &Signer, serial: u64, entries: Vec<RevocationEntry>) -> String {
    let now = UnixTime::now();
    signer
        .sign_revocation_list(&RevocationList {
            v: 1,
            iss: Issuer::new(ISS).unwrap(),
            serial,
            iat: now,
            exp: now.saturating_add(Duration::from_secs(3600)),
            entries,
        })
        .unwrap()
        .jws()
        .to_owned()
}

fn live_claims() -> Claims {
    let now = UnixTime::now();
    let mut c = claims();
    c.iat = now;
    c.nbf = Some(now);
    c.exp = now.saturating_add(Duration::from_secs(600));
    c
}

fn setup(
    cfg: impl FnOnce(LiveConfig) -> LiveConfig,
) -> (Served, Signer, Verifier, keymint_verifier::live::LiveHandle) {
    setup_at("/jwks.json", cfg)
}

fn setup_at(
    jwks_path: &str,
    cfg: impl FnOnce(LiveConfig) -> LiveConfig,
) -> (Served, Signer, Verifier, keymint_verifier::live::LiveHandle) {
    let signer = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let served = Served::default();
    *served.jwks.lock().unwrap() = Jwks::new(vec![signer.key().public_jwk()])
        .unwrap()
        .to_json();
    *served.list.lock().unwrap() = signed_list(&signer, 1, vec![]);
    let base = serve(served.clone());
    let live = cfg(LiveConfig::new(
        Source::Url(format!("{base}{jwks_path}")),
        Source::Url(format!("{base}/revocations.jws")),
    )
    .min_refresh(Duration::from_millis(100))
    .max_refresh(Duration::from_millis(300)));
    let (v, handle) = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
        .build_live(live)
        .unwrap();
    (served, signer, v, handle)
}

#[test]
fn nothing_verifies_before_the_first_load_and_everything_after() {
    let (_, signer, v, handle) = setup(|c| c);
    let token = signer.sign_access_token(&live_claims()).unwrap();
    // Straight after the build nothing may be loaded yet; afterwards it must verify.
    if let Err(e) = v.verify(&token) {
        assert!(e.is_unavailable(), "{e:?}");
    }
    assert!(handle.wait_ready(Duration::from_secs(5)));
    v.verify(&token).unwrap();
}

#[test]
fn a_flood_of_unknown_kids_is_one_refetch_per_cooldown() {
    let (served, signer, v, handle) = setup(|c| {
        c.kid_cooldown(Duration::from_secs(30))
            .max_refresh(Duration::from_secs(60))
            .min_refresh(Duration::from_secs(30))
    });
    assert!(handle.wait_ready(Duration::from_secs(5)));
    let before = served.jwks_hits.load(Ordering::SeqCst);
    let header = |kid: &str| {
        jws::encode_segment(
            serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid})
                .to_string()
                .as_bytes(),
        )
    };
    let started = Instant::now();
    for i in 0..1000 {
        let t = signer
            .sign_compact(
                &header(&format!("random-kid-{i}")),
                &live_claims().to_json(),
            )
            .unwrap();
        assert!(matches!(v.verify(&t), Err(VerifyError::UnknownKid { .. })));
    }
    std::thread::sleep(Duration::from_millis(500));
    let fetches = served.jwks_hits.load(Ordering::SeqCst) - before;
    println!(
        "1000 unknown kids in {:?} caused {fetches} key set fetch(es)",
        started.elapsed()
    );
    assert!(fetches <= 1, "{fetches} fetches");
    assert_eq!(handle.stats().jwks_kid_refetches, 1);
}

#[test]
fn a_new_kid_is_picked_up_without_a_restart() {
    let (served, signer, v, handle) = setup(|c| {
        c.kid_cooldown(Duration::from_millis(200))
            .max_refresh(Duration::from_secs(60))
            .min_refresh(Duration::from_secs(30))
    });
    assert!(handle.wait_ready(Duration::from_secs(5)));
    let next = Signer::new(SigningKey::generate(Algorithm::Es256).unwrap());
    *served.jwks.lock().unwrap() =
        Jwks::new(vec![signer.key().public_jwk(), next.key().public_jwk()])
            .unwrap()
            .to_json();
    let token = next.sign_access_token(&live_claims()).unwrap();
    // The first sight of the new kid fails and rings the doorbell; the refetch brings the key.
    assert!(matches!(
        v.verify(&token),
        Err(VerifyError::UnknownKid { .. })
    ));
    let deadline = Instant::now() + Duration::from_secs(3);
    while v.verify(&token).is_err() {
        assert!(Instant::now() < deadline, "the new kid was never picked up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn stale_if_error_then_fail_closed() {
    let (served, signer, v, handle) = setup(|c| c.max_stale(Duration::from_secs(2)));
    assert!(handle.wait_ready(Duration::from_secs(5)));
    let token = signer.sign_access_token(&live_claims()).unwrap();
    v.verify(&token).unwrap();
    let before = handle.stats();
    served.fail_with.store(500, Ordering::SeqCst);
    let down = Instant::now();
    // Garbage answers never replace the good copy: verification goes on from it...
    while down.elapsed() < Duration::from_millis(1000) {
        v.verify(&token).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    // ...until the maximum age, then fails closed with its own error (HTTP 503).
    let deadline = down + Duration::from_secs(5);
    loop {
        match v.verify(&token) {
            Ok(_) => {}
            Err(e @ VerifyError::SourcesUnavailable { .. }) => {
                assert!(e.is_unavailable());
                break;
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
        assert!(Instant::now() < deadline, "never failed closed");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Ages are whole seconds, and the last good refresh was up to one poll before the outage.
    assert!(
        down.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        down.elapsed()
    );
    // Every 500 was counted, on both sources (one poll per 100 ms, so far more than 3).
    let s = handle.stats();
    assert!(s.jwks_failures >= before.jwks_failures + 3, "{s:?}");
    assert!(
        s.list_fetch_failures >= before.list_fetch_failures + 3,
        "{s:?}"
    );
    // The source comes back: so does verification.
    served.fail_with.store(0, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(3);
    while v.verify(&token).is_err() {
        assert!(Instant::now() < deadline, "did not recover");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_rolled_back_list_is_refused_and_newer_revocations_stay_in_force() {
    let (served, signer, v, handle) = setup(|c| c);
    assert!(handle.wait_ready(Duration::from_secs(5)));
    let token = signer.sign_access_token(&live_claims()).unwrap();
    let entry = RevocationEntry {
        target: RevocationTarget::Jti(live_claims().jti),
        revoked_at: UnixTime::now(),
        drop_after: UnixTime::now().saturating_add(Duration::from_secs(3600)),
    };
    *served.list.lock().unwrap() = signed_list(&signer, 5, vec![entry]);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !matches!(v.verify(&token), Err(VerifyError::Revoked(_))) {
        assert!(Instant::now() < deadline, "revocation never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    // An attacker (or a stale cache) serves an older list without the revocation.
    *served.list.lock().unwrap() = signed_list(&signer, 3, vec![]);
    std::thread::sleep(Duration::from_millis(800));
    assert!(handle.stats().lists_refused >= 1);
    assert_eq!(v.revocation_serial(), Some(5));
    assert!(matches!(v.verify(&token), Err(VerifyError::Revoked(_))));
}

#[test]
fn garbage_and_oversized_answers_never_replace_the_good_copy() {
    let (served, signer, v, handle) = setup(|c| c);
    assert!(handle.wait_ready(Duration::from_secs(5)));
    let token = signer.sign_access_token(&live_claims()).unwrap();
    *served.jwks.lock().unwrap() = "{\"keys\": [garbage".into();
    *served.list.lock().unwrap() = "x".repeat(100);
    std::thread::sleep(Duration::from_millis(600));
    v.verify(&token).unwrap();
    *served.jwks.lock().unwrap() = format!(
        "{{\"keys\":[],\"pad\":\"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    std::thread::sleep(Duration::from_millis(600));
    v.verify(&token).unwrap();
    assert!(handle.stats().lists_refused >= 1);
}

#[test]
fn files_written_by_publish_are_a_source_too() {
    let signer = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let dir = std::env::temp_dir().join(format!("keymint-live-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("jwks.json"),
        Jwks::new(vec![signer.key().public_jwk()])
            .unwrap()
            .to_json(),
    )
    .unwrap();
    std::fs::write(dir.join("revocations.jws"), signed_list(&signer, 1, vec![])).unwrap();
    let (v, handle) = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
        .build_live(
            LiveConfig::new(
                Source::File(dir.join("jwks.json")),
                Source::File(dir.join("revocations.jws")),
            )
            .min_refresh(Duration::from_millis(100))
            .max_refresh(Duration::from_millis(200)),
        )
        .unwrap();
    assert!(handle.wait_ready(Duration::from_secs(5)));
    let token = signer.sign_access_token(&live_claims()).unwrap();
    v.verify(&token).unwrap();
    // Re-publishing with a revocation reaches the verifier.
    std::thread::sleep(Duration::from_millis(1100)); // a new modification time
    let entry = RevocationEntry {
        target: RevocationTarget::Key(live_claims().sub),
        revoked_at: UnixTime::now(),
        drop_after: UnixTime::now().saturating_add(Duration::from_secs(3600)),
    };
    std::fs::write(
        dir.join("revocations.jws"),
        signed_list(&signer, 2, vec![entry]),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while !matches!(v.verify(&token), Err(VerifyError::Revoked(_))) {
        assert!(Instant::now() < deadline, "re-published list never read");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_slow_source_times_out_and_the_good_copy_stays() {
    let (served, signer, v, handle) = setup(|c| {
        c.timeout(Duration::from_millis(300))
            .max_stale(Duration::from_secs(60))
    });
    assert!(handle.wait_ready(Duration::from_secs(5)));
    let token = signer.sign_access_token(&live_claims()).unwrap();
    // Answers now take 5 s, far beyond the 300 ms timeout, and carry a key set without our key
    // and a list revoking the token: neither may ever arrive.
    served.delay_ms.store(5000, Ordering::SeqCst);
    *served.jwks.lock().unwrap() = Jwks::default().to_json();
    let entry = RevocationEntry {
        target: RevocationTarget::Jti(live_claims().jti),
        revoked_at: UnixTime::now(),
        drop_after: UnixTime::now().saturating_add(Duration::from_secs(3600)),
    };
    *served.list.lock().unwrap() = signed_list(&signer, 2, vec![entry]);
    let before = handle.stats();
    let list_hits = served.list_hits.load(Ordering::SeqCst);
    let started = Instant::now();
    // Both threads time out twice (each attempt 300 ms, then a 100 ms pause), well within 5 s.
    loop {
        let s = handle.stats();
        if s.jwks_failures >= before.jwks_failures + 2
            && s.list_fetch_failures >= before.list_fetch_failures + 2
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "fetches did not time out: {s:?}"
        );
        v.verify(&token).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(served.list_hits.load(Ordering::SeqCst) >= list_hits + 2);
    v.verify(&token).unwrap();
    assert_eq!(v.revocation_serial(), Some(1));
}

#[test]
fn cache_control_paces_polling_and_etags_make_refreshes_304s() {
    // max-age=1 inside [100 ms, 10 s]: about one poll a second, each a 304.
    let (served, signer, v, handle) = setup_at("/cached-jwks.json", |c| {
        c.max_refresh(Duration::from_secs(10))
    });
    assert!(handle.wait_ready(Duration::from_secs(5)));
    let start = served.jwks_hits.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(2500));
    let polls = served.jwks_hits.load(Ordering::SeqCst) - start;
    assert!((1..=4).contains(&polls), "{polls} polls in 2.5 s");
    assert!(served.not_modified.load(Ordering::SeqCst) >= 1);
    // A 304 keeps the key set and counts as a successful refresh.
    v.verify(&signer.sign_access_token(&live_claims()).unwrap())
        .unwrap();
}
