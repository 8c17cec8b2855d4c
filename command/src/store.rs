//! The event store: one JetStream stream per instance, one subject per aggregate.
//!
//! It is where an event becomes bytes and bytes become an event again, so it is where
//! personal data is sealed and opened (`events::personal`): [`JetStreamStore::append`]
//! seals each personal value with its person's key before it publishes, and
//! [`JetStreamStore::read_after`] opens what it read, with one look-up of the keys for all
//! of it. The aggregates decide on plaintext and never see a sealed value.

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{
    self,
    context::PublishErrorKind,
    message::PublishMessage,
    stream::{DirectGetErrorKind, StorageType},
};
use events::{
    Envelope, PersonalKeys, Recorded,
    personal::{self, KeysError},
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The aggregate's subject has moved past the expected sequence.
    #[error("wrong last sequence")]
    WrongLastSequence,
    /// NATS or the stream cannot be reached now.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    /// The log holds an event this build cannot read.
    #[error("unreadable event at sequence {seq}: {reason}")]
    Corrupt { seq: u64, reason: String },
}

/// What was appended: the event's stream sequence, and whether JetStream recognized the
/// message id as one it already stored (then `seq` is the original's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub duplicate: bool,
}

/// Append to and read from the log, aggregate by aggregate.
pub trait EventStore: Send + Sync + 'static {
    /// The events of one aggregate with a sequence above `after`, in order.
    fn read_after(
        &self,
        aggregate: &str,
        id: &str,
        after: u64,
    ) -> impl Future<Output = Result<Vec<Recorded>, StoreError>> + Send;

    /// Appends `envelope` if the aggregate's last sequence is still `expected` (0: none yet).
    /// `message_id` lets JetStream drop a repeat of the same write.
    fn append(
        &self,
        envelope: &Envelope,
        expected: u64,
        message_id: Option<&str>,
    ) -> impl Future<Output = Result<Appended, StoreError>> + Send;
}

/// The JetStream implementation of [`EventStore`].
#[derive(Clone)]
pub struct JetStreamStore {
    js: jetstream::Context,
    stream: jetstream::stream::Stream,
    instance: String,
    /// Seals personal values on append and opens them on read. Without one, the store
    /// writes and reads them as they are (only tools that read the raw log go without).
    keys: Option<Arc<dyn PersonalKeys>>,
}

impl JetStreamStore {
    /// Connects to the stream `<INSTANCE>_EVENTS`, creating it if it is missing with a
    /// duplicate window of `duplicate_window` (how long JetStream drops a repeated
    /// `Nats-Msg-Id`; aggregates remember keys beyond it).
    pub async fn open(
        client: async_nats::Client,
        instance: &str,
        duplicate_window: Duration,
    ) -> Result<Self, StoreError> {
        let js = jetstream::new(client);
        let stream = js
            .get_or_create_stream(jetstream::stream::Config {
                name: stream_name(instance),
                subjects: vec![format!("{instance}.ev.>")],
                storage: StorageType::File,
                allow_direct: true,
                duplicate_window,
                ..Default::default()
            })
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Self {
            js,
            stream,
            instance: instance.to_string(),
            keys: None,
        })
    }

    /// The same store, sealing and opening personal values with `keys`.
    pub fn with_personal_keys(self, keys: Arc<dyn PersonalKeys>) -> Self {
        Self {
            keys: Some(keys),
            ..self
        }
    }

    pub fn stream(&self) -> &jetstream::stream::Stream {
        &self.stream
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The subject of one aggregate: `<instance>.ev.<aggregate>.<id>`.
    pub fn subject(&self, aggregate: &str, id: &str) -> String {
        format!("{}.ev.{aggregate}.{id}", self.instance)
    }

    /// The filter that matches every event of the instance.
    pub fn all_subjects(&self) -> String {
        format!("{}.ev.>", self.instance)
    }

    /// Opens the sealed personal values of `events` with one look-up of their keys (a store
    /// without keys leaves them as they are).
    pub(crate) async fn open_personal(&self, events: &mut [Recorded]) -> Result<(), StoreError> {
        let Some(keys) = &self.keys else {
            return Ok(());
        };
        let sealed: Vec<&mut Envelope> = events
            .iter_mut()
            .map(|r| &mut r.envelope)
            .filter(|e| personal::sealed_key_ids(e).next().is_some())
            .collect();
        if !sealed.is_empty() {
            keys.open(sealed).await.map_err(keys_error)?;
        }
        Ok(())
    }

    /// The sequence of the last event in the log (0 when empty).
    pub async fn last_sequence(&self) -> Result<u64, StoreError> {
        let info = self
            .stream
            .get_info()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(info.state.last_sequence)
    }
}

/// Whether `name` can name an instance: it goes unquoted into NATS subjects, stream and
/// consumer names and SQL identifiers, so 1-40 characters of a-z, 0-9 and `_`, starting
/// with a letter.
pub fn is_plain_instance_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `<INSTANCE>_EVENTS`: JetStream stream names are conventionally upper case.
pub fn stream_name(instance: &str) -> String {
    format!("{}_EVENTS", instance.to_uppercase())
}

impl EventStore for JetStreamStore {
    async fn read_after(
        &self,
        aggregate: &str,
        id: &str,
        after: u64,
    ) -> Result<Vec<Recorded>, StoreError> {
        let subject = self.subject(aggregate, id);
        let mut events = Vec::new();
        let mut next = after + 1;
        loop {
            match self
                .stream
                .direct_get_next_for_subject(subject.as_str(), Some(next))
                .await
            {
                Ok(message) => {
                    let envelope = Envelope::from_bytes(&message.payload).map_err(|e| {
                        StoreError::Corrupt {
                            seq: message.sequence,
                            reason: e.to_string(),
                        }
                    })?;
                    next = message.sequence + 1;
                    events.push(Recorded {
                        seq: message.sequence,
                        envelope,
                    });
                }
                Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => break,
                Err(e) => return Err(StoreError::Unavailable(e.to_string())),
            }
        }
        self.open_personal(&mut events).await?;
        Ok(events)
    }

    async fn append(
        &self,
        envelope: &Envelope,
        expected: u64,
        message_id: Option<&str>,
    ) -> Result<Appended, StoreError> {
        let sealed;
        let envelope = match &self.keys {
            Some(keys) if personal::needs_sealing(envelope) => {
                let mut copy = envelope.clone();
                keys.seal(&mut copy).await.map_err(keys_error)?;
                sealed = copy;
                &sealed
            }
            _ => envelope,
        };
        let payload = envelope.to_bytes().map_err(|e| StoreError::Corrupt {
            seq: 0,
            reason: e.to_string(),
        })?;
        let mut message = PublishMessage::build()
            .payload(payload.into())
            .expected_last_subject_sequence(expected);
        if let Some(id) = message_id {
            message = message.message_id(id);
        }
        let subject = self.subject(&envelope.aggregate, &envelope.aggregate_id);
        let ack = self
            .js
            .send_publish(subject, message)
            .await
            .map_err(publish_error)?
            .await
            .map_err(publish_error)?;
        Ok(Appended {
            seq: ack.sequence,
            duplicate: ack.duplicate,
        })
    }
}

/// A key store that cannot seal or open stops the write or the load; nothing is written or
/// decided on a value it could not handle.
fn keys_error(e: KeysError) -> StoreError {
    match e {
        KeysError::Unavailable(reason) => StoreError::Unavailable(reason),
        KeysError::Failed(reason) => StoreError::Unavailable(format!("personal keys: {reason}")),
    }
}

fn publish_error(e: async_nats::jetstream::context::PublishError) -> StoreError {
    match e.kind() {
        PublishErrorKind::WrongLastSequence => StoreError::WrongLastSequence,
        _ => StoreError::Unavailable(e.to_string()),
    }
}
