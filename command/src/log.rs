//! The log read whole, for admins: every event that matches a filter, in sequence order,
//! as a page or as a stream that follows the log as it grows.
//!
//! Filtering by aggregate type and id is JetStream's: it becomes the consumer's subject
//! filter (`<instance>.ev.<type>.<id>`, with `*`/`>` for what is not given), so the server
//! sends only those events. The other filters (event type, actor, time) are applied here, on
//! a bounded channel, one event at a time: a scan never holds more than a chunk of the log.
//!
//! Decisions:
//! - Times (`from`, `to`) are compared with `meta.occurred_at`. A scan with `from` (and no
//!   `after`) starts at the first event JetStream stored at or after it; one with `to`
//!   stops once the log holds events stored [`TO_SLACK`] after it (an event occurs just
//!   before it is stored, and concurrent writers store in an order close to their clocks').
//! - `after` is exclusive; `limit` is 1-1000 (default 100).
//! - Personal values are shown opened, as the read models show them (empty once forgotten).
//! - An envelope that cannot be read is left out with a warning: the parked events list
//!   says which ones the read side could not apply.

use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use chrono::{DateTime, Utc};
use events::{Envelope, Recorded};
use futures::{FutureExt, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::warn;

use crate::{JetStreamStore, StoreError, history};

/// Events a page holds at most, and by default.
pub const MAX_LIMIT: usize = 1000;
pub const DEFAULT_LIMIT: usize = 100;
/// How far past `to` the log is read before a scan stops.
pub const TO_SLACK: Duration = Duration::from_secs(10);
/// Events read ahead of the one being sent.
const CHUNK: usize = 256;
/// How long a query (not a follow) waits for the next event of its match before it takes
/// its consumer for stalled and reads on with a new one.
const QUIET: std::time::Duration = std::time::Duration::from_secs(3);

/// The filters as a client spells them (query parameters, command-line flags).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawFilter {
    pub aggregate: Option<String>,
    pub aggregate_id: Option<String>,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub actor: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub after: Option<String>,
    pub limit: Option<String>,
    pub follow: Option<String>,
}

/// A client's filter that cannot be used, in words for the client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterError {
    #[error("unknown aggregate type {0:?}; known: {1}")]
    UnknownAggregate(String, String),
    #[error("aggregate_id must be 1-200 characters without '.', '*', '>' or spaces")]
    BadAggregateId,
    #[error("{0} must be an RFC 3339 time, such as 2026-01-31T12:00:00Z")]
    BadTime(&'static str),
    #[error("after must be a stream sequence (a whole number)")]
    BadSequence,
    #[error("limit must be a whole number from 1 to 1000")]
    BadLimit,
    #[error("follow must be true or false")]
    BadFollow,
    #[error("from must not be later than to")]
    EmptyRange,
}

/// A valid filter of the log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogFilter {
    pub aggregate: Option<&'static str>,
    pub aggregate_id: Option<String>,
    pub event_type: Option<String>,
    pub actor: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only events with a greater stream sequence.
    pub after: u64,
}

/// A filter, how many events a page holds, and whether to follow the log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogQuery {
    pub filter: LogFilter,
    pub limit: usize,
    pub follow: bool,
}

/// Whether `id` can stand as one token of a subject.
pub fn is_subject_token(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && !id
            .chars()
            .any(|c| matches!(c, '.' | '*' | '>') || c.is_whitespace() || c.is_control())
}

fn time(value: Option<&str>, name: &'static str) -> Result<Option<DateTime<Utc>>, FilterError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| FilterError::BadTime(name))
        })
        .transpose()
}

impl RawFilter {
    /// The filter it spells, or what is wrong with it.
    pub fn parse(&self) -> Result<LogQuery, FilterError> {
        let aggregate = match self.aggregate.as_deref() {
            None | Some("") => None,
            Some(name) => Some(
                history::find(name)
                    .ok_or_else(|| {
                        let known: Vec<_> = history::registered().iter().map(|t| t.name).collect();
                        FilterError::UnknownAggregate(name.to_string(), known.join(", "))
                    })?
                    .name,
            ),
        };
        let aggregate_id = match self.aggregate_id.as_deref() {
            None | Some("") => None,
            Some(id) if is_subject_token(id) => Some(id.to_string()),
            Some(_) => return Err(FilterError::BadAggregateId),
        };
        let from = time(self.from.as_deref(), "from")?;
        let to = time(self.to.as_deref(), "to")?;
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Err(FilterError::EmptyRange);
        }
        let after = match self.after.as_deref() {
            None | Some("") => 0,
            Some(v) => v.parse().map_err(|_| FilterError::BadSequence)?,
        };
        let limit = match self.limit.as_deref() {
            None | Some("") => DEFAULT_LIMIT,
            Some(v) => v
                .parse()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or(FilterError::BadLimit)?,
        };
        let follow = match self.follow.as_deref() {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(FilterError::BadFollow),
        };
        let nonempty = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        Ok(LogQuery {
            filter: LogFilter {
                aggregate,
                aggregate_id,
                event_type: nonempty(&self.event_type),
                actor: nonempty(&self.actor),
                from,
                to,
                after,
            },
            limit,
            follow,
        })
    }
}

impl LogFilter {
    /// The subject filter JetStream applies.
    pub fn subject(&self, instance: &str) -> String {
        match (self.aggregate, self.aggregate_id.as_deref()) {
            (None, None) => format!("{instance}.ev.>"),
            (Some(aggregate), None) => format!("{instance}.ev.{aggregate}.>"),
            (None, Some(id)) => format!("{instance}.ev.*.{id}"),
            (Some(aggregate), Some(id)) => format!("{instance}.ev.{aggregate}.{id}"),
        }
    }

    /// Whether `envelope` passes the filters JetStream does not apply.
    pub fn matches(&self, envelope: &Envelope) -> bool {
        let occurred = envelope.meta.occurred_at;
        self.event_type
            .as_deref()
            .is_none_or(|t| envelope.event_type == t)
            && self
                .actor
                .as_deref()
                .is_none_or(|a| envelope.meta.actor == a)
            && self.from.is_none_or(|from| occurred >= from)
            && self.to.is_none_or(|to| occurred <= to)
    }

    fn deliver_policy(&self) -> DeliverPolicy {
        match self.from {
            Some(from) if self.after == 0 => {
                let nanos = from.timestamp_nanos_opt().unwrap_or(0);
                match time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)) {
                    Ok(start_time) => DeliverPolicy::ByStartTime { start_time },
                    Err(_) => DeliverPolicy::All,
                }
            }
            _ => DeliverPolicy::ByStartSequence {
                start_sequence: self.after + 1,
            },
        }
    }

    /// Whether a message stored at `published` lies past the end of the range.
    fn past_end(&self, published: time::OffsetDateTime) -> bool {
        self.to.is_some_and(|to| {
            let end = to + TO_SLACK;
            end.timestamp_nanos_opt()
                .is_some_and(|end| published.unix_timestamp_nanos() > i128::from(end))
        })
    }
}

/// One event of the log as an admin reads it: its envelope with its stream sequence.
pub fn to_json(recorded: &Recorded) -> Value {
    let mut value = serde_json::to_value(&recorded.envelope).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut value {
        fields.insert("seq".into(), recorded.seq.into());
    }
    value
}

/// The events that match `filter`, in sequence order, on a channel. Without `follow` it
/// ends at the end of the log; with it, it goes on with each new event. Dropping the
/// receiver ends the scan and its consumer.
pub fn scan(
    store: &JetStreamStore,
    filter: LogFilter,
    follow: bool,
) -> mpsc::Receiver<Result<Recorded, StoreError>> {
    let (sender, receiver) = mpsc::channel(CHUNK);
    let store = store.clone();
    tokio::spawn(async move {
        if let Err(e) = read(&store, &filter, follow, &sender).await {
            let _ = sender.send(Err(e)).await;
        }
    });
    receiver
}

async fn read(
    store: &JetStreamStore,
    filter: &LogFilter,
    follow: bool,
    sender: &mpsc::Sender<Result<Recorded, StoreError>>,
) -> Result<(), StoreError> {
    // The last sequence read: a consumer that goes quiet is replaced by one that starts
    // after it, so a query neither hangs nor repeats an event.
    let mut last_seen: Option<u64> = None;
    loop {
        let policy = match last_seen {
            Some(seq) => DeliverPolicy::ByStartSequence {
                start_sequence: seq + 1,
            },
            None => filter.deliver_policy(),
        };
        match read_from(store, filter, policy, follow, sender, &mut last_seen).await? {
            Ended::Done => return Ok(()),
            Ended::Quiet => {
                warn!(
                    ?last_seen,
                    "the log's consumer went quiet; reading on with a new one"
                );
            }
        }
    }
}

/// How one consumer's read ended.
enum Ended {
    /// Every match was sent, or the client left.
    Done,
    /// A query's consumer delivered nothing for [`QUIET`] though events were pending.
    Quiet,
}

async fn read_from(
    store: &JetStreamStore,
    filter: &LogFilter,
    deliver_policy: DeliverPolicy,
    follow: bool,
    sender: &mpsc::Sender<Result<Recorded, StoreError>>,
    last_seen: &mut Option<u64>,
) -> Result<Ended, StoreError> {
    let unavailable = |e: &dyn std::fmt::Display| StoreError::Unavailable(e.to_string());
    let consumer = store
        .stream()
        .create_consumer(pull::OrderedConfig {
            filter_subject: filter.subject(store.instance()),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(&e))?;
    // A query (not a follow) reads the matches the stream held when it started, and no
    // more: events appended meanwhile are left to the next page.
    let mut remaining = consumer.cached_info().num_pending;
    if !follow && remaining == 0 {
        return Ok(Ended::Done);
    }
    let mut messages = consumer.messages().await.map_err(|e| unavailable(&e))?;
    loop {
        let first = tokio::select! {
            _ = sender.closed() => return Ok(Ended::Done),
            next = messages.next() => next,
            _ = tokio::time::sleep(QUIET), if !follow => return Ok(Ended::Quiet),
        };
        let Some(first) = first else {
            return Err(StoreError::Unavailable("event stream closed".into()));
        };
        let mut chunk = vec![first];
        while chunk.len() < CHUNK {
            match messages.next().now_or_never() {
                Some(Some(more)) => chunk.push(more),
                _ => break,
            }
        }
        let mut matched = Vec::with_capacity(chunk.len());
        let mut done = false;
        for message in chunk {
            let message = message.map_err(|e| unavailable(&e))?;
            let info = message.info().map_err(|e| unavailable(&e))?;
            let (seq, pending) = (info.stream_sequence, info.pending);
            *last_seen = Some(seq);
            if filter.past_end(info.published) {
                done = true;
                break;
            }
            match Envelope::from_bytes(&message.payload) {
                Ok(envelope) if filter.matches(&envelope) => {
                    matched.push(Recorded { seq, envelope });
                }
                Ok(_) => {}
                Err(e) => warn!(seq, error = %e, "unreadable envelope left out of the log"),
            }
            remaining = remaining.saturating_sub(1);
            if !follow && (pending == 0 || remaining == 0) {
                done = true;
                break;
            }
        }
        store.open_personal(&mut matched).await?;
        for recorded in matched {
            if sender.send(Ok(recorded)).await.is_err() {
                return Ok(Ended::Done);
            }
        }
        if done {
            return Ok(Ended::Done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> RawFilter {
        let query = serde_urlencoded::to_string(pairs).unwrap();
        serde_urlencoded::from_str(&query).unwrap()
    }

    #[test]
    fn filters_become_a_subject_and_checks() {
        let q = raw(&[
            ("aggregate", "course"),
            ("aggregate_id", "c1"),
            ("limit", "5"),
        ])
        .parse()
        .unwrap();
        assert_eq!(q.filter.subject("gantry"), "gantry.ev.course.c1");
        assert_eq!(q.limit, 5);
        assert!(!q.follow);
        let q = raw(&[("aggregate_id", "c1")]).parse().unwrap();
        assert_eq!(q.filter.subject("gantry"), "gantry.ev.*.c1");
        let q = raw(&[("aggregate", "user")]).parse().unwrap();
        assert_eq!(q.filter.subject("gantry"), "gantry.ev.user.>");
        assert_eq!(raw(&[]).parse().unwrap().limit, DEFAULT_LIMIT);
    }

    #[test]
    fn bad_filters_say_what_is_wrong() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("aggregate", "spaceship")], "unknown aggregate type"),
            (&[("aggregate_id", "a.b")], "aggregate_id"),
            (&[("aggregate_id", "a>")], "aggregate_id"),
            (&[("from", "yesterday")], "from must be an RFC 3339"),
            (&[("to", "2026-13-01T00:00:00Z")], "to must be an RFC 3339"),
            (&[("after", "-1")], "after must be"),
            (&[("after", "x")], "after must be"),
            (&[("limit", "0")], "limit"),
            (&[("limit", "1001")], "limit"),
            (&[("follow", "yes")], "follow"),
            (
                &[
                    ("from", "2026-02-01T00:00:00Z"),
                    ("to", "2026-01-01T00:00:00Z"),
                ],
                "later than",
            ),
        ];
        for (pairs, message) in cases {
            let e = raw(pairs).parse().unwrap_err();
            assert!(e.to_string().contains(message), "{pairs:?}: {e}");
        }
    }
}
