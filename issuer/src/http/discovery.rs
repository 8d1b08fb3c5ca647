//! Discovery: the JWKS, RFC 8414 metadata and the signed revocation list.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use keymint_jwks::UnixTime;

use super::AppState;
use crate::domain::client_slots::Refused;
use crate::store::Store;

fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

fn with_etag(
    status: StatusCode,
    body: String,
    content_type: &'static str,
    etag: &str,
    cache: String,
) -> Response {
    let mut res = if status == StatusCode::NOT_MODIFIED {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (status, body).into_response()
    };
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    res
}

/// `GET /.well-known/jwks.json`: next, active and retired keys.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "discovery",
    description = "The signing keys' public JWKS (next, active and retired keys). Strong ETag; If-None-Match answers 304.",
    responses(
        (status = 200, description = "RFC 7517 JWK Set", body = Object, content_type = "application/json"),
        (status = 304, description = "unchanged since the ETag sent"),
    ))]
pub(crate) async fn jwks<S: Store>(State(st): State<AppState<S>>, headers: HeaderMap) -> Response {
    let set = st.signing.load();
    let cache = format!(
        "public, max-age={}",
        st.settings.load().jwks_max_age().as_secs()
    );
    if not_modified(&headers, &set.etag) {
        return with_etag(
            StatusCode::NOT_MODIFIED,
            String::new(),
            "application/json",
            &set.etag,
            cache,
        );
    }
    with_etag(
        StatusCode::OK,
        set.jwks_json.to_string(),
        "application/json",
        &set.etag,
        cache,
    )
}

/// `GET /v1/revocations`: the signed list, byte for byte as stored for its serial.
#[utoipa::path(get, path = "/v1/revocations", tag = "discovery",
    description = "The signed revocation list (a JWS, typ keymint-revocations+jwt). Strong ETag; If-None-Match answers 304.",
    responses(
        (status = 200, description = "the list as a compact JWS", body = String, content_type = "application/keymint-revocations+jwt"),
        (status = 304, description = "unchanged since the ETag sent"),
    ))]
pub(crate) async fn revocations<S: Store>(
    State(st): State<AppState<S>>,
    headers: HeaderMap,
) -> Response {
    let list = st.list.current();
    let etag = format!("\"{}\"", list.serial);
    // Verifiers revalidate with If-None-Match; freshness comes from the signed exp, not HTTP.
    let cache = "no-cache".to_owned();
    let ct = "application/keymint-revocations+jwt";
    if not_modified(&headers, &etag) {
        return with_etag(StatusCode::NOT_MODIFIED, String::new(), ct, &etag, cache);
    }
    with_etag(StatusCode::OK, list.jws.clone(), ct, &etag, cache)
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
    description = "RFC 8414 authorization server metadata, plus keymint_revocation_list_uri and keymint_revocation_events_uri.",
    responses((status = 200, body = Object, content_type = "application/json")))]
pub(crate) async fn metadata<S: Store>(State(st): State<AppState<S>>) -> Response {
    let settings = st.settings.load();
    let issuer = settings.issuer().as_str();
    let base = issuer.trim_end_matches('/');
    Json(serde_json::json!({
        "issuer": issuer,
        "token_endpoint": format!("{base}/oauth2/token"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "grant_types_supported": ["client_credentials"],
        // REQUIRED by RFC 8414; keymint has no authorization endpoint, so no response types.
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "token_endpoint_auth_signing_alg_values_supported": ["EdDSA", "ES256"],
        "keymint_token_endpoint": format!("{base}/v1/token"),
        "keymint_revocation_list_uri": format!("{base}/v1/revocations"),
        "keymint_revocation_events_uri": format!("{base}/v1/revocations/events"),
    }))
    .into_response()
}

/// `GET /v1/revocations/events`: server-sent events, one `revocations` event per new list
/// (`id` = serial, `data` = the signed list). With `Last-Event-ID`, the current list is sent at once
/// only if it is newer than that serial; without, it is sent at once.
#[utoipa::path(get, path = "/v1/revocations/events", tag = "discovery",
    description = "Server-sent events: `event: revocations`, `id: <serial>`, `data: <the signed list>`; honours Last-Event-ID.",
    responses(
        (status = 200, description = "an endless event stream", body = String, content_type = "text/event-stream"),
        (status = 503, description = "this client holds as many streams as it may (`--max-connections-per-client`), or all clients together do: retry after `Retry-After` seconds and poll the list meanwhile", body = String, content_type = "text/plain", headers(("retry-after" = u32, description = "seconds"))),
    ))]
pub(crate) async fn revocation_events<S: Store>(
    State(st): State<AppState<S>>,
    headers: HeaderMap,
    ext: axum::http::Extensions,
) -> Result<Response, Response> {
    // A client holds as many streams as it may hold connections: over HTTP/2 one connection
    // could otherwise carry 200 of them, each sent every new list.
    let client = super::client_address::client_of(&headers, &ext, &st.trusted_proxies);
    let slot = match st.streams.admit(client.ip) {
        Ok(slot) => slot,
        Err(why) => {
            let reason = match why {
                Refused::Total => "too_many_streams",
                Refused::PerClient => "too_many_streams_from_client",
                Refused::PerNetwork => "too_many_streams_from_network",
            };
            st.tokens.note_refusal(
                "revocations.events",
                &client,
                reason,
                reason,
                UnixTime::now(),
            );
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "30")],
                "too many event streams open from this client; poll /v1/revocations meanwhile\n",
            )
                .into_response());
        }
    };
    let last: Option<i64> = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok());
    let rx = st.list.subscribe();
    let closing = st.list.closing();
    let mut keep_alive =
        tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    // A reader that fell behind gets one keep-alive, not the ticks it missed.
    keep_alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stream = futures_util::stream::unfold(
        (rx, closing, last, slot, keep_alive, st),
        |(mut rx, mut closing, last, slot, mut keep_alive, st)| async move {
            loop {
                if *closing.borrow() {
                    return None;
                }
                let current = std::sync::Arc::clone(&rx.borrow_and_update());
                if last.is_none_or(|l| current.serial > l) {
                    // One buffer per list, shared by every stream (`EventFrames`).
                    let frame = st.event_frames.of(&current);
                    let next = (rx, closing, Some(current.serial), slot, keep_alive, st);
                    return Some((Ok::<_, Infallible>(frame), next));
                }
                tokio::select! {
                    changed = rx.changed() => if changed.is_err() { return None; },
                    _ = closing.changed() => return None,
                    _ = keep_alive.tick() => {
                        let next = (rx, closing, last, slot, keep_alive, st);
                        return Some((Ok(Bytes::from_static(b":\n\n")), next));
                    }
                }
            }
        },
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// A comment line this often keeps proxies from closing a quiet stream and lets a verifier tell a
/// live stream from a dead one (they reconnect after three missed).
const KEEP_ALIVE: Duration = Duration::from_secs(15);
