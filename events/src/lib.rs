//! The domain events of Gantry and the envelope they travel in.
//!
//! Every change in Gantry is one event appended to the NATS JetStream stream of its
//! instance, on the subject of its aggregate (`<instance>.ev.<aggregate>.<id>`). This crate
//! holds only data: the envelope ([`Envelope`]), each aggregate's event enum, and the
//! upcasters that turn an older schema version of an event into the current one, so that the
//! command side, the projections and the workers all read the log the same way.

pub mod accounting;
pub mod admins;
pub mod cluster;
pub mod course;
mod envelope;
pub mod group;
pub mod images;
pub mod job;
pub mod personal;
pub mod schema;
pub mod upcast;
pub mod user;

pub use accounting::{AccountEvent, SlurmJobEvent, SlurmUserEvent};
pub use admins::AdminsEvent;
pub use cluster::ClusterEvent;
pub use course::CourseEvent;
pub use envelope::{DecodeError, Envelope, Meta, Recorded};
pub use group::GroupEvent;
pub use images::ImagesEvent;
pub use job::JobEvent;
pub use personal::PersonalKeys;
pub use user::UserEvent;

use serde::{Serialize, de::DeserializeOwned};

/// What each aggregate's event enum provides so that it can be put into an envelope and
/// read back from one.
///
/// Event enums are serialized adjacently tagged (`{"type": "CourseCreated", "data": {...}}`),
/// which is exactly the `type` and `data` fields of the envelope.
pub trait DomainEvent:
    Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync + 'static
{
    /// The aggregate type, also the subject token: `course`, `user`.
    const AGGREGATE: &'static str;

    /// Every event type of the aggregate, as the `type` of its envelope. A type not listed
    /// here is one this build does not know (a test keeps it equal to the enum's variants).
    const TYPES: &'static [&'static str];

    /// The schema version written now for this event's type.
    fn version(&self) -> u32 {
        1
    }

    /// The schema version this build writes and reads for `event_type`.
    fn current_version(_event_type: &str) -> u32 {
        1
    }

    /// The fields of `event_type`'s data that hold a person's data (email, phone, real name,
    /// LDAP uid): the log keeps them sealed with the person's key, so that destroying the
    /// key forgets them ([`personal`]). None by default.
    fn personal_fields(_event_type: &str) -> &'static [&'static str] {
        &[]
    }

    /// Turns the `data` of an older `version` of `event_type` into the shape of
    /// `version + 1`. The default knows no older versions; see [`upcast`] for the chain.
    fn upcast_one(
        event_type: &str,
        version: u32,
        _data: serde_json::Value,
    ) -> Result<serde_json::Value, DecodeError> {
        Err(DecodeError::UnknownVersion {
            event_type: event_type.to_string(),
            version,
        })
    }
}

/// Any event of the log, decoded by its aggregate: what projections and workers consume.
#[derive(Debug, Clone)]
pub enum Event {
    Course(CourseEvent),
    User(UserEvent),
    Group(GroupEvent),
    Admins(AdminsEvent),
    Job(JobEvent),
    Images(ImagesEvent),
    Cluster(ClusterEvent),
    Account(AccountEvent),
    SlurmUser(SlurmUserEvent),
    SlurmJob(SlurmJobEvent),
}

impl Event {
    /// Every aggregate type, in the order of [`Event`]'s variants.
    pub const AGGREGATES: &'static [&'static str] = &[
        CourseEvent::AGGREGATE,
        UserEvent::AGGREGATE,
        GroupEvent::AGGREGATE,
        AdminsEvent::AGGREGATE,
        JobEvent::AGGREGATE,
        ImagesEvent::AGGREGATE,
        ClusterEvent::AGGREGATE,
        AccountEvent::AGGREGATE,
        SlurmUserEvent::AGGREGATE,
        SlurmJobEvent::AGGREGATE,
    ];

    /// Decodes an envelope of any aggregate into its typed event.
    pub fn decode(envelope: &Envelope) -> Result<Self, DecodeError> {
        match envelope.aggregate.as_str() {
            CourseEvent::AGGREGATE => envelope.decode().map(Event::Course),
            UserEvent::AGGREGATE => envelope.decode().map(Event::User),
            GroupEvent::AGGREGATE => envelope.decode().map(Event::Group),
            AdminsEvent::AGGREGATE => envelope.decode().map(Event::Admins),
            JobEvent::AGGREGATE => envelope.decode().map(Event::Job),
            ImagesEvent::AGGREGATE => envelope.decode().map(Event::Images),
            ClusterEvent::AGGREGATE => envelope.decode().map(Event::Cluster),
            AccountEvent::AGGREGATE => envelope.decode().map(Event::Account),
            SlurmUserEvent::AGGREGATE => envelope.decode().map(Event::SlurmUser),
            SlurmJobEvent::AGGREGATE => envelope.decode().map(Event::SlurmJob),
            other => Err(DecodeError::UnknownAggregate(other.to_string())),
        }
    }
}
