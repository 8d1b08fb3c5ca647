//! Fault injection on the live sources (issue #8): the key set and the revocation list each come
//! from a raw loopback server that the test can take down, or make send an endless body, trickle
//! one byte at a time, or announce and stream 100 MB. In every case the good copy keeps verifying
//! tokens, each refresh gives up within the documented limits (the size caps, 1 MiB for the key
//! set and 64 MiB for the list, and the per-request deadline), the server never gets to write much
//! more than the cap, the handle counts the failures, and once the endpoint is fixed fresh
//! documents come through again.
//!
//! The revocation events stream gets the same treatment: an endless line of pushed list is cut at
//! the list's cap and the stream is dropped and reconnected.
//!
//! Slow headers, HTTP 500, garbage and rolled-back lists are in `live_sources.rs`.
//!
//! How much the server managed to write bounds what the client can have read, and so what it can
//! hold in memory: the bytes are either read by the client or still queued in the two kernel
//! socket buffers when it hangs up. Those buffers are at most the third fields of
//! `net.ipv4.tcp_rmem` and `tcp_wmem` (32 MiB and 4 MiB on a stock Linux), so a fetch that stops at
//! the cap lets the server write at most `cap + rmem_max + wmem_max` plus a little framing. The
//! process's RSS is no good as a measure here: the tests of this file run in parallel in one
//! process.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use keymint_jwks::*;
use keymint_tests::raw_server::{
    Answer, Conn, Ending, HUNDRED_MB, LIST_CAP, RawServer, TRICKLE, endless_line_bound,
    socket_slack,
};
use keymint_verifier::live::{LiveConfig, LiveHandle, LiveStats, Source};
use keymint_verifier::{Verifier, VerifyError};

/// The documented key-set cap (`LiveConfig` default, enforced in `verifier-lib/src/live/fetch.rs`).
const JWKS_CAP: u64 = 1024 * 1024;
/// The per-request deadline the fixture configures (connect, read, and the whole request).
const TIMEOUT: Duration = Duration::from_secs(1);
/// Between a refresh giving up and the server noticing: at most one trickle interval and a
/// scheduling delay on a busy machine.
const NOTICE: Duration = Duration::from_millis(700);

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

fn live_claims(jti: &str) -> Claims {
    let now = UnixTime::now();
    let mut c = claims();
    c.iat = now;
    c.nbf = Some(now);
    c.exp = now.saturating_add(Duration::from_secs(600));
    c.jti = Jti::new(jti).unwrap();
    c
}

fn key_set(signers: &[&Signer]) -> String {
    Jwks::new(signers.iter().map(|s| s.key().public_jwk()).collect())
        .unwrap()
        .to_json()
}

/// The token `token` is revoked by this list.
fn revoking_list(signer: &Signer, serial: u64) -> String {
    let entry = RevocationEntry {
        target: RevocationTarget::Jti(Jti::new("jti-first").unwrap()),
        revoked_at: UnixTime::now(),
        drop_after: UnixTime::now().saturating_add(Duration::from_secs(3600)),
    };
    signed_list(signer, serial, vec![entry])
}

struct Fixture {
    signer: Signer,
    jwks: RawServer,
    list: RawServer,
    verifier: Verifier,
    handle: LiveHandle,
    /// A token with `jti-first`, verifying from the first key set.
    token: String,
}

/// Both sources up and loaded; polling every 100 to 300 ms with a 1 s deadline per request.
fn fixture(cfg: impl FnOnce(LiveConfig) -> LiveConfig) -> Fixture {
    let signer = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let jwks = RawServer::start(Answer::Doc(key_set(&[&signer])));
    let list = RawServer::start(Answer::Doc(signed_list(&signer, 1, vec![])));
    let live = cfg(LiveConfig::new(
        Source::Url(jwks.url("/jwks.json")),
        Source::Url(list.url("/revocations.jws")),
    )
    .min_refresh(Duration::from_millis(100))
    .max_refresh(Duration::from_millis(300))
    .timeout(TIMEOUT));
    let (verifier, handle) =
        Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
            .build_live(live)
            .unwrap();
    assert!(handle.wait_ready(Duration::from_secs(5)));
    let token = signer.sign_access_token(&live_claims("jti-first")).unwrap();
    verifier.verify(&token).unwrap();
    Fixture {
        signer,
        jwks,
        list,
        verifier,
        handle,
        token,
    }
}

#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Jwks,
    List,
}

impl Endpoint {
    fn server(self, f: &Fixture) -> &RawServer {
        match self {
            Self::Jwks => &f.jwks,
            Self::List => &f.list,
        }
    }

    fn cap(self) -> u64 {
        match self {
            Self::Jwks => JWKS_CAP,
            Self::List => LIST_CAP,
        }
    }

    fn failures(self, s: &LiveStats) -> u64 {
        match self {
            Self::Jwks => s.jwks_failures,
            Self::List => s.list_fetch_failures,
        }
    }
}

/// Serves `fault` on `endpoint` until three refreshes have met it and given up, checking all the
/// while that the good copy verifies; then checks the failures were counted, fixes the endpoint
/// with a fresh document and waits for it to be installed. Returns the faulty connections.
fn survive(endpoint: Endpoint, fault: Answer) -> Vec<Conn> {
    let f = fixture(|c| c);
    let server = endpoint.server(&f);
    let before = endpoint.failures(&f.handle.stats());
    server.set(fault.clone());
    let started = Instant::now();
    wait_until("three refreshes giving up", Duration::from_secs(15), || {
        f.verifier.verify(&f.token).unwrap();
        (server.conns(fault.kind()).len() >= 3
            && endpoint.failures(&f.handle.stats()) >= before + 3)
            .then_some(())
    });
    let conns = server.conns(fault.kind());
    println!(
        "{endpoint:?}, {}: {} refreshes gave up in {:?}: {conns:?}",
        fault.kind(),
        conns.len(),
        started.elapsed()
    );
    for c in &conns {
        assert_eq!(c.ending, Ending::ClientHungUp, "{c:?}");
        assert!(c.lasted < TIMEOUT + NOTICE, "{c:?}");
    }
    f.verifier.verify(&f.token).unwrap();
    // Fixed: a fresh document comes through.
    match endpoint {
        Endpoint::Jwks => {
            let next = Signer::new(SigningKey::generate(Algorithm::Es256).unwrap());
            server.set(Answer::Doc(key_set(&[&f.signer, &next])));
            let token = next.sign_access_token(&live_claims("jti-next")).unwrap();
            wait_until("the new key set", Duration::from_secs(3), || {
                (f.verifier.verify(&token).is_ok()).then_some(())
            });
        }
        Endpoint::List => {
            server.set(Answer::Doc(revoking_list(&f.signer, 2)));
            wait_until("the new list", Duration::from_secs(3), || {
                (matches!(f.verifier.verify(&f.token), Err(VerifyError::Revoked(_)))).then_some(())
            });
        }
    }
    conns
}

fn endless_body(endpoint: Endpoint) {
    let bound = endpoint.cap() + socket_slack();
    for c in survive(endpoint, Answer::Endless) {
        // Cut at the cap (or by the deadline): never more than the cap reached the client.
        assert!(c.body_bytes <= bound, "{c:?} > {bound}");
    }
}

#[test]
fn an_endless_key_set_is_cut_at_the_cap_and_the_good_copy_stays() {
    endless_body(Endpoint::Jwks);
}

#[test]
fn an_endless_list_is_cut_at_the_cap_and_the_good_copy_stays() {
    endless_body(Endpoint::List);
}

fn trickle(endpoint: Endpoint) {
    for c in survive(endpoint, Answer::Trickle) {
        // Bytes keep coming, so no read times out: the whole-request deadline ends it, after most
        // of `TIMEOUT` (it also covers connecting and the headers).
        assert!(c.lasted >= TIMEOUT / 2, "{c:?}");
        assert!(
            c.body_bytes <= 2 * TIMEOUT.as_millis() as u64 / TRICKLE.as_millis() as u64,
            "{c:?}"
        );
    }
}

#[test]
fn an_endless_trickle_of_key_set_is_cut_by_the_deadline() {
    trickle(Endpoint::Jwks);
}

#[test]
fn an_endless_trickle_of_list_is_cut_by_the_deadline() {
    trickle(Endpoint::List);
}

fn hundred_mb(endpoint: Endpoint) {
    // Refused on the announced length: what the server wrote only filled the socket buffers.
    let bound = socket_slack();
    assert!(bound < HUNDRED_MB / 2);
    for c in survive(endpoint, Answer::Huge) {
        assert!(c.body_bytes <= bound, "{c:?} > {bound}");
    }
}

#[test]
fn a_100_mb_key_set_is_refused_unread_and_the_good_copy_stays() {
    hundred_mb(Endpoint::Jwks);
}

#[test]
fn a_100_mb_list_is_refused_unread_and_the_good_copy_stays() {
    hundred_mb(Endpoint::List);
}

#[test]
fn an_endless_pushed_event_line_is_cut_at_the_list_cap_and_the_stream_reconnects() {
    let events = RawServer::start(Answer::EndlessEventLine);
    let f = fixture(|c| c.events(events.url("/events")));
    let bound = LIST_CAP + socket_slack();
    assert!(bound < endless_line_bound());
    let started = Instant::now();
    wait_until(
        "two event streams dropped at the cap",
        Duration::from_secs(20),
        || {
            f.verifier.verify(&f.token).unwrap();
            (events.conns("endless event line").len() >= 2).then_some(())
        },
    );
    let conns = events.conns("endless event line");
    println!(
        "events: {} streams dropped in {:?}: {conns:?}",
        conns.len(),
        started.elapsed()
    );
    for c in &conns {
        // The client hung up at the cap, long before the server's own safety stop.
        assert_eq!(c.ending, Ending::ClientHungUp, "{c:?}");
        assert!(c.body_bytes <= bound, "{c:?} > {bound}");
    }
    // Nothing was taken for an event, and the good copy stays.
    let s = f.handle.stats();
    assert_eq!(s.events, 0, "{s:?}");
    f.verifier.verify(&f.token).unwrap();
}

/// Many short `data:` lines whose sum outgrows a list: the client stops buffering at the cap
/// (each line alone passes the line cap) and reconnects.
#[test]
fn pushed_data_lines_adding_up_past_the_list_cap_are_cut_and_the_stream_reconnects() {
    let events = RawServer::start(Answer::EndlessDataLines);
    let f = fixture(|c| c.events(events.url("/events")));
    let bound = LIST_CAP + socket_slack();
    wait_until(
        "two event streams dropped at the cap",
        Duration::from_secs(30),
        || {
            f.verifier.verify(&f.token).unwrap();
            (events.conns("endless data lines").len() >= 2).then_some(())
        },
    );
    for c in &events.conns("endless data lines") {
        assert_eq!(c.ending, Ending::ClientHungUp, "{c:?}");
        assert!(c.body_bytes <= bound, "{c:?} > {bound}");
    }
    assert_eq!(f.handle.stats().events, 0);
    f.verifier.verify(&f.token).unwrap();
}

/// Found in review: with the push channel up, the list is polled only every `max_refresh` (the
/// fallback); when the channel went down and could not reconnect (the issuer's events route down,
/// a stream limit), nothing brought polling back, so a revocation waited out `max_refresh` (5
/// minutes by default). Losing the channel now ends that wait.
#[test]
fn a_lost_push_channel_brings_list_polling_back_at_once() {
    let mut events = RawServer::start(Answer::KeepAliveEvents);
    let f = fixture(|c| {
        c.events(events.url("/events"))
            .max_refresh(Duration::from_secs(600))
    });
    // The channel is up and the list has been polled under it: the next poll is 600 s away.
    wait_until("a list poll under push", Duration::from_secs(10), || {
        (f.handle.stats().list_polls_pushed >= 1).then_some(())
    });
    // A revocation is published while the channel goes down for good.
    f.list.set(Answer::Doc(revoking_list(&f.signer, 2)));
    events.go_down();
    wait_until(
        "the revocation, polled once the channel was lost",
        Duration::from_secs(20),
        || f.verifier.verify(&f.token).is_err().then_some(()),
    );
}

#[test]
fn sources_that_go_down_are_served_stale_then_fail_closed_then_recover_on_the_same_port() {
    let mut f = fixture(|c| c.max_stale(Duration::from_secs(2)));
    let before = f.handle.stats();
    f.jwks.go_down();
    f.list.go_down();
    let down = Instant::now();
    assert!(
        TcpStream::connect(f.jwks.addr).is_err(),
        "the port still accepts connections"
    );
    // Stale-if-error: the good copy goes on verifying until the key set is older than
    // `max_stale`, then verification fails closed (and not sooner: see below).
    wait_until("failing closed", Duration::from_secs(5), || {
        match f.verifier.verify(&f.token) {
            Ok(_) => None,
            Err(VerifyError::SourcesUnavailable {
                last_refresh: Some(_),
            }) => Some(()),
            Err(e) => panic!("unexpected {e:?}"),
        }
    });
    let failed_closed = down.elapsed();
    // Ages are whole seconds, and the last good refresh was up to one poll before the outage.
    assert!(
        failed_closed >= Duration::from_millis(1500),
        "{failed_closed:?}"
    );
    // A refused connection costs nothing, so each source kept retrying every `min_refresh`.
    let s = f.handle.stats();
    println!(
        "down: failed closed after {failed_closed:?}, {} key-set and {} list failures",
        s.jwks_failures - before.jwks_failures,
        s.list_fetch_failures - before.list_fetch_failures
    );
    assert!(s.jwks_failures - before.jwks_failures >= 5, "{s:?}");
    assert!(
        s.list_fetch_failures - before.list_fetch_failures >= 5,
        "{s:?}"
    );
    // Back on the same port, with a new key and a revocation: both are picked up.
    let next = Signer::new(SigningKey::generate(Algorithm::Es256).unwrap());
    f.jwks.set(Answer::Doc(key_set(&[&f.signer, &next])));
    f.list.set(Answer::Doc(revoking_list(&f.signer, 2)));
    f.jwks.come_back();
    f.list.come_back();
    let back = Instant::now();
    let token = next.sign_access_token(&live_claims("jti-next")).unwrap();
    wait_until("recovery", Duration::from_secs(3), || {
        (f.verifier.verify(&token).is_ok()
            && matches!(f.verifier.verify(&f.token), Err(VerifyError::Revoked(_))))
        .then_some(())
    });
    println!("down: recovered {:?} after coming back", back.elapsed());
}
