//! The envelope: what one JetStream message of the event log carries.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::value::MapDeserializer};
use serde_json::Value;
use uuid::Uuid;

use crate::DomainEvent;

/// Who caused an event, and when: the questions an admin asks of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Meta {
    /// Who acted: `user:<username>`, `system:<worker>` for Gantry itself, or
    /// `epilogue:<cluster>` for a Slurm cluster's report.
    pub actor: String,
    /// The request id of the HTTP request that caused it (also its `X-Request-Id`).
    pub request_id: String,
    /// The event that caused this one, when a worker reacted to an event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    /// The client's idempotency key (scoped to actor, route and aggregate), when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// A digest of the command sent with that key, so that the same key with another
    /// request is told apart from a repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_digest: Option<String>,
}

/// One event as stored: identity, aggregate, type and schema version, data and meta.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub event_id: Uuid,
    pub aggregate: String,
    pub aggregate_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: u32,
    pub data: Value,
    pub meta: Meta,
}

/// An envelope with the stream sequence JetStream gave it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub seq: u64,
    pub envelope: Envelope,
}

/// Why an envelope could not be read as a domain event.
///
/// The difference matters to every consumer of the log: an event this build does not know
/// ([`DecodeError::is_unknown`]) may be read by a newer build, so a projection stops there
/// rather than skip it; a malformed one will never be readable, so it is parked.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed event: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("unknown aggregate type {0:?}")]
    UnknownAggregate(String),
    #[error("unknown event type {event_type:?} of aggregate {aggregate}")]
    UnknownType {
        aggregate: &'static str,
        event_type: String,
    },
    #[error("event {event_type} has no upcaster from version {version}")]
    UnknownVersion { event_type: String, version: u32 },
    #[error("upcasting {event_type} from version {version} failed: {reason}")]
    Upcast {
        event_type: String,
        version: u32,
        reason: String,
    },
    #[error("event does not serialize as {{type, data}}")]
    NotTagged,
}

impl DecodeError {
    /// Whether a newer build could read the event: an aggregate, type or version this build
    /// does not know.
    pub fn is_unknown(&self) -> bool {
        matches!(
            self,
            DecodeError::UnknownAggregate(_)
                | DecodeError::UnknownType { .. }
                | DecodeError::UnknownVersion { .. }
        )
    }
}

impl Envelope {
    /// Wraps a domain event of aggregate `aggregate_id` for appending.
    pub fn new<E: DomainEvent>(
        aggregate_id: &str,
        event: &E,
        meta: Meta,
    ) -> Result<Self, DecodeError> {
        let Value::Object(mut tagged) = serde_json::to_value(event)? else {
            return Err(DecodeError::NotTagged);
        };
        let Some(Value::String(event_type)) = tagged.remove("type") else {
            return Err(DecodeError::NotTagged);
        };
        Ok(Self {
            event_id: Uuid::new_v4(),
            aggregate: E::AGGREGATE.to_string(),
            aggregate_id: aggregate_id.to_string(),
            event_type,
            version: event.version(),
            data: tagged.remove("data").unwrap_or(Value::Null),
            meta,
        })
    }

    /// Reads the typed event back, upcasting other versions first.
    pub fn decode<E: DomainEvent>(&self) -> Result<E, DecodeError> {
        if self.aggregate != E::AGGREGATE {
            return Err(DecodeError::UnknownAggregate(self.aggregate.clone()));
        }
        if !E::TYPES.contains(&self.event_type.as_str()) {
            return Err(DecodeError::UnknownType {
                aggregate: E::AGGREGATE,
                event_type: self.event_type.clone(),
            });
        }
        let data = crate::upcast::to_current::<E>(&self.event_type, self.version, &self.data)?;
        // Read as `{"type": ..., "data": ...}` straight from the envelope's values, without
        // building that object: the log is decoded an event at a time in every replay.
        let tag = Value::String(self.event_type.clone());
        let tagged = MapDeserializer::<_, serde_json::Error>::new(
            [("type", &tag), ("data", data.as_ref())].into_iter(),
        );
        Ok(E::deserialize(tagged)?)
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, DecodeError> {
        Ok(serde_json::to_vec(self)?)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}
