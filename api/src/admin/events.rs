//! `GET /admin/events`: the log, filtered, a page at a time, as NDJSON, or followed.
//!
//! - Without an `Accept` of a stream: one page, `{"events": [...], "next_after": seq|null}`;
//!   `next_after` is the `after` of the next page, null when this page reached the end.
//! - `Accept: application/x-ndjson`: every matching event, one JSON line each, no paging
//!   (`limit` is ignored); with `follow=true` it goes on with each new event.
//! - `follow=true` with `Accept: text/event-stream`: server-sent events, each with the
//!   stream sequence as its `id`, the event type as its `event` and the envelope as its
//!   data; a comment every 15 s keeps proxies from closing an idle stream. A client that
//!   sent `Last-Event-ID` is not resumed from it: it passes `after` instead.
//! - `follow=true` with any other `Accept` is NDJSON.
//!
//! A stream ends when the client leaves: its body is dropped, and with it the scan and the
//! JetStream consumer behind it.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use command::log::{self, RawFilter};
use events::Recorded;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use warp::{
    Reply,
    http::{HeaderValue, header::CONTENT_TYPE},
    reply::{Response, json},
    sse,
};

use super::errors::{AdminError, admin};
use crate::{App, RequestContext};

const NDJSON: &str = "application/x-ndjson";
const EVENT_STREAM: &str = "text/event-stream";
/// How often an idle server-sent event stream says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(15);

pub async fn list(
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    accept: Option<String>,
    query: String,
) -> Response {
    ctx.answer(async {
        admin(&app, token)?;
        let raw: RawFilter = serde_urlencoded::from_str(&query)
            .map_err(|e| AdminError::bad_request(format!("malformed query: {e}")))?;
        let query = raw
            .parse()
            .map_err(|e| AdminError::bad_request(e.to_string()))?;
        let accept = accept.unwrap_or_default();
        let wants = |kind: &str| accept.split(',').any(|a| a.trim().starts_with(kind));
        if query.follow && wants(EVENT_STREAM) {
            return Ok(server_sent(&app, query.filter));
        }
        if query.follow || wants(NDJSON) {
            return Ok(ndjson(&app, query.filter, query.follow));
        }
        page(&app, query.filter, query.limit).await
    })
    .await
}

/// One page: up to `limit` events, and where the next page starts if there may be more.
async fn page(app: &App, filter: log::LogFilter, limit: usize) -> Result<Response, AdminError> {
    let mut scan = log::scan(&app.store, filter, false);
    let mut events: Vec<Value> = Vec::with_capacity(limit.min(64));
    let mut last = None;
    let mut more = false;
    while let Some(item) = scan.recv().await {
        let recorded = item.map_err(AdminError::store)?;
        if events.len() == limit {
            more = true;
            break;
        }
        last = Some(recorded.seq);
        events.push(log::to_json(&recorded));
    }
    let next_after = if more { last } else { None };
    Ok(json(&json!({ "events": events, "next_after": next_after })).into_response())
}

fn ndjson(app: &App, filter: log::LogFilter, follow: bool) -> Response {
    let lines = relay(app, filter, follow, |item| match item {
        Relayed::Event(recorded) => {
            let mut line = serde_json::to_vec(&log::to_json(&recorded)).unwrap_or_default();
            line.push(b'\n');
            Some(Bytes::from(line))
        }
        Relayed::Heartbeat => None,
    });
    let mut response = warp::reply::stream(Channel(lines)).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    response
}

fn server_sent(app: &App, filter: log::LogFilter) -> Response {
    let events = relay(app, filter, true, |item| match item {
        Relayed::Event(recorded) => Some(
            sse::Event::default()
                .id(recorded.seq.to_string())
                .event(recorded.envelope.event_type.clone())
                .data(log::to_json(&recorded).to_string()),
        ),
        Relayed::Heartbeat => Some(sse::Event::default().comment("alive")),
    });
    sse::reply(Channel(events)).into_response()
}

enum Relayed {
    Event(Recorded),
    Heartbeat,
}

/// Relays the scan of `filter` to a channel a body reads, as `render` makes each item,
/// with a heartbeat when a followed log is quiet. A failed scan ends the body (logged).
fn relay<T: Send + 'static>(
    app: &App,
    filter: log::LogFilter,
    follow: bool,
    render: impl Fn(Relayed) -> Option<T> + Send + 'static,
) -> mpsc::Receiver<Result<T, Infallible>> {
    let mut scan = log::scan(&app.store, filter, follow);
    let (sender, receiver) = mpsc::channel(64);
    let span = tracing::Span::current();
    tokio::spawn(async move {
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.tick().await;
        loop {
            let item = tokio::select! {
                _ = sender.closed() => return,
                _ = heartbeat.tick() => Relayed::Heartbeat,
                next = scan.recv() => match next {
                    Some(Ok(recorded)) => Relayed::Event(recorded),
                    Some(Err(e)) => {
                        span.in_scope(|| tracing::warn!(error = %e, "log stream ended by the event store"));
                        return;
                    }
                    None => return,
                },
            };
            if let Some(rendered) = render(item)
                && sender.send(Ok(rendered)).await.is_err()
            {
                return;
            }
        }
    });
    receiver
}

/// A channel's receiving end as the stream a response body reads.
struct Channel<T>(mpsc::Receiver<T>);

impl<T> futures::Stream for Channel<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}
