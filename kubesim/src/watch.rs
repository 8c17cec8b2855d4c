//! Watches: a chunked HTTP 200 answer with one JSON event per line, replaying the kept
//! history after the requested resourceVersion and then following changes as they come.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::api::errors::ApiError;
use crate::api::{Body, Ctx, Req, Target, table};
use crate::meta;
use crate::resources::RESOURCES;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::Event;

/// How often an idle watch that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

/// How long a watch waits after a change for more to come before sending.
const GATHER: Duration = Duration::from_millis(1);

/// What one watch wants to see.
struct Filter {
    res: usize,
    ns: Option<String>,
    name: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches(&self, res: usize, obj: &Value) -> bool {
        res == self.res
            && self
                .ns
                .as_deref()
                .is_none_or(|ns| meta::namespace(obj) == ns)
            && self.name.as_deref().is_none_or(|n| meta::name(obj) == n)
            && self.labels.matches(meta::labels(obj))
            && self.fields.matches(obj)
    }
}

/// Starts a watch; errors found before streaming (bad selectors, a resourceVersion that is
/// not a number) are answered as a plain error `Status`.
pub fn serve(
    ctx: &Ctx,
    req: &Req,
    t: &Target,
    name: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let filter = Filter {
        res: t.res,
        ns: t.ns.clone(),
        name: name.map(String::from),
        labels: LabelSelector::parse(req.param("labelSelector").unwrap_or(""))?,
        fields: FieldSelector::parse(req.param("fieldSelector").unwrap_or(""))?,
    };
    let from = match req.param("resourceVersion") {
        None | Some("0") => None,
        Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("invalid resource version {rv:?}: not a number"))
        })?),
    };
    // 0, like no value, means no timeout of the client's choosing.
    let timeout = match req.param("timeoutSeconds") {
        None => None,
        Some(s) => Some(
            s.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {s:?}")))?,
        )
        .filter(|secs| *secs > 0)
        .map(Duration::from_secs),
    };
    let bookmarks = matches!(req.param("allowWatchBookmarks"), Some("true" | "1"));
    // Watch-list (`sendInitialEvents=true`): the initial ADDED events end with a bookmark
    // annotated `k8s.io/initial-events-end`.
    let initial_events_end = matches!(req.param("sendInitialEvents"), Some("true" | "1"));
    let as_table = req.wants_table();

    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let store = ctx.store.clone();
    let mut changes = store.subscribe();
    let mut shutdown = ctx.shutdown.clone();
    tokio::spawn(async move {
        // The line this watch sends for an event, if any: a MODIFIED object that enters
        // the selection is ADDED to this watch, one that leaves it is DELETED.
        let line = |e: &Event| -> Option<Bytes> {
            if e.res != filter.res {
                return None;
            }
            let now = filter.matches(e.res, &e.object);
            let before = e.previous.as_ref().map(|p| filter.matches(e.res, p));
            let event_type = match (e.event_type, before, now) {
                (_, None, false) | ("MODIFIED", Some(false), false) => return None,
                ("MODIFIED", Some(false), true) => "ADDED",
                ("MODIFIED", Some(true), false) => "DELETED",
                (t, _, _) => t,
            };
            Some(if as_table || event_type != e.event_type {
                object_line(event_type, e.res, e.rv, &e.object, as_table)
            } else {
                e.line.clone()
            })
        };
        // The starting point: replay of history, or the current objects as ADDED.
        let (mut last, first): (u64, Result<Vec<Bytes>, ()>) = store.read(|st| match from {
            None => {
                let items: Vec<Bytes> = st
                    .list(filter.res, filter.ns.as_deref())
                    .filter(|(_, o)| filter.matches(filter.res, o))
                    .map(|(_, o)| object_line("ADDED", filter.res, st.rv, o, as_table))
                    .collect();
                (st.rv, Ok(items))
            }
            Some(rv) => match st.events_since(rv) {
                Some(events) => {
                    let last = events.last().map(|e| e.rv).unwrap_or(rv);
                    let lines = events.iter().filter_map(|e| line(e)).collect();
                    (last.max(rv.min(st.rv)), Ok(lines))
                }
                None => (rv, Err(())),
            },
        });
        match first {
            Err(()) => {
                let status = ApiError::expired(format!(
                    "too old resource version: {last} (the watch history keeps the last {} changes)",
                    crate::store::HISTORY_LIMIT
                ))
                .to_status();
                let mut v = serde_json::to_vec(&json!({"type": "ERROR", "object": status}))
                    .unwrap_or_default();
                v.push(b'\n');
                let _ = tx.send(Bytes::from(v)).await;
                return;
            }
            Ok(lines) => {
                for l in lines {
                    if tx.send(l).await.is_err() {
                        return;
                    }
                }
                if initial_events_end && from.is_none() {
                    let r = &RESOURCES[filter.res];
                    let mark = json!({"type": "BOOKMARK", "object": {
                        "kind": r.kind,
                        "apiVersion": r.api_version(),
                        "metadata": {
                            "resourceVersion": last.to_string(),
                            "annotations": {"k8s.io/initial-events-end": "true"},
                        },
                    }});
                    let mut v = serde_json::to_vec(&mark).unwrap_or_default();
                    v.push(b'\n');
                    if tx.send(Bytes::from(v)).await.is_err() {
                        return;
                    }
                }
            }
        }
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let resource = &RESOURCES[filter.res];
        loop {
            let tick = tokio::time::sleep(BOOKMARK_EVERY);
            let until_deadline = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // Changes often come in bursts: gather a millisecond's worth, then
                    // send them together.
                    tokio::time::sleep(GATHER).await;
                }
                _ = tick => {
                    if bookmarks {
                        let rv = store.read(|st| st.rv).max(last);
                        let mark = json!({"type": "BOOKMARK", "object": {
                            "kind": resource.kind,
                            "apiVersion": resource.api_version(),
                            "metadata": {"resourceVersion": rv.to_string()},
                        }});
                        let mut v = serde_json::to_vec(&mark).unwrap_or_default();
                        v.push(b'\n');
                        if tx.send(Bytes::from(v)).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
                _ = until_deadline => return,
                _ = crate::stopped(&mut shutdown) => return,
                _ = tx.closed() => return,
            }
            let news: Option<Vec<Arc<Event>>> = store.read(|st| st.events_since(last));
            let Some(news) = news else {
                // Fell behind the kept history: tell the client to list again.
                let status =
                    ApiError::expired(format!("too old resource version: {last}")).to_status();
                let mut v = serde_json::to_vec(&json!({"type": "ERROR", "object": status}))
                    .unwrap_or_default();
                v.push(b'\n');
                let _ = tx.send(Bytes::from(v)).await;
                return;
            };
            // Events that arrived together go out in one chunk: one write for a burst.
            let mut batch = bytes::BytesMut::new();
            for e in &news {
                last = last.max(e.rv);
                if let Some(l) = line(e) {
                    batch.extend_from_slice(&l);
                }
                if batch.len() >= 64 * 1024 && tx.send(batch.split().freeze()).await.is_err() {
                    return;
                }
            }
            if !batch.is_empty() && tx.send(batch.freeze()).await.is_err() {
                return;
            }
        }
    });

    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(Frame::data(b)), rx))
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed());
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// One watch line for an object, as itself or as a one-row Table.
fn object_line(event_type: &str, res: usize, rv: u64, obj: &Arc<Value>, as_table: bool) -> Bytes {
    let object = if as_table {
        table::table(res, std::slice::from_ref(obj), rv)
    } else {
        (**obj).clone()
    };
    let mut v =
        serde_json::to_vec(&json!({"type": event_type, "object": object})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}
