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
    /// What `/events` pushes to every connection before closing it: (event ID, list).
    pushed: Arc<Mutex<Option<(u64, String)>>>,
    /// The `Last-Event-ID` of every `/events` request, in order.
    last_event_ids: Arc<Mutex<Vec<Option<String>>>>,
}

/// A server-sent event stream that pushes one list and ends (the client reconnects with
/// `Last-Event-ID`, which is recorded).
async fn events(State(s): State<Served>, headers: axum::http::HeaderMap) -> Response {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    s.last_event_ids.lock().unwrap().push(last);
    let body = match s.pushed.lock().unwrap().clone() {
        Some((id, list)) => format!("event: revocations\nid: {id}\ndata: {list}\n\n"),
        None => String::new(),
    };
    ([("content-type", "text/event-stream")], body).into_response()
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
        // A slow server: the tests assert that the client gives up, not how long this took.
        tokio::time::sleep(Duration::from_millis(u64::from(delay))).await;
    }
    match s.fail_with.load(Ordering::SeqCst) {
        0 => s.jwks.lock().unwrap().clone().into_response(),
        code => StatusCode::from_u16(code).unwrap().into_response(),
    }
}

/// The list with an `ETag` (a hash of its bytes), answering 304 to a matching `If-None-Match`, as
/// keymint's issuer does; no `Cache-Control`, so it is polled every `min_refresh`.
async fn tagged_list(State(s): State<Served>, headers: axum::http::HeaderMap) -> Response {
    use std::hash::{Hash as _, Hasher as _};
    s.list_hits.fetch_add(1, Ordering::SeqCst);
    let body = s.list.lock().unwrap().clone();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    let etag = format!("\"{:x}\"", h.finish());
    if headers.get("if-none-match").is_some_and(|v| *v == *etag) {
        s.not_modified.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::NOT_MODIFIED, [("etag", etag)]).into_response();
    }
    ([("etag", etag)], body).into_response()
}

async fn list(State(s): State<Served>) -> Response {
    s.list_hits.fetch_add(1, Ordering::SeqCst);
    let delay = s.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        // A slow server: the tests assert that the client gives up, not how long this took.
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
                .route("/tagged-revocations.jws", get(tagged_list))
                .route("/events", get(events))
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
    setup_paths(jwks_path, "/revocations.jws", cfg)
}

fn setup_paths(
    jwks_path: &str,
    list_path: &str,
    cfg: impl FnOnce(LiveConfig) -> LiveConfig,
) -> (Served, Signer, Verifier, keymint_verifier::live::LiveHandle) {
    setup_full(jwks_path, list_path, false, cfg)
}

/// With `push`, the verifier also subscribes to `/events`.
fn setup_full(
    jwks_path: &str,
    list_path: &str,
    push: bool,
    cfg: impl FnOnce(LiveConfig) -> LiveConfig,
) -> (Served, Signer, Verifier, keymint_verifier::live::LiveHandle) {
    let signer = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let served = Served::default();
    *served.jwks.lock().unwrap() = Jwks::new(vec![signer.key().public_jwk()])
        .unwrap()
        .to_json();
    *served.list.lock().unwrap() = signed_list(&signer, 1, vec![]);
    let base = serve(served.clone());
    let mut live = LiveConfig::new(
        Source::Url(format!("{base}{jwks_path}")),
        Source::Url(format!("{base}{list_path}")),
    )
    .min_refresh(Duration::from_millis(100))
    .max_refresh(Duration::from_millis(300));
    if push {
        live = live.events(format!("{base}/events"));
    }
    let live = cfg(live);
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
    // Scheduled polls every 300 ms at most: a poll after the refetch is the sign that the key-set
    // thread has taken every doorbell the flood rang (it takes them while waiting for the poll).
    let (served, signer, v, handle) = setup(|c| c.kid_cooldown(Duration::from_secs(30)));
    assert!(handle.wait_ready(Duration::from_secs(5)));
    let before = served.jwks_hits.load(Ordering::SeqCst);
    let stats_before = handle.stats();
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
    let flooded = started.elapsed();
    let at_refetch = wait_until("the flood's refetch", Duration::from_secs(3), || {
        let s = handle.stats();
        (s.jwks_kid_refetches > stats_before.jwks_kid_refetches).then_some(s.jwks_fetches)
    });
    // Two more fetches: the refetch itself (if it was not counted yet) and a scheduled poll.
    wait_until(
        "a scheduled poll after the refetch",
        Duration::from_secs(3),
        || (handle.stats().jwks_fetches >= at_refetch + 2).then_some(()),
    );
    let s = handle.stats();
    let fetches = served.jwks_hits.load(Ordering::SeqCst) - before;
    let kid_fetches = s.jwks_kid_refetches - stats_before.jwks_kid_refetches;
    println!(
        "1000 unknown kids in {flooded:?} caused {kid_fetches} key set fetch(es) \
         ({fetches} with the scheduled polls)"
    );
    assert_eq!(kid_fetches, 1, "{s:?}");
    assert_eq!(s.jwks_list_refetches, stats_before.jwks_list_refetches);
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
    wait_until(
        "the new kid to be picked up",
        Duration::from_secs(3),
        || v.verify(&token).is_ok().then_some(()),
    );
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
    // Garbage answers never replace the good copy: verification goes on from it until the
    // maximum age (and not less: see below), then fails closed with its own error (HTTP 503).
    wait_until("failing closed", Duration::from_secs(5), || {
        match v.verify(&token) {
            Ok(_) => None,
            Err(e @ VerifyError::SourcesUnavailable { .. }) => {
                assert!(e.is_unavailable());
                Some(())
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    });
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
    wait_until("recovery", Duration::from_secs(3), || {
        v.verify(&token).is_ok().then_some(())
    });
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
    wait_until("the revocation", Duration::from_secs(3), || {
        matches!(v.verify(&token), Err(VerifyError::Revoked(_))).then_some(())
    });
    // An attacker (or a stale cache) serves an older list without the revocation: once it has
    // been fetched and refused, the newer list is still the one in force.
    let refused = handle.stats().lists_refused;
    *served.list.lock().unwrap() = signed_list(&signer, 3, vec![]);
    wait_until(
        "the rolled-back list to be refused",
        Duration::from_secs(3),
        || (handle.stats().lists_refused > refused).then_some(()),
    );
    assert_eq!(v.revocation_serial(), Some(5));
    assert!(matches!(v.verify(&token), Err(VerifyError::Revoked(_))));
}

#[test]
fn garbage_and_oversized_answers_never_replace_the_good_copy() {
    let (served, signer, v, handle) = setup(|c| c);
    assert!(handle.wait_ready(Duration::from_secs(5)));
    let token = signer.sign_access_token(&live_claims()).unwrap();
    let before = handle.stats();
    *served.jwks.lock().unwrap() = "{\"keys\": [garbage".into();
    *served.list.lock().unwrap() = "x".repeat(100);
    // Both garbage answers fetched and thrown away: the good copy still verifies.
    wait_until(
        "both garbage answers to be refused",
        Duration::from_secs(3),
        || {
            let s = handle.stats();
            (s.jwks_failures > before.jwks_failures && s.lists_refused > before.lists_refused)
                .then_some(())
        },
    );
    v.verify(&token).unwrap();
    let before = handle.stats();
    *served.jwks.lock().unwrap() = format!(
        "{{\"keys\":[],\"pad\":\"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    wait_until(
        "the oversized key set to be refused",
        Duration::from_secs(3),
        || (handle.stats().jwks_failures > before.jwks_failures).then_some(()),
    );
    v.verify(&token).unwrap();
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
    // Re-publishing with a revocation reaches the verifier. A file source reads a file again when
    // its modification time changes: it is set 2 s on, rather than waiting for the clock to move
    // past a coarse file system's granularity.
    let published = std::fs::metadata(dir.join("revocations.jws"))
        .unwrap()
        .modified()
        .unwrap();
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
    std::fs::File::options()
        .write(true)
        .open(dir.join("revocations.jws"))
        .unwrap()
        .set_modified(published + Duration::from_secs(2))
        .unwrap();
    wait_until(
        "the re-published list to be read",
        Duration::from_secs(3),
        || matches!(v.verify(&token), Err(VerifyError::Revoked(_))).then_some(()),
    );
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
    // Both threads time out twice (each attempt 300 ms, then a 100 ms pause), well within 5 s;
    // meanwhile the good copy verifies.
    wait_until(
        "both sources to time out twice",
        Duration::from_secs(5),
        || {
            let s = handle.stats();
            v.verify(&token).unwrap();
            (s.jwks_failures >= before.jwks_failures + 2
                && s.list_fetch_failures >= before.list_fetch_failures + 2)
                .then_some(())
        },
    );
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
    let started = Instant::now();
    // Three polls take at least two intervals: 2 s at one a second, 0.2 s at `min_refresh`.
    wait_until("three more polls", Duration::from_secs(6), || {
        (served.jwks_hits.load(Ordering::SeqCst) >= start + 3).then_some(())
    });
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2), "three polls in {took:?}");
    assert!(served.not_modified.load(Ordering::SeqCst) >= 3);
    // A 304 keeps the key set and counts as a successful refresh.
    v.verify(&signer.sign_access_token(&live_claims()).unwrap())
        .unwrap();
}

/// Rings the key-set thread's doorbell with a token naming a `kid` nobody has, and waits until
/// that refetch happened: the unknown-`kid` cooldown is spent.
fn spend_the_kid_cooldown(
    signer: &Signer,
    v: &Verifier,
    handle: &keymint_verifier::live::LiveHandle,
) {
    let before = handle.stats().jwks_kid_refetches;
    let header = jws::encode_segment(br#"{"alg":"EdDSA","typ":"at+jwt","kid":"random-kid"}"#);
    let t = signer
        .sign_compact(&header, &live_claims().to_json())
        .unwrap();
    assert!(matches!(v.verify(&t), Err(VerifyError::UnknownKid { .. })));
    wait_until("the token's kid refetch", Duration::from_secs(3), || {
        (handle.stats().jwks_kid_refetches > before).then_some(())
    });
}

/// Issue 13, point 2: a list signed by a key the verifier did not have yet was refused; the ETag
/// had already advanced, so every later poll was a 304, and the wake-up for its `kid` fell inside
/// the token cooldown and was dropped. The revocation it carried never took effect (until the key
/// set's next scheduled poll, and not even then). Now the list's unknown `kid` brings the key set
/// at once, on a budget of its own, the refused list is offered again, and the ETag only advances
/// with a list in force.
#[test]
fn a_list_signed_by_a_key_not_yet_known_is_installed_within_a_second_with_the_kid_cooldown_spent() {
    // The key set is polled every minute; the list every 100 ms, with ETags.
    let (served, signer, v, handle) = setup_paths("/jwks.json", "/tagged-revocations.jws", |c| {
        c.max_refresh(Duration::from_secs(60))
    });
    assert!(handle.wait_ready(Duration::from_secs(5)));
    let token = signer.sign_access_token(&live_claims()).unwrap();
    v.verify(&token).unwrap();
    spend_the_kid_cooldown(&signer, &v, &handle);
    wait_until("a 304 on the list", Duration::from_secs(3), || {
        (served.not_modified.load(Ordering::SeqCst) > 0).then_some(())
    });
    // An emergency: a key the verifier has never seen signs the list that revokes the token.
    let successor = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    *served.jwks.lock().unwrap() = Jwks::new(vec![
        signer.key().public_jwk(),
        successor.key().public_jwk(),
    ])
    .unwrap()
    .to_json();
    let entry = RevocationEntry {
        target: RevocationTarget::Jti(live_claims().jti),
        revoked_at: UnixTime::now(),
        drop_after: UnixTime::now().saturating_add(Duration::from_secs(3600)),
    };
    *served.list.lock().unwrap() = signed_list(&successor, 2, vec![entry]);
    let published = Instant::now();
    wait_until("the revocation", Duration::from_secs(1), || {
        matches!(v.verify(&token), Err(VerifyError::Revoked(_))).then_some(())
    });
    println!("installed {:?} after publication", published.elapsed());
    assert_eq!(v.revocation_serial(), Some(2));
    let stats = handle.stats();
    assert_eq!(stats.jwks_list_refetches, 1, "{stats:?}");
    assert_eq!(stats.jwks_kid_refetches, 1, "{stats:?}");
}

/// The list's own refetch cannot be turned into a flood: lists signed by unknown keys cost at most
/// one key-set fetch per serial, and one a second whatever the serials.
#[test]
fn lists_signed_by_unknown_keys_cost_at_most_one_key_set_fetch_per_serial_and_per_second() {
    let (served, _signer, _v, handle) = setup(|c| c.max_refresh(Duration::from_secs(60)));
    assert!(handle.wait_ready(Duration::from_secs(5)));
    let stranger = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    // One forged serial, refused at every 100 ms poll: one refetch.
    let before = handle.stats();
    *served.list.lock().unwrap() = signed_list(&stranger, 1_000, vec![]);
    wait_until("ten refusals", Duration::from_secs(3), || {
        (handle.stats().lists_refused >= before.lists_refused + 10).then_some(())
    });
    let after = handle.stats();
    assert_eq!(
        after.jwks_list_refetches,
        before.jwks_list_refetches + 1,
        "{after:?}"
    );
    // A new serial at every poll of ours, until twenty of them have been refused (about 2 s at
    // the list's 100 ms polls): at most one refetch a second.
    let started = Instant::now();
    let mut serial = 2_000;
    wait_until(
        "twenty forged lists refused",
        Duration::from_secs(10),
        || {
            serial += 1;
            *served.list.lock().unwrap() = signed_list(&stranger, serial, vec![]);
            (handle.stats().lists_refused >= after.lists_refused + 20).then_some(())
        },
    );
    let took = started.elapsed();
    let end = handle.stats();
    let refetches = end.jwks_list_refetches - after.jwks_list_refetches;
    let refused = end.lists_refused - after.lists_refused;
    println!("{refused} forged lists in {took:?}: {refetches} key set refetches");
    assert!(
        (1..=took.as_secs() + 1).contains(&refetches),
        "{refetches} refetches in {took:?}: {end:?}"
    );
    assert_eq!(end.jwks_kid_refetches, before.jwks_kid_refetches);
}

/// Issue 13, point 3: discovery refused plain http to another host, but URLs given to
/// `LiveConfig` directly were fetched as they came.
#[test]
fn plain_http_sources_to_another_host_are_refused_unless_dangerous() {
    use keymint_verifier::BuildError;
    use keymint_verifier::live::LiveError;
    let build = |cfg: LiveConfig| {
        Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap()).build_live(cfg)
    };
    let https = |path: &str| Source::Url(format!("https://issuer.example/{path}"));
    let plain = |path: &str| Source::Url(format!("http://issuer.example/{path}"));
    for (cfg, field) in [
        (
            LiveConfig::new(plain("jwks.json"), https("revocations.jws")),
            "jwks_uri",
        ),
        (
            LiveConfig::new(https("jwks.json"), plain("revocations.jws")),
            "keymint_revocation_list_uri",
        ),
        (
            LiveConfig::new(https("jwks.json"), https("revocations.jws"))
                .events("http://issuer.example/events"),
            "keymint_revocation_events_uri",
        ),
    ] {
        match build(cfg) {
            Err(BuildError::Live(LiveError::InsecureUri { field: f, uri })) => {
                assert_eq!(f, field);
                assert!(uri.starts_with("http://issuer.example/"), "{uri}");
            }
            other => panic!("{field}: expected InsecureUri, got {:?}", other.map(|_| ())),
        }
    }
    // Opting out is possible, under `dangerous`. (Files that do not exist: the key set never
    // loads, so the events thread never connects anywhere.)
    let missing = std::env::temp_dir().join("keymint-no-such-dir-for-this-test");
    let cfg = LiveConfig::new(
        Source::File(missing.join("jwks.json")),
        Source::File(missing.join("revocations.jws")),
    )
    .events("http://issuer.example/events");
    assert!(build(cfg.clone()).is_err());
    build(cfg.dangerous().allow_plain_http_to_any_host()).unwrap();
}

/// Issue 13, point 2, on the push channel: the event ID advanced before the list was checked, so
/// after a reconnection `Last-Event-ID` told the issuer the refused list had been received, and
/// it was never sent again. The ID now advances only with a list in force.
#[test]
fn a_refused_pushed_list_does_not_advance_last_event_id() {
    let (served, signer, v, handle) = setup_full("/jwks.json", "/revocations.jws", true, |c| c);
    assert!(handle.wait_ready(Duration::from_secs(5)));
    let token = signer.sign_access_token(&live_claims()).unwrap();
    let successor = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let entry = RevocationEntry {
        target: RevocationTarget::Jti(live_claims().jti),
        revoked_at: UnixTime::now(),
        drop_after: UnixTime::now().saturating_add(Duration::from_secs(3600)),
    };
    let pushed = signed_list(&successor, 2, vec![entry]);
    *served.pushed.lock().unwrap() = Some((2, pushed));
    // The key set does not have the successor yet: every push of the list is refused, and every
    // reconnection still asks from before it.
    let connections = served.last_event_ids.lock().unwrap().len();
    wait_until("three more connections", Duration::from_secs(5), || {
        (served.last_event_ids.lock().unwrap().len() >= connections + 3).then_some(())
    });
    assert!(handle.stats().events >= 2, "{:?}", handle.stats());
    let ids = served.last_event_ids.lock().unwrap().clone();
    assert!(
        ids.iter().all(|id| id.as_deref() != Some("2")),
        "Last-Event-ID advanced past a refused list: {ids:?}"
    );
    v.verify(&token).unwrap();
    // Once the key set has the successor, the list is installed and the ID advances.
    *served.jwks.lock().unwrap() = Jwks::new(vec![
        signer.key().public_jwk(),
        successor.key().public_jwk(),
    ])
    .unwrap()
    .to_json();
    wait_until("the revocation", Duration::from_secs(3), || {
        matches!(v.verify(&token), Err(VerifyError::Revoked(_))).then_some(())
    });
    wait_until("Last-Event-ID: 2", Duration::from_secs(5), || {
        (served.last_event_ids.lock().unwrap().last() == Some(&Some("2".to_owned()))).then_some(())
    });
}
