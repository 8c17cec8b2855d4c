//! What every request carries besides its body: a request id, an idempotency key, and the
//! door and route template it is counted under.

use std::{future::Future, time::Instant};

use tracing::{Instrument, info, info_span};
use uuid::Uuid;
use warp::{Filter, Reply, http::HeaderValue, reply::Response};

use crate::metrics::{RouteMetrics, route_metrics};

const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x1d3e_5c7a_9b2f_4e6d_8a0c_2b4d_6f8e_0a1c);

#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The client's `X-Request-Id` when it is sane, else a fresh UUID.
    pub request_id: String,
    idempotency_key: Option<String>,
    method: warp::http::Method,
    path: String,
    metrics: &'static RouteMetrics,
}

/// A request header as text, if present; bytes that are not UTF-8 are replaced, so that a
/// door answers a malformed header itself instead of the request being turned away.
pub fn header_text(
    name: &'static str,
) -> impl Filter<Extract = (Option<String>,), Error = std::convert::Infallible> + Clone {
    // The common cases (absent, or text) take the first filter without a rejection.
    warp::header::optional::<String>(name)
        .or(
            warp::header::value(name).map(|value: warp::http::HeaderValue| {
                Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
            }),
        )
        .unify()
        .or(warp::any().map(|| None))
        .unify()
}

/// The context of a request to `door`'s route `route`, a template such as
/// `/v1/course/get/:id`: the labels of its metrics, so they must stay few.
pub fn request_context(
    door: &'static str,
    route: &'static str,
) -> impl Filter<Extract = (RequestContext,), Error = std::convert::Infallible> + Clone {
    let metrics = route_metrics(door, route);
    header_text("x-request-id")
        .and(header_text("idempotency-key"))
        .and(warp::method())
        .and(warp::path::full())
        .map(
            move |id: Option<String>,
                  key: Option<String>,
                  method: warp::http::Method,
                  path: warp::path::FullPath| {
                let request_id = id
                    .filter(|id| {
                        !id.is_empty()
                            && id.len() <= 128
                            && id.bytes().all(|b| b.is_ascii_graphic())
                    })
                    .unwrap_or_else(|| Uuid::new_v4().to_string());
                RequestContext {
                    request_id,
                    idempotency_key: key.filter(|k| !k.is_empty() && k.len() <= 255),
                    method,
                    path: path.as_str().to_string(),
                    metrics,
                }
            },
        )
}

impl RequestContext {
    /// The command context for user `actor` (a username) acting on aggregate
    /// `aggregate_id`: the event's actor is `user:<username>` (`command::actor`). The
    /// client's idempotency key is scoped to the username, the route and the aggregate, so
    /// two users, two endpoints, or the same endpoint on two aggregates never share one.
    pub fn command(&self, actor: &str, aggregate_id: &str) -> command::Context {
        command::Context {
            actor: command::actor::user(actor),
            request_id: self.request_id.clone(),
            idempotency_key: self.scoped_key(actor, Some(aggregate_id)),
            causation_id: None,
        }
    }

    /// The id of the aggregate a create makes, derived from the client's idempotency key
    /// (scoped to actor and route), so that a repeated create meets the aggregate the first
    /// one made. `None` without a key.
    pub fn idempotent_id(&self, actor: &str) -> Option<String> {
        self.scoped_key(actor, None)
    }

    fn scoped_key(&self, actor: &str, aggregate_id: Option<&str>) -> Option<String> {
        self.idempotency_key.as_ref().map(|key| {
            let scope = format!(
                "{actor}\n{}\n{}\n{}\n{key}",
                self.method,
                self.path.trim_end_matches('/'),
                aggregate_id.unwrap_or_default()
            );
            Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, scope.as_bytes()).to_string()
        })
    }

    /// Runs a handler inside a span carrying the request id, logs and counts the answer, and
    /// sends the request id back as `X-Request-Id`.
    pub async fn answer<R: Reply>(&self, handler: impl Future<Output = R>) -> Response {
        let span = info_span!("request", request_id = %self.request_id, method = %self.method, path = %self.path);
        let started = Instant::now();
        let mut response = handler.instrument(span.clone()).await.into_response();
        if let Ok(value) = HeaderValue::from_str(&self.request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        let elapsed = started.elapsed();
        self.metrics.record(response.status(), elapsed);
        span.in_scope(|| {
            info!(
                status = response.status().as_u16(),
                micros = elapsed.as_micros() as u64,
                "answered"
            )
        });
        response
    }
}
