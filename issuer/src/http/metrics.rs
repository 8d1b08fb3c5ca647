//! `GET /metrics` (Prometheus text) and the request-timing middleware.

use std::cell::RefCell;
use std::sync::OnceLock;
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
            method: method_label(req.method()),
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
        method: &'static str,
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
            observe(
                route,
                this.method,
                res.status().as_u16(),
                this.started.elapsed().as_secs_f64(),
            );
        }
        Poll::Ready(res)
    }
}

/// The method as a label: the methods of RFC 9110 by name, any other `other`. A client may send
/// any token as a method (a 405 answers it, and is counted): named as sent, each one would be
/// a new series in the recorder and in every scrape for the life of the process.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "PATCH" => "PATCH",
        _ => "other",
    }
}

/// One (route, method, status) series, as a worker thread keeps it.
struct Cached {
    route: Box<str>,
    method: &'static str,
    status: u16,
    count: Counter,
    time: Histogram,
}

/// Series kept per worker thread; beyond, they are looked up in the recorder each time (the
/// labels are bounded: the router's patterns and `unmatched`, ten method labels, the statuses
/// the server answers).
const MAX_SERIES: usize = 64;

thread_local! {
    /// The series this thread has counted, found by a scan (a handful of entries):
    /// building a series' labels and finding it in the recorder's registry cost more than the
    /// rest of the middleware together, and a map shared by the workers behind a lock (tried
    /// before) moved its lock's cache line between the cores on every request.
    static SERIES: RefCell<Vec<Cached>> = const { RefCell::new(Vec::new()) };
}

/// Counts one answered request and its duration.
fn observe(route: &str, method: &'static str, status: u16, seconds: f64) {
    SERIES.with_borrow_mut(|cached| {
        if let Some(s) = cached
            .iter()
            .find(|s| s.status == status && s.method == method && *s.route == *route)
        {
            s.count.increment(1);
            s.time.record(seconds);
            return;
        }
        let made = Cached {
            route: route.into(),
            method,
            status,
            count: metrics::counter!("keymint_http_requests_total", "route" => route.to_owned(), "method" => method, "status" => status.to_string()),
            time: metrics::histogram!("keymint_http_request_duration_seconds", "route" => route.to_owned()),
        };
        made.count.increment(1);
        made.time.record(seconds);
        if cached.len() < MAX_SERIES {
            cached.push(made);
        }
    });
}
