//! `GET /metrics` (Prometheus text) and the request-timing middleware.

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock, RwLock};
use std::time::Instant;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower::{Layer, Service};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the process-wide Prometheus recorder once (the first server in a process owns it).
pub(crate) fn install() {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ])
            .ok()?
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).ok()?;
        // Histogram samples wait in the recorder until they are folded into their buckets, which
        // `render` or `run_upkeep` does: without a scraper they would pile up for ever (8 bytes a
        // request). The upkeep keeps that bounded whether or not anyone reads /metrics.
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("keymint-metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
        }
        Some(handle)
    });
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain")))]
pub(crate) async fn render() -> Response {
    let body = HANDLE
        .get()
        .and_then(|h| h.as_ref())
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    res
}

/// What every matched route runs behind, as one service level: the body limit (413 beyond
/// [`MAX_BODY`](super::MAX_BODY), unless a route sets its own) inside the request metrics.
/// Each `Router::layer` or `from_fn` level costs every request a boxed clone of the service
/// below it and a boxed future in axum's routing; this one is a single level, applied with
/// `route_layer`, whose future is not boxed.
#[derive(Clone, Copy)]
pub(crate) struct EdgeLayer;

impl<S> Layer<S> for EdgeLayer {
    type Service = Track<<DefaultBodyLimit as Layer<S>>::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        Track(DefaultBodyLimit::max(super::MAX_BODY).layer(inner))
    }
}

/// Counts and times every request by route (the route pattern, never the raw path or query).
#[derive(Clone)]
pub(crate) struct Track<S>(S);

impl<S> Service<Request> for Track<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Tracked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        Tracked {
            route: req.extensions().get::<MatchedPath>().cloned(),
            method: req.method().clone(),
            started: Instant::now(),
            inner: self.0.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    /// [`Track`]'s future: the inner one, then the request's count and duration.
    pub(crate) struct Tracked<F> {
        #[pin]
        inner: F,
        route: Option<MatchedPath>,
        method: Method,
        started: Instant,
    }
}

impl<F, E> Future for Tracked<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = std::task::ready!(this.inner.poll(cx));
        if let Ok(res) = &res {
            let route = this.route.as_ref().map_or("unmatched", MatchedPath::as_str);
            let (count, time) = series(route, this.method, res.status().as_u16());
            count.increment(1);
            time.record(this.started.elapsed().as_secs_f64());
        }
        Poll::Ready(res)
    }
}

/// The series of every (route, method, status) seen, looked up once: building a series' labels
/// and finding it in the recorder's registry cost more than the rest of the middleware together,
/// on every request. By route first, so that a lookup borrows the route instead of copying it.
type Series = HashMap<String, HashMap<(Method, u16), (Counter, Histogram)>>;
static SERIES: LazyLock<RwLock<Series>> = LazyLock::new(|| RwLock::new(HashMap::new()));
/// Series kept per route; beyond (a client inventing methods), they are looked up each time.
const MAX_SERIES: usize = 64;

fn series(route: &str, method: &Method, status: u16) -> (Counter, Histogram) {
    let key = (method.clone(), status);
    if let Some(found) = SERIES
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(route)
        .and_then(|by| by.get(&key))
    {
        return found.clone();
    }
    let made = (
        metrics::counter!("keymint_http_requests_total", "route" => route.to_owned(), "method" => method.as_str().to_owned(), "status" => status.to_string()),
        metrics::histogram!("keymint_http_request_duration_seconds", "route" => route.to_owned()),
    );
    let mut all = SERIES
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Routes are the router's patterns (and `unmatched`): a fixed set.
    let by = all.entry(route.to_owned()).or_default();
    if by.len() < MAX_SERIES {
        by.insert(key, made.clone());
    }
    made
}
