//! An aggregate's history as an admin reads it: its events, and its state folded from them
//! by the aggregate's own `evolve`, now or as it was at a past moment.
//!
//! [`registered`] is the one list of aggregate types an admin can look at (and filter the
//! log by): a new aggregate is one line there. Folding goes through [`Aggregate::evolve`],
//! the very function the write side decides on, so the state shown is the state a command
//! would meet.
//!
//! Decisions:
//! - A point in time (`At::Time`) is compared with each event's `meta.occurred_at`; a
//!   sequence (`At::Seq`) is inclusive: the state after that event.
//! - An event this build cannot decode stops the fold with [`HistoryError::Undecodable`]
//!   rather than showing a state that skipped it.

use chrono::{DateTime, Utc};
use events::{DecodeError, DomainEvent, Recorded};
use serde::Serialize;
use serde_json::Value;

use crate::{
    Aggregate, EventStore, JetStreamStore, StoreError, account::Account, admins::Admins,
    cluster::ClusterObject, course::Course, group::Group, images::Images, job::Job,
    slurm_job::SlurmJob, slurm_user::SlurmUser, user::User,
};

/// One aggregate type: its name (the subject token) and how to fold its events.
#[derive(Clone, Copy)]
pub struct AggregateType {
    pub name: &'static str,
    fold: fn(&[Recorded]) -> Result<Value, HistoryError>,
}

/// Every aggregate type of Gantry.
pub fn registered() -> Vec<AggregateType> {
    vec![
        kind::<Course>(),
        kind::<User>(),
        kind::<Group>(),
        kind::<Admins>(),
        kind::<Job>(),
        kind::<Images>(),
        kind::<ClusterObject>(),
        kind::<Account>(),
        kind::<SlurmUser>(),
        kind::<SlurmJob>(),
    ]
}

/// The registered type named `name`.
pub fn find(name: &str) -> Option<AggregateType> {
    registered().into_iter().find(|t| t.name == name)
}

fn kind<A: Aggregate + Serialize>() -> AggregateType {
    AggregateType {
        name: A::Event::AGGREGATE,
        fold: fold::<A>,
    }
}

fn fold<A: Aggregate + Serialize>(events: &[Recorded]) -> Result<Value, HistoryError> {
    let mut state = A::default();
    for recorded in events {
        let event: A::Event =
            recorded
                .envelope
                .decode()
                .map_err(|e: DecodeError| HistoryError::Undecodable {
                    seq: recorded.seq,
                    reason: e.to_string(),
                })?;
        state.evolve(&event);
    }
    serde_json::to_value(&state).map_err(|e| HistoryError::Undecodable {
        seq: events.last().map_or(0, |r| r.seq),
        reason: e.to_string(),
    })
}

/// Up to which point the history is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum At {
    Now,
    /// Events that occurred at or before this time.
    Time(DateTime<Utc>),
    /// Events up to and including this stream sequence.
    Seq(u64),
}

impl At {
    fn includes(&self, recorded: &Recorded) -> bool {
        match self {
            At::Now => true,
            At::Time(t) => recorded.envelope.meta.occurred_at <= *t,
            At::Seq(seq) => recorded.seq <= *seq,
        }
    }
}

/// The events of one aggregate up to a point, and its state after them.
#[derive(Debug, Clone)]
pub struct History {
    pub events: Vec<Recorded>,
    pub state: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The log holds no event of this aggregate at all.
    #[error("no such aggregate")]
    NotFound,
    #[error("event at sequence {seq} cannot be folded: {reason}")]
    Undecodable { seq: u64, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AggregateType {
    /// The history of aggregate `id` up to `at`, read from its subject of the log.
    pub async fn history(
        &self,
        store: &JetStreamStore,
        id: &str,
        at: At,
    ) -> Result<History, HistoryError> {
        let mut events = store.read_after(self.name, id, 0).await?;
        if events.is_empty() {
            return Err(HistoryError::NotFound);
        }
        events.retain(|r| at.includes(r));
        let state = (self.fold)(&events)?;
        Ok(History { events, state })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::{Envelope, Meta, course::CourseDeleted};

    fn recorded(seq: u64, event: &events::CourseEvent, at: &str) -> Recorded {
        let meta = Meta {
            actor: "user:admin".into(),
            request_id: "r".into(),
            causation_id: None,
            occurred_at: at.parse().unwrap(),
            idempotency_key: None,
            request_digest: None,
        };
        Recorded {
            seq,
            envelope: Envelope::new("c1", event, meta).unwrap(),
        }
    }

    #[test]
    fn every_event_enum_has_its_aggregate_type() {
        let names: Vec<_> = registered().iter().map(|t| t.name).collect();
        assert_eq!(names, events::Event::AGGREGATES);
        assert!(find("course").is_some());
        assert!(find("spaceship").is_none());
    }

    #[test]
    fn a_fold_is_the_aggregates_own_evolve() {
        let deleted = events::CourseEvent::CourseDeleted(CourseDeleted {});
        let events = [recorded(7, &deleted, "2026-01-01T00:00:00Z")];
        let state = (find("course").unwrap().fold)(&events).unwrap();
        assert_eq!(state["status"], "deleted");
        let none = (find("course").unwrap().fold)(&[]).unwrap();
        assert_eq!(none["status"], "new");
        assert!(At::Seq(7).includes(&events[0]));
        assert!(!At::Seq(6).includes(&events[0]));
        assert!(!At::Time("2025-12-31T23:59:59Z".parse().unwrap()).includes(&events[0]));
    }
}
