//! Reading every aggregate of one type from the log, for the level-triggered passes that
//! must know all jobs (or all cluster objects) without a read model: workers depend on the
//! log alone, so a resync is right even when the projector is behind or down.

use std::{collections::HashMap, time::Duration};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use command::{Aggregate, StoreError};
use events::{DomainEvent, Envelope};
use futures::StreamExt;

use crate::{Error, reconciler::Context};

/// How long the log may keep a scan waiting for its next message.
const READ_WAIT: Duration = Duration::from_secs(10);

/// Every aggregate of type `A` in the log, by id, folded up to the log's end as it was
/// when the scan began.
pub async fn read_all<A: Aggregate>(ctx: &Context) -> Result<HashMap<String, A>, Error> {
    let aggregate = A::Event::AGGREGATE;
    let unavailable = |e: String| Error::Log(StoreError::Unavailable(e));
    let consumer = ctx
        .log
        .stream()
        .create_consumer(pull::OrderedConfig {
            filter_subject: format!("{}.ev.{aggregate}.>", ctx.instance),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let mut states: HashMap<String, A> = HashMap::new();
    if consumer.cached_info().num_pending == 0 {
        return Ok(states);
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    loop {
        let message = match tokio::time::timeout(READ_WAIT, messages.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(e))) => return Err(unavailable(e.to_string())),
            Ok(None) => return Err(unavailable("the log closed the scan".into())),
            Err(_) => {
                return Err(unavailable(format!(
                    "no {aggregate} event within {READ_WAIT:?}"
                )));
            }
        };
        let info = message.info().map_err(|e| unavailable(e.to_string()))?;
        let (seq, pending) = (info.stream_sequence, info.pending);
        let envelope = Envelope::from_bytes(&message.payload)
            .map_err(|e| Error::Undecodable(format!("{aggregate} at sequence {seq}: {e}")))?;
        let event: A::Event = envelope
            .decode()
            .map_err(|e| Error::Undecodable(format!("{aggregate} at sequence {seq}: {e}")))?;
        states
            .entry(envelope.aggregate_id.clone())
            .or_default()
            .evolve(&event);
        if pending == 0 {
            return Ok(states);
        }
    }
}
