//! The HTTP side: one hyper server, a router from Kubernetes paths to handlers, and the
//! body and answer formats (JSON in and out; YAML accepted in).

pub mod discovery;
pub mod errors;
pub mod objects;
pub mod openapi;
pub mod protobuf;
pub mod table;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::resources::{self, RESOURCES};
use crate::store::Store;
use errors::ApiError;

pub type Body = BoxBody<Bytes, Infallible>;

/// Largest request body accepted.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// What every handler can reach.
#[derive(Debug)]
pub struct Ctx {
    pub store: Arc<Store>,
    pub addr: SocketAddr,
    /// Turns true when the simulator stops; watches end then.
    pub shutdown: watch::Receiver<bool>,
}

/// A request decoded enough for a handler.
pub struct Req {
    pub method: Method,
    pub query: HashMap<String, String>,
    pub content_type: String,
    pub accept: String,
    pub body: Bytes,
}

impl Req {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Does the client ask for a `meta.k8s.io` Table?
    pub fn wants_table(&self) -> bool {
        self.accept.contains("as=Table")
    }
}

/// Accepts connections until `shutdown` turns true.
pub async fn serve(listener: TcpListener, ctx: Arc<Ctx>) {
    let mut shutdown = ctx.shutdown.clone();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = crate::stopped(&mut shutdown) => break,
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let mut stop = ctx.shutdown.clone();
            let svc_ctx = ctx.clone();
            let svc = service_fn(move |req| {
                let ctx = svc_ctx.clone();
                async move { Ok::<_, Infallible>(handle(ctx, req).await) }
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = crate::stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
                }
            }
        });
    }
}

/// Answers one request; a panic in a handler becomes a 500 rather than a dropped
/// connection.
async fn handle(ctx: Arc<Ctx>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let result = std::panic::AssertUnwindSafe(route(ctx, req))
        .catch_unwind()
        .await;
    let response = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => error(&e),
        Err(_) => error(&ApiError::internal("the simulator failed on this request")),
    };
    tracing::debug!(%method, %path, status = response.status().as_u16(), "request");
    response
}

/// Percent-decoding for query strings (`+` is a space, as Go's url.ParseQuery has it).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query pairs; empty pairs (kube starts with `?&`) are skipped.
pub fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Where a path leads.
#[derive(Debug, PartialEq)]
pub struct Target {
    pub res: usize,
    /// The namespace in the path; `None` for cluster-scoped kinds and all-namespace lists.
    pub ns: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

fn target(group: &str, version: &str, segs: &[&str]) -> Option<Target> {
    let (res, ns, rest) = match segs {
        ["namespaces", ns, plural, rest @ ..]
            if resources::find(group, version, plural).is_some_and(|r| RESOURCES[r].namespaced) =>
        {
            (
                resources::find(group, version, plural)?,
                Some(ns.to_string()),
                rest,
            )
        }
        [plural, rest @ ..] => (resources::find(group, version, plural)?, None, rest),
        [] => return None,
    };
    if rest.len() > 2 || (RESOURCES[res].namespaced && ns.is_none() && !rest.is_empty()) {
        return None;
    }
    let sub = rest.get(1).map(|s| s.to_string());
    if let Some(s) = &sub
        && !RESOURCES[res].subresources.contains(&s.as_str())
    {
        return None;
    }
    Some(Target {
        res,
        ns,
        name: rest.first().map(|s| s.to_string()),
        sub,
    })
}

async fn route(ctx: Arc<Ctx>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let header = |name: hyper::header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|_| ApiError::too_large())?
        .to_bytes();
    let req = Req {
        method: parts.method.clone(),
        query: parse_query(parts.uri.query()),
        content_type: header(CONTENT_TYPE),
        accept: header(hyper::header::ACCEPT),
        body,
    };
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let get_only = |r: Result<Response<Body>, ApiError>| {
        if req.method == Method::GET || req.method == Method::HEAD {
            r
        } else {
            Err(ApiError::method_not_allowed(req.method.as_str()))
        }
    };
    match segs.as_slice() {
        ["version"] => get_only(Ok(json(StatusCode::OK, &discovery::version()))),
        ["healthz" | "readyz" | "livez", ..] => get_only(Ok(text(StatusCode::OK, "ok"))),
        ["api"] => get_only(Ok(json(StatusCode::OK, &discovery::api_versions(ctx.addr)))),
        ["apis"] => get_only(Ok(json(StatusCode::OK, &discovery::api_groups()))),
        ["api", "v1"] => get_only(Ok(json(
            StatusCode::OK,
            &discovery::resource_list("", "v1"),
        ))),
        ["apis", group] => get_only(discovery::api_group(group).map(|g| json(StatusCode::OK, &g))),
        ["apis", group, version] => get_only(
            discovery::has_group_version(group, version)
                .then(|| json(StatusCode::OK, &discovery::resource_list(group, version)))
                .ok_or_else(ApiError::no_route),
        ),
        ["openapi", "v3"] => get_only(Ok(json(StatusCode::OK, &openapi::root()))),
        ["openapi", "v3", rest @ ..] => get_only(
            openapi::group_version(&rest.join("/"))
                .map(|doc| json(StatusCode::OK, &doc))
                .ok_or_else(ApiError::no_route),
        ),
        ["api", "v1", rest @ ..] => {
            let t = target("", "v1", rest).ok_or_else(ApiError::no_route)?;
            objects::dispatch(&ctx, &req, t).await
        }
        ["apis", group, version, rest @ ..] => {
            let t = target(group, version, rest).ok_or_else(ApiError::no_route)?;
            objects::dispatch(&ctx, &req, t).await
        }
        _ => Err(ApiError::no_route()),
    }
}

fn with_type(mut r: Response<Body>, content_type: &'static str) -> Response<Body> {
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub fn json(status: StatusCode, v: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(bytes)).boxed());
    *r.status_mut() = status;
    with_type(r, "application/json")
}

fn text(status: StatusCode, s: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(s.as_bytes())).boxed());
    *r.status_mut() = status;
    with_type(r, "text/plain; charset=utf-8")
}

/// An error as its `Status`.
pub fn error(e: &ApiError) -> Response<Body> {
    json(
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.to_status(),
    )
}

/// Parses a request body as JSON or YAML, by content type.
pub fn decode_body(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match ct.as_str() {
        ""
        | "application/json"
        | "*/*"
        | "application/json-patch+json"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding JSON body: {e}"))),
        "application/yaml"
        | "application/apply-patch+yaml"
        | "application/x-yaml"
        | "text/yaml" => {
            if let Ok(v) = serde_json::from_slice(body) {
                return Ok(v);
            }
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("YAML body is not UTF-8"))?;
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML body: {e}")))
        }
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_tolerates_empty_pairs() {
        let q = parse_query(Some("&labelSelector=app%3Dweb&&watch=1"));
        assert_eq!(q["labelSelector"], "app=web");
        assert_eq!(q["watch"], "1");
    }

    #[test]
    fn targets() {
        let t = target("", "v1", &["namespaces", "a", "pods", "p", "status"]).unwrap();
        assert_eq!(
            (t.res, t.ns.as_deref(), t.name.as_deref(), t.sub.as_deref()),
            (resources::PODS, Some("a"), Some("p"), Some("status"))
        );
        let t = target("", "v1", &["namespaces", "a", "status"]).unwrap();
        assert_eq!(
            (t.res, t.name.as_deref(), t.sub.as_deref()),
            (resources::NAMESPACES, Some("a"), Some("status"))
        );
        assert!(target("", "v1", &["pods", "p"]).is_none());
        assert!(target("", "v1", &["widgets"]).is_none());
        assert_eq!(target("apps", "v1", &["deployments"]).unwrap().ns, None);
    }
}
