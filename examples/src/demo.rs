//! The browser demo, all on loopback: a keymint issuer (embedded SQLite in a temp dir), an API
//! protected by `keymint-verifier` (live sources, push, DPoP), and the page's own backend, which
//! serves `examples/browser/` and delegates tokens (it holds a secret key and exchanges it for a
//! narrower token bound to the browser's DPoP key).

use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use keymint::domain::keys::api_key::{KeyEnv, KeyKind};
use keymint::domain::keys::key_hash::KeyHasher;
use keymint::domain::keys::origin::Origin;
use keymint::domain::keys::{self, NewKey};
use keymint::server::ServeConfig;
use keymint::store::{SqliteStore, Visibility};
use keymint_jwks::{Audience, Issuer, Scope, ScopeSet, TenantId, UnixTime};
use keymint_verifier::Verifier;
use keymint_verifier::layer::{Auth, AuthRejection};
use keymint_verifier::live::LiveConfig;

type BoxError = Box<dyn Error + Send + Sync>;

/// The audience of the demo API.
pub const AUDIENCE: &str = "https://api.example";

const INDEX: &str = include_str!("../browser/index.html");
const APP_JS: &str = include_str!("../browser/app.js");

/// A running demo.
#[derive(Debug)]
pub struct Demo {
    /// The page, on its allowed origin.
    pub page_url: String,
    /// The same page on an origin no key allows.
    pub foreign_page_url: String,
    /// The issuer.
    pub issuer_url: String,
    /// The API.
    pub api_url: String,
    /// The data dir (removed on drop).
    pub data_dir: PathBuf,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

#[derive(Clone)]
struct PageState {
    config: serde_json::Value,
    issuer_url: String,
    secret_key: Arc<str>,
    /// The demo's stand-in for a login: one random session cookie (`SameSite=Strict`) handed to
    /// whoever loads the page, which keeps other sites' pages from calling `/delegate` but not a
    /// script that loads the page first. A real backend delegates only to its own authenticated
    /// user (its login session): `/delegate` mints tokens with the customer's secret key.
    session: Arc<str>,
}

/// The session cookie's name.
const SESSION_COOKIE: &str = "demo_session";

fn has_session(headers: &axum::http::HeaderMap, session: &str) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .any(|(name, value)| name == SESSION_COOKIE && value == session)
}

async fn bind(port: u16) -> Result<(tokio::net::TcpListener, String), BoxError> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let url = format!("http://{}", listener.local_addr()?);
    Ok((listener, url))
}

fn new_key(kind: KeyKind, scopes: &str, origins: Vec<Origin>) -> Result<NewKey, BoxError> {
    Ok(NewKey {
        kind,
        allow_origins: origins,
        tenant: TenantId::new("acme")?,
        scopes: ScopeSet::parse(scopes)?,
        audiences: vec![Audience::new(AUDIENCE)?],
        ttl: None,
        max_ttl: None,
        expires_in: Duration::from_secs(24 * 3600),
        label: Some("browser demo".into()),
        owner: None,
        allow_ips: vec![],
        rate_limit: None,
        env: KeyEnv::Test,
    })
}

async fn orders(auth: Auth) -> Result<Json<serde_json::Value>, AuthRejection> {
    auth.require_scopes(&["orders:read"])?;
    Ok(Json(serde_json::json!({
        "tenant": auth.claims().tenant.as_str(),
        "bound_to": auth.claims().cnf.as_ref().map(|c| c.jkt.as_str()),
        "orders": [{"id": 1, "item": "coffee"}, {"id": 2, "item": "tea"}],
    })))
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The backend's delegation endpoint. It spends the customer's secret key, so it serves only the
/// backend's own signed-in user (here: the session cookie the page got when it loaded; a real
/// backend checks its login session). An endpoint like this open to any caller would hand anyone
/// on the internet tokens of the customer's tenant.
async fn delegate(
    State(st): State<PageState>,
    headers: axum::http::HeaderMap,
    Json(req): Json<serde_json::Value>,
) -> Response {
    if !has_session(&headers, &st.session) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({
                "error": "no session: a backend delegates only to its own signed-in user"
            })),
        )
            .into_response();
    }
    let Some(jkt) = req.get("jkt").and_then(|v| v.as_str()).map(str::to_owned) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "jkt required"})),
        )
            .into_response();
    };
    // The backend's side of delegation: a narrower (orders:read), shorter (2 min) token for the
    // browser's key, minted with the backend's secret key, which never reaches the page.
    let url = format!("{}/v1/token", st.issuer_url);
    let key = Arc::clone(&st.secret_key);
    let answer = tokio::task::spawn_blocking(move || {
        let body = serde_json::json!({"scope": "orders:read", "ttl": 120, "dpop_jkt": jkt});
        match ureq::post(&url)
            .set("Authorization", &format!("Bearer {key}"))
            .set("Content-Type", "application/json")
            .send_string(&body.to_string())
        {
            Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
            Err(e) => (502, serde_json::json!({"error": e.to_string()}).to_string()),
        }
    })
    .await
    .unwrap_or((500, "{}".into()));
    let status = StatusCode::from_u16(answer.0).unwrap_or(StatusCode::BAD_GATEWAY);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        answer.1,
    )
        .into_response()
}

/// Starts the issuer, the API and the page backend; `page_port` 0 picks a free port.
pub async fn start(page_port: u16) -> Result<Demo, BoxError> {
    let data_dir = std::env::temp_dir().join(format!(
        "keymint-browser-demo-{}-{page_port}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&data_dir);
    keymint::config::ensure_data_dir(&data_dir)?;

    // The issuer.
    let (issuer_listener, issuer_url) = bind(0).await?;
    let store = Arc::new(SqliteStore::open(&data_dir.join("keymint.db")).await?);
    let secrets = keymint::config::load_secrets(Some(&data_dir))?;
    let hasher = KeyHasher::new(&secrets.pepper);
    let cfg = ServeConfig {
        listen: issuer_listener.local_addr()?,
        issuer: Issuer::new(issuer_url.as_str())?,
        jwks_max_age: Duration::from_secs(60),
        max_token_ttl: Duration::from_secs(3600),
        list_validity: Duration::from_secs(24 * 3600),
        tls: None,
        trusted_proxies: vec![],
        audit_retention: keymint::domain::usage::DEFAULT_RETENTION,
        usage_flush: keymint::domain::usage::FLUSH_INTERVAL,
        scanner_keys: None,
        connections: Default::default(),
    };
    tokio::spawn(keymint::server::serve(
        Arc::clone(&store),
        secrets,
        cfg,
        issuer_listener,
        std::future::pending(),
        || {},
    ));

    // The page's origins: the allowed one, and a foreign one that no key allows.
    let (page_listener, page_url) = bind(page_port).await?;
    let (foreign_listener, foreign_page_url) = bind(0).await?;

    // Keys: a public scope, a publishable key for the page's origin, a secret key for its backend.
    let now = UnixTime::now();
    keys::put_scope(
        &*store,
        &Scope::new("orders:read")?,
        Visibility::Public,
        now,
        "demo",
    )
    .await?;
    let (_, publishable) = keys::create(
        &*store,
        &hasher,
        &new_key(
            KeyKind::Publishable,
            "orders:read",
            vec![Origin::parse(&page_url)?],
        )?,
        now,
        "demo",
    )
    .await?;
    let (_, secret) = keys::create(
        &*store,
        &hasher,
        &new_key(KeyKind::Secret, "orders:read orders:write", vec![])?,
        now,
        "demo",
    )
    .await?;

    // The API: verifies offline, fed by the issuer's published key set and pushed revocations.
    let (api_listener, api_url) = bind(0).await?;
    let issuer_for_discovery = issuer_url.clone();
    let discovered = tokio::task::spawn_blocking(move || {
        for _ in 0..50 {
            if let Ok(cfg) = LiveConfig::discover(&issuer_for_discovery) {
                return Some(cfg);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    })
    .await?
    .ok_or("the issuer did not come up")?;
    let (verifier, live) =
        Verifier::builder(Issuer::new(issuer_url.as_str())?, Audience::new(AUDIENCE)?)
            .dpop_base_url(api_url.as_str())
            .build_live(discovered)?;
    live.ready().await;
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(HeaderValue::from_str(&page_url)?)
        .allow_methods([Method::GET])
        .allow_headers([
            header::AUTHORIZATION,
            header::HeaderName::from_static("dpop"),
        ]);
    let api = axum::Router::new()
        .route("/orders", get(orders))
        .layer(verifier.layer())
        .layer(cors);
    tokio::spawn(async move {
        let _live = live; // keeps the refresh threads running
        let _ = axum::serve(api_listener, api).await;
    });

    // The page and its backend, on both origins.
    let state = PageState {
        config: serde_json::json!({
            "issuer": issuer_url,
            "api": api_url,
            "audience": AUDIENCE,
            "publishable_key": publishable.expose(),
        }),
        issuer_url: issuer_url.clone(),
        secret_key: secret.expose().into(),
        session: {
            let mut bytes = [0u8; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                .map_err(|_| "random generator failed")?;
            keymint_jwks::jws::encode_segment(&bytes).into()
        },
    };
    let site = axum::Router::new()
        .route(
            "/",
            get(|State(st): State<PageState>| async move {
                // Loading the page stands in for signing in: it gets the session cookie.
                let cookie = format!(
                    "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
                    st.session
                );
                (
                    [(header::SET_COOKIE, cookie)],
                    page("text/html; charset=utf-8", INDEX),
                )
            }),
        )
        .route("/app.js", get(|| async { page("text/javascript", APP_JS) }))
        .route(
            "/config.json",
            get(|State(st): State<PageState>| async move { Json(st.config) }),
        )
        .route("/delegate", post(delegate))
        .with_state(state);
    let foreign_site = site.clone();
    tokio::spawn(async move {
        let _ = axum::serve(page_listener, site).await;
    });
    tokio::spawn(async move {
        let _ = axum::serve(foreign_listener, foreign_site).await;
    });
    // The issuer learns the new publishable key's origin from its change feed: the demo is up
    // once the issuer answers a CORS preflight from the page's origin.
    let (preflight_url, page_origin) = (format!("{issuer_url}/v1/token"), page_url.clone());
    let cors_ready = tokio::task::spawn_blocking(move || {
        for _ in 0..500 {
            let answered = ureq::request("OPTIONS", &preflight_url)
                .set("Origin", &page_origin)
                .set("Access-Control-Request-Method", "POST")
                .call()
                .is_ok_and(|r| r.header("access-control-allow-origin") == Some(&page_origin));
            if answered {
                return true;
            }
            // A poll, not a wait of a guessed length: the loop ends as soon as the origin is in.
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    })
    .await?;
    if !cors_ready {
        return Err("the issuer never took the page's origin".into());
    }
    Ok(Demo {
        page_url: format!("{page_url}/"),
        foreign_page_url: format!("{foreign_page_url}/"),
        issuer_url,
        api_url,
        data_dir,
    })
}
