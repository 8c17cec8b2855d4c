//! Prometheus metrics: the process's recorder, `GET /metrics`, and the request metrics.
//!
//! Every crate records through the `metrics` macros (`counter!`, `gauge!`, `histogram!`);
//! [`install`] sets the one recorder of the process, and every `serve` renders it at
//! `GET /metrics` in the Prometheus text format. The endpoint takes no token: it is meant
//! to be scraped from inside the cluster network, not published through an ingress.
//!
//! The names, so that every crate uses the same ones (durations in seconds; every
//! histogram has the buckets of [`BUCKETS`]):
//!
//! | name | kind | labels | what |
//! | --- | --- | --- | --- |
//! | `gantry_http_requests_total` | counter | `door`, `route`, `status` | requests answered |
//! | `gantry_http_request_duration_seconds` | histogram | `door`, `route` | time to answer |
//! | `gantry_events_appended_total` | counter | `type` | events appended to the log |
//! | `gantry_projection_checkpoint` | gauge | `projection`, `instance` | last sequence applied |
//! | `gantry_projection_lag` | gauge | `projection`, `instance` | events in the log not yet applied |
//! | `gantry_projection_parked_total` | counter | `projection`, `instance` | events parked |
//! | `gantry_projection_halted` | gauge | `projection`, `instance` | 1 while halted at an unknown event |
//! | `gantry_worker_reconciles_total` | counter | `worker`, `outcome` | reconcile passes |
//! | `gantry_worker_retries_total` | counter | `worker`, `reason` | retries scheduled |
//! | `gantry_worker_failures_total` | counter | `worker` | reconciles given up |
//!
//! Label values must come from a small fixed set: a route is its template
//! (`/v1/course/get/:id`), never the raw path. `door` is `courses` or `pai` for the doors,
//! `none` for what no door answers (route `unmatched` for unknown paths, `preflight` for
//! CORS preflights, `/metrics` for scrapes). The OpenPAI routes count the same with and
//! without the `/rest-server` prefix.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use metrics::{Counter, Histogram, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use warp::{
    Filter, Reply,
    http::{HeaderValue, StatusCode},
    reply::Response,
};

pub const HTTP_REQUESTS: &str = "gantry_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "gantry_http_request_duration_seconds";
pub const EVENTS_APPENDED: &str = "gantry_events_appended_total";
pub const PROJECTION_CHECKPOINT: &str = "gantry_projection_checkpoint";
pub const PROJECTION_LAG: &str = "gantry_projection_lag";
pub const PROJECTION_PARKED: &str = "gantry_projection_parked_total";
pub const PROJECTION_HALTED: &str = "gantry_projection_halted";
pub const WORKER_RECONCILES: &str = "gantry_worker_reconciles_total";
pub const WORKER_RETRIES: &str = "gantry_worker_retries_total";
pub const WORKER_FAILURES: &str = "gantry_worker_failures_total";

/// Histogram bucket bounds in seconds: half a millisecond (a GET served from a warm pool)
/// to five seconds (a write waiting out read-your-writes).
pub const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The Prometheus text format's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often histogram samples are folded into their buckets between scrapes, which keeps
/// an unscraped process from holding every sample.
const UPKEEP: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder, once: a process may start several Gantry instances
/// (tests do), and the `metrics` facade takes a single global recorder. Metrics recorded
/// before this call are lost, so `gantry::start` calls it before starting any role.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        // `set_buckets` refuses only an empty list; were it refused, summaries stand in.
        let builder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "histogram buckets refused; exporting summaries");
                PrometheusBuilder::new()
            });
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics shows nothing");
        }
        describe();
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
        }
        handle
    })
}

/// The `# HELP` lines, so a scrape explains each name.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by door, route template and status."
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request, by door and route template."
    );
    describe_counter!(
        EVENTS_APPENDED,
        "Events appended to the log, by event type."
    );
    describe_gauge!(
        PROJECTION_CHECKPOINT,
        "Last stream sequence a projection applied."
    );
    describe_gauge!(
        PROJECTION_LAG,
        "Events in the log a projection has not applied yet."
    );
    describe_counter!(
        PROJECTION_PARKED,
        "Events a projection parked instead of applying."
    );
    describe_gauge!(
        PROJECTION_HALTED,
        "1 while a projection is halted at an unknown event."
    );
    describe_counter!(
        WORKER_RECONCILES,
        "Reconcile passes of a worker, by outcome."
    );
    describe_counter!(WORKER_RETRIES, "Retries a worker scheduled, by reason.");
    describe_counter!(WORKER_FAILURES, "Reconciles a worker gave up on.");
}

/// `GET /metrics`: the recorder's text. No token (see the module's documentation).
pub fn route() -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let handle = install();
    let metrics = route_metrics("none", "/metrics");
    warp::path!("metrics").and(warp::get()).map(move || {
        let started = Instant::now();
        let mut response = Response::new(handle.render().into());
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
        metrics.record(response.status(), started.elapsed());
        response
    })
}

/// Statuses the doors answer often enough to keep a counter handle at hand; others
/// register their counter on each answer.
const COMMON_STATUSES: [u16; 14] = [
    200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 415, 422, 500, 503,
];

/// One route's request metrics, with their handles registered on first use so that an
/// answer costs two atomic updates and no allocation.
pub struct RouteMetrics {
    door: &'static str,
    route: &'static str,
    duration: OnceLock<Histogram>,
    by_status: [OnceLock<Counter>; COMMON_STATUSES.len()],
}

impl std::fmt::Debug for RouteMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteMetrics")
            .field("door", &self.door)
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

impl RouteMetrics {
    /// Counts one answer and records how long it took.
    pub fn record(&self, status: StatusCode, elapsed: Duration) {
        self.duration
            .get_or_init(|| {
                metrics::histogram!(HTTP_REQUEST_DURATION, "door" => self.door, "route" => self.route)
            })
            .record(elapsed.as_secs_f64());
        let code = status.as_u16();
        match COMMON_STATUSES.iter().position(|c| *c == code) {
            Some(i) => self.by_status[i]
                .get_or_init(|| self.counter(status))
                .increment(1),
            None => self.counter(status).increment(1),
        }
    }

    fn counter(&self, status: StatusCode) -> Counter {
        metrics::counter!(
            HTTP_REQUESTS,
            "door" => self.door,
            "route" => self.route,
            "status" => status.as_str().to_string()
        )
    }
}

/// The metrics of `door`'s route `route` (a template), shared by every instance of the
/// process. Kept for the life of the process: there is one per route of the code.
pub fn route_metrics(door: &'static str, route: &'static str) -> &'static RouteMetrics {
    static ROUTES: OnceLock<Mutex<HashMap<(&'static str, &'static str), &'static RouteMetrics>>> =
        OnceLock::new();
    let routes = ROUTES.get_or_init(Default::default);
    let mut routes = routes
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    routes.entry((door, route)).or_insert_with(|| {
        Box::leak(Box::new(RouteMetrics {
            door,
            route,
            duration: OnceLock::new(),
            by_status: Default::default(),
        }))
    })
}

/// Marks an answer no door gave (an unknown path, a CORS preflight) with the route it
/// counts under; [`count_unrouted`] records it.
#[derive(Clone, Copy)]
pub struct Unrouted(pub &'static str);

/// Wraps the whole filter tree: answers marked [`Unrouted`] are counted under door `none`,
/// timed from the start of routing. Door answers are counted by `RequestContext::answer`.
pub fn count_unrouted<F, R>(
    routes: F,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone
where
    F: Filter<Extract = (R,), Error = Infallible> + Clone + Send + Sync + 'static,
    R: Reply,
{
    warp::any()
        .map(Instant::now)
        .and(routes)
        .map(|started: Instant, reply: R| {
            let response = reply.into_response();
            if let Some(Unrouted(route)) = response.extensions().get::<Unrouted>().copied() {
                route_metrics("none", route).record(response.status(), started.elapsed());
            }
            response
        })
}

/// Marks `response` as counted under `route` of door `none`.
pub fn unrouted(mut response: Response, route: &'static str) -> Response {
    response.extensions_mut().insert(Unrouted(route));
    response
}
