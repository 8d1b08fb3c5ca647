//! Router tests without a socket: the whole app over `oneshot`, on a store that can go down.

use crate::store::Visibility;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use keymint_jwks::{Issuer, ScopeSet, UnixTime};
use tower::ServiceExt as _;
use zeroize::Zeroizing;

use super::{AppParts, AppState, router};
use crate::domain::keys::key_hash::{KeyHasher, Pepper};
use crate::domain::keys::{self, NewKey};
use crate::domain::revocation;
use crate::domain::settings::Settings;
use crate::domain::signing;
use crate::domain::signing::secret_box::EncryptionKey;
use crate::domain::token::TokenService;
use crate::store::{FlakyStore, SqliteStore};

const ISS: &str = "https://issuer.test";

pub(super) struct Harness {
    pub(super) app: axum::Router,
    pub(super) state: AppState<FlakyStore<SqliteStore>>,
    pub(super) store: Arc<FlakyStore<SqliteStore>>,
    pub(super) hasher: KeyHasher,
    pub(super) key: String,
    /// What the token service counts, for tests of the usage rollups (`flush` it into the store).
    pub(super) uses: crate::domain::usage::UsageLog,
    /// Moves the monotonic clock of the throttle and the rate limiters.
    pub(super) ticker: crate::domain::clock::ManualTicker,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) async fn harness(name: &str) -> Harness {
    let dir = std::env::temp_dir().join(format!("keymint-router-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = SqliteStore::open(&dir.join("db")).await.unwrap();
    let store = Arc::new(FlakyStore::new(sqlite));
    let enc = EncryptionKey::new(&Zeroizing::new([3; 32])).unwrap();
    let hasher = KeyHasher::new(&Pepper::new([4; 32]));
    let now = UnixTime::now();
    signing::ensure_active(&*store, &enc, now).await.unwrap();
    let set = Arc::new(ArcSwap::from_pointee(
        signing::load(&*store, &enc).await.unwrap(),
    ));
    let issuer = Issuer::new(ISS).unwrap();
    let list = revocation::current_list(
        &*store,
        &set.load().active,
        &issuer,
        now,
        Duration::from_secs(3600),
    )
    .await
    .unwrap();
    let (view, key) = keys::create(&*store, &hasher, &NewKey::for_tests(), now, "test")
        .await
        .unwrap();
    assert_eq!(view.state, "active");
    let (ticker, hand) = crate::domain::clock::Ticker::manual();
    let settings = Arc::new(arc_swap::ArcSwap::from_pointee(
        Settings::new(
            issuer.clone(),
            Duration::from_secs(3600),
            Duration::from_secs(60),
            Duration::from_secs(3600),
        )
        .unwrap(),
    ));
    let uses = crate::domain::usage::UsageLog::new();
    let tokens = TokenService::new(
        Arc::clone(&store),
        hasher.clone(),
        Arc::clone(&set),
        Arc::clone(&settings),
        uses.clone(),
    )
    .with_ticker(ticker);
    let feed = crate::domain::revocation::ListFeed::new(list);
    let admin = Arc::new(crate::domain::admin::api::AdminApi::new(
        crate::domain::admin::api::AdminDeps {
            store: Arc::clone(&store),
            hasher: hasher.clone(),
            enc: Arc::new(enc),
            signing: Arc::clone(&set),
            list: feed.clone(),
            gate: crate::domain::admin::AdminGate::new(&issuer, &set.load(), &feed.current())
                .unwrap(),
            settings: Arc::clone(&settings),
        },
    ));
    let state = AppState::from(AppParts {
        tokens,
        signing: set,
        list: feed,
        store: Arc::clone(&store),
        settings: Arc::clone(&settings),
        trusted_proxies: Arc::new(vec!["10.9.0.0/16".parse().unwrap()]),
        admin,
        leaks: Arc::new(crate::domain::leaks::LeakDesk::new(
            Arc::clone(&store),
            hasher.clone(),
            Some(Arc::new(super::leaks_tests::test_keyring())),
            Arc::clone(&settings),
        )),
        streams: crate::domain::client_slots::Connections::new(
            crate::domain::client_slots::ConnectionLimits {
                total: 10_000,
                per_client: 2,
            },
            Arc::new(vec![]),
        ),
        event_frames: super::EventFrames::default(),
    });
    let app = app_from(&state, [127, 0, 0, 1]);
    Harness {
        app,
        state,
        store,
        hasher,
        key: key.expose().to_owned(),
        uses,
        ticker: hand,
        _dir: TempDir(dir),
    }
}

/// The router as seen by a client at `ip`.
pub(super) fn app_from(state: &AppState<FlakyStore<SqliteStore>>, ip: [u8; 4]) -> axum::Router {
    router(state.clone()).layer(MockConnectInfo(SocketAddr::from((ip, 4000))))
}

pub(super) async fn send(
    app: &axum::Router,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

pub(super) fn token_req(key: &str) -> Request<Body> {
    Request::post("/v1/token")
        .header("Authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn token_without_credentials_is_401_with_a_challenge() {
    let h = harness("nocreds").await;
    let (status, headers, body) = send(
        &h.app,
        Request::post("/v1/token").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"keymint\"");
    assert_eq!(body["error"], "invalid_client");
}

/// Found by schemathesis' check that requests the document allows are accepted: the body is optional,
/// which the OpenAPI 3.1 document says as `null` or the object, and a JSON `null` was refused (400).
#[tokio::test]
async fn a_json_null_body_is_no_body() {
    let h = harness("nullbody").await;
    let (status, _, body) = send(
        &h.app,
        Request::post("/v1/token")
            .header("Authorization", format!("Bearer {}", h.key))
            .header("Content-Type", "application/json")
            .body(Body::from("null"))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "a");
}

#[tokio::test]
async fn database_down_means_503_with_retry_after_and_readyz_503() {
    let h = harness("down").await;
    let (status, _, _) = send(&h.app, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    h.store.set_down(true);
    let (status, _, _) = send(&h.app, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // The key is not cached yet, so the exchange needs the database.
    let (status, headers, body) = send(&h.app, token_req(&h.key)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(
        !body.to_string().contains("injected"),
        "internal detail leaked: {body}"
    );
    // Discovery keeps working from memory while the database is away.
    let (status, _, _) = send(
        &h.app,
        Request::get("/.well-known/jwks.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    h.store.set_down(false);
    let (status, _, body) = send(&h.app, token_req(&h.key)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Once cached, a key keeps working through a database outage.
    h.store.set_down(true);
    let (status, _, _) = send(&h.app, token_req(&h.key)).await;
    assert_eq!(status, StatusCode::OK);
}

/// A publishable key for `https://app.example` with the public scope `catalog:read` (declared
/// public here) and `rate_limit` (`None`: the default for publishable keys).
pub(super) async fn publishable_key(
    h: &Harness,
    rate_limit: Option<crate::domain::keys::limits::RateSpec>,
) -> crate::domain::keys::api_key::PrintableKey {
    let now = UnixTime::now();
    keys::put_scope(
        &*h.store,
        &keymint_jwks::Scope::new("catalog:read").unwrap(),
        Visibility::Public,
        now,
        "test",
    )
    .await
    .unwrap();
    keys::create(
        &*h.store,
        &h.hasher,
        &NewKey {
            kind: crate::domain::keys::api_key::KeyKind::Publishable,
            allow_origins: vec![
                crate::domain::keys::origin::Origin::parse("https://app.example").unwrap(),
            ],
            scopes: ScopeSet::parse("catalog:read").unwrap(),
            rate_limit,
            ..NewKey::for_tests()
        },
        now,
        "test",
    )
    .await
    .unwrap()
    .1
}

#[tokio::test]
async fn a_publishable_key_gives_each_client_ip_a_tenth_of_its_quota() {
    let h = harness("perip").await;
    let pk = publishable_key(&h, crate::domain::keys::limits::RateSpec::parse("20/m")).await;
    let req = || {
        Request::post("/v1/token")
            .header("Authorization", format!("Bearer {}", pk.expose()))
            .header("Origin", "https://app.example")
            .body(Body::empty())
            .unwrap()
    };
    let one = app_from(&h.state, [10, 0, 0, 1]);
    let other = app_from(&h.state, [10, 0, 0, 2]);
    assert_eq!(send(&one, req()).await.0, StatusCode::OK);
    assert_eq!(send(&one, req()).await.0, StatusCode::OK);
    assert_eq!(send(&one, req()).await.0, StatusCode::TOO_MANY_REQUESTS);
    // Another client is unaffected.
    let (status, _, body) = send(&other, req()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Seen as a flaky replica test: the change feed re-reads a key whenever it changes (its
/// creation included), and the re-read key came with fresh limiters, so the quota it had spent
/// was forgotten. The limiters now outlive the cached key unless the limit itself changed.
#[tokio::test]
async fn a_key_re_read_after_a_change_keeps_the_quota_it_has_spent() {
    let h = harness("quota-kept").await;
    let now = UnixTime::now();
    let new_key = |rate: &str| NewKey {
        rate_limit: crate::domain::keys::limits::RateSpec::parse(rate),
        ..NewKey::for_tests()
    };
    let (view, key) = keys::create(&*h.store, &h.hasher, &new_key("2/m"), now, "test")
        .await
        .unwrap();
    assert_eq!(
        send(&h.app, token_req(key.expose())).await.0,
        StatusCode::OK
    );
    // What the change watcher does when the feed names the key.
    h.state.tokens.invalidate(&view.key_id);
    assert_eq!(
        send(&h.app, token_req(key.expose())).await.0,
        StatusCode::OK
    );
    h.state.tokens.invalidate(&view.key_id);
    let (status, headers, _) = send(&h.app, token_req(key.expose())).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key("retry-after"));
}

#[tokio::test]
async fn a_key_that_reached_the_proxy_over_plain_http_is_refused_only_on_a_trusted_proxys_word() {
    let h = harness("xfp").await;
    let req = |proto: Option<&str>| {
        let mut r = Request::post("/v1/token").header("Authorization", format!("Bearer {}", h.key));
        if let Some(p) = proto {
            r = r.header("X-Forwarded-Proto", p);
        }
        r.body(Body::empty()).unwrap()
    };
    let via_proxy = app_from(&h.state, [10, 9, 0, 1]);
    let direct = app_from(&h.state, [198, 51, 100, 1]);
    assert_eq!(send(&via_proxy, req(Some("https"))).await.0, StatusCode::OK);
    assert_eq!(send(&via_proxy, req(None)).await.0, StatusCode::OK);
    let (status, _, body) = send(&via_proxy, req(Some("http"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("HTTPS")
    );
    // A client-written "https" in front of the proxy's own "http" does not hide it.
    assert_eq!(
        send(&via_proxy, req(Some("https, http"))).await.0,
        StatusCode::BAD_REQUEST
    );
    // From anyone but a trusted proxy the header means nothing.
    assert_eq!(send(&direct, req(Some("http"))).await.0, StatusCode::OK);
    // The admin API takes credentials too: same rule.
    let admin = |proto: &str| {
        Request::get("/v1/admin/keys")
            .header("Authorization", "Bearer not-even-a-token")
            .header("X-Forwarded-Proto", proto)
            .body(Body::empty())
            .unwrap()
    };
    let (status, headers, _) = send(&via_proxy, admin("http")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(
        send(&via_proxy, admin("https")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&direct, admin("http")).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_trusted_proxies() {
    let h = harness("xff").await;
    // The client address decides the allow-list: this key is for 203.0.113.7 only.
    let now = UnixTime::now();
    let (_, key) = keys::create(
        &*h.store,
        &h.hasher,
        &NewKey {
            allow_ips: vec!["203.0.113.7/32".parse().unwrap()],
            ..NewKey::for_tests()
        },
        now,
        "test",
    )
    .await
    .unwrap();
    let req = |xff: &str| {
        Request::post("/v1/token")
            .header("Authorization", format!("Bearer {}", key.expose()))
            .header("X-Forwarded-For", xff)
            .body(Body::empty())
            .unwrap()
    };
    let via_proxy = app_from(&h.state, [10, 9, 0, 1]);
    let direct = app_from(&h.state, [198, 51, 100, 1]);
    // Through the trusted proxy, the forwarded client address counts...
    assert_eq!(send(&via_proxy, req("203.0.113.7")).await.0, StatusCode::OK);
    // ...but not an address the client itself prepended before the proxy appended the real one.
    assert_eq!(
        send(&via_proxy, req("203.0.113.7, 198.51.100.9")).await.0,
        StatusCode::FORBIDDEN
    );
    // ...nor when the proxy appends the real one with its port (the entry is still an address).
    assert_eq!(
        send(&via_proxy, req("203.0.113.7, 198.51.100.9:4711"))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&via_proxy, req("198.51.100.9, 203.0.113.7:4711"))
            .await
            .0,
        StatusCode::OK
    );
    // From anyone else, the header is ignored.
    assert_eq!(
        send(&direct, req("203.0.113.7")).await.0,
        StatusCode::FORBIDDEN
    );
}

/// On a dual-stack listener (`--listen [::]:…`) every IPv4 peer arrives as `::ffff:a.b.c.d`. It is
/// the IPv4 address for every rule: a key allowed for an IPv4 address admits it, and a trusted
/// proxy given as an IPv4 network is trusted (its forwarded address counts, also when the proxy
/// writes it in mapped form).
#[tokio::test]
async fn an_ipv4_mapped_peer_is_its_ipv4_address_for_allow_lists_and_trusted_proxies() {
    let h = harness("mapped").await;
    let now = UnixTime::now();
    let (_, key) = keys::create(
        &*h.store,
        &h.hasher,
        &NewKey {
            allow_ips: vec!["203.0.113.7/32".parse().unwrap()],
            ..NewKey::for_tests()
        },
        now,
        "test",
    )
    .await
    .unwrap();
    let mapped = |v4: [u8; 4]| {
        let ip = std::net::Ipv4Addr::from(v4).to_ipv6_mapped();
        router(h.state.clone()).layer(MockConnectInfo(SocketAddr::from((ip, 4000))))
    };
    let req = |xff: Option<&str>| {
        let r =
            Request::post("/v1/token").header("Authorization", format!("Bearer {}", key.expose()));
        let r = match xff {
            Some(x) => r.header("X-Forwarded-For", x),
            None => r,
        };
        r.body(Body::empty()).unwrap()
    };
    // The allowed client itself, connected over the dual-stack socket.
    assert_eq!(
        send(&mapped([203, 0, 113, 7]), req(None)).await.0,
        StatusCode::OK
    );
    // Another IPv4 client over the same socket is still refused.
    assert_eq!(
        send(&mapped([198, 51, 100, 1]), req(None)).await.0,
        StatusCode::FORBIDDEN
    );
    // The trusted proxy (10.9.0.0/16) over the dual-stack socket: its header is believed, in
    // either form.
    let proxy = mapped([10, 9, 0, 1]);
    assert_eq!(
        send(&proxy, req(Some("203.0.113.7"))).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(&proxy, req(Some("::ffff:203.0.113.7"))).await.0,
        StatusCode::OK
    );
}

/// Issue #13: every guess of an unknown key ID cost a database query. A key ID the database did
/// not know is remembered (bounded), so guessing it again costs nothing but the guess; creating a
/// key with that ID (the change feed's invalidation) makes it known again.
#[tokio::test]
async fn an_unknown_key_id_is_looked_up_once_and_forgotten_when_a_key_gets_it() {
    let h = harness("unknown").await;
    let (id, unknown) = crate::domain::keys::api_key::generate(
        crate::domain::keys::api_key::KeyKind::Secret,
        crate::domain::keys::api_key::KeyEnv::Live,
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    let (status, _, body) = send(&h.app, token_req(unknown.expose())).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    // With the database away, the same unknown ID is still refused as unknown (no lookup)...
    h.store.set_down(true);
    let (status, _, _) = send(&h.app, token_req(unknown.expose())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // ...while another unknown ID needs the database, which is down.
    let (_, other) = crate::domain::keys::api_key::generate(
        crate::domain::keys::api_key::KeyKind::Secret,
        crate::domain::keys::api_key::KeyEnv::Live,
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    let (status, _, _) = send(&h.app, token_req(other.expose())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    h.store.set_down(false);
    // The change feed's word that this ID changed (a key was created with it) forgets it.
    h.state.tokens.invalidate(id.as_str());
    let (status, _, _) = send(&h.app, token_req(unknown.expose())).await;
    h.store.set_down(true);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "looked up again");
    let (status, _, _) = send(&h.app, token_req(unknown.expose())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "and remembered again");
}
