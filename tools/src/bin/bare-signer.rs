//! The load benchmark's baseline: a bare axum endpoint that only signs a JWT with ring. Same claims
//! as keymint's token endpoint (a fresh `jti` each time), the same JSON answer, no key lookup, no
//! audit, no limits. `scripts/bench-issuer` runs it beside `keymint serve`.
//!
//! `cargo run --release -p keymint-tools --bin bare-signer -- 127.0.0.1:18181`

use std::error::Error;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use keymint_jwks::*;
use ring::rand::{SecureRandom, SystemRandom};

#[derive(Clone)]
struct App {
    signer: Signer,
    rng: SystemRandom,
}

async fn token(State(app): State<App>) -> Response {
    let now = UnixTime::now();
    let mut jti = [0u8; 16];
    if app.rng.fill(&mut jti).is_err() {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let claims = || -> Result<Claims, IdError> {
        Ok(Claims {
            iss: Issuer::new("http://127.0.0.1:18181")?,
            sub: ApiKeyId::new("BLHdm8dKbk1opBhS")?,
            aud: Audience::new("https://api.example")?,
            exp: now.saturating_add(Duration::from_secs(600)),
            iat: now,
            nbf: Some(now),
            jti: Jti::new(jws::encode_segment(&jti))?,
            client_id: ClientId::new("BLHdm8dKbk1opBhS")?,
            scope: ScopeSet::from_iter([Scope::new("orders:read")?]),
            tenant: TenantId::new("acme")?,
            cnf: None,
        })
    };
    let Ok(claims) = claims() else {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    match app.signer.sign_access_token(&claims) {
        Ok(t) => {
            let mut res = Json(serde_json::json!({
                "access_token": t,
                "token_type": "Bearer",
                "expires_in": 600,
                "scope": "orders:read",
            }))
            .into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[tokio::main]
pub(crate) async fn main() -> Result<(), Box<dyn Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18181".into());
    let app = App {
        signer: Signer::new(SigningKey::generate(Algorithm::EdDsa)?),
        rng: SystemRandom::new(),
    };
    let router = axum::Router::new()
        .route("/v1/token", post(token))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("bare signer listening on http://{addr}");
    axum::serve(listener, router).await?;
    Ok(())
}
