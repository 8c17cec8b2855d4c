//! What a projection reads: the log's messages, opened and decoded a batch ahead of the
//! writer.
//!
//! A live projection reads through an ordered consumer of its own ([`read_ahead`]), so each
//! goes at its own pace and one that halts stops no other. A rebuild of several read
//! models at once reads the log once instead ([`fan_out`]): one ordered consumer over the
//! whole stream hands each message to the one read model of its aggregate. Read per read
//! model, the log would be read more than twice over (NATS 2.9 filters a consumer by one
//! subject, so a read model of several aggregates reads every event), and on two cores
//! that reading is time the database does not get.
//!
//! Either way, [`decode_ahead`] is where a projection's messages become events: it takes
//! what is ready (up to a batch), opens the sealed personal values of all of it with one
//! look-up of their keys, decodes each event, and keeps at most two batches waiting, which
//! is what bounds memory.

use std::{collections::HashMap, sync::Arc};

use async_nats::{
    Subject,
    jetstream::{
        self,
        consumer::{DeliverPolicy, pull},
    },
};
use bytes::Bytes;
use events::{Envelope, PersonalKeys, personal};
use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::mpsc;

use crate::{
    projector::{Delivered, ProjectionError, Read, read_message},
    registry::Projection,
};

/// Events applied in one transaction at most, and the most read and decoded ahead of the
/// writer (two batches).
pub(crate) const BATCH: usize = 2000;

/// A message of the log as it arrives: its stream sequence, how many messages are pending
/// after it (0 when it is the last one to read), its subject and its payload (both shared,
/// so a copy is cheap).
#[derive(Clone)]
pub(crate) struct Raw {
    pub seq: u64,
    pub pending: u64,
    pub subject: Subject,
    pub payload: Bytes,
}

/// The decoding task and what it delivered (each with the messages pending after it); the
/// task ends with this.
pub(crate) struct ReadAhead {
    pub(crate) receiver: mpsc::Receiver<Result<(Delivered, u64), ProjectionError>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// An ordered consumer of `filter` from after `applied`.
async fn consume(
    stream: &jetstream::stream::Stream,
    filter: String,
    applied: u64,
) -> Result<impl Stream<Item = Result<Raw, ProjectionError>> + Send + 'static, ProjectionError> {
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: filter,
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: applied + 1,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| ProjectionError::Stream(e.to_string()))?;
    let messages = consumer
        .messages()
        .await
        .map_err(|e| ProjectionError::Stream(e.to_string()))?;
    Ok(messages.map(|message| {
        let message = message.map_err(|e| ProjectionError::Stream(e.to_string()))?;
        let info = message
            .info()
            .map_err(|e| ProjectionError::Stream(e.to_string()))?;
        let (seq, pending) = (info.stream_sequence, info.pending);
        let message = message.split().0;
        Ok(Raw {
            seq,
            pending,
            subject: message.subject,
            payload: message.payload,
        })
    }))
}

/// Reads `filter` of the log from after `applied` on a consumer of its own, delivering each
/// message as `projection` makes it out. `lag` is set to the pending count as it goes.
pub(crate) async fn read_ahead(
    stream: &jetstream::stream::Stream,
    filter: String,
    applied: u64,
    projection: Arc<dyn Projection>,
    keys: Arc<dyn PersonalKeys>,
    lag: Option<metrics::Gauge>,
) -> Result<ReadAhead, ProjectionError> {
    let messages = consume(stream, filter, applied).await?;
    Ok(decode_ahead(messages, projection, keys, lag))
}

/// Reads the log of `instance` once, from its start to `target`, for every one of
/// `projections`: each gets the messages of the aggregates it reads (two read models of one
/// aggregate each get them), and the message at `target`, which ends its replay (a
/// projection skips what is not its own). The read goes at the pace of the slowest of them,
/// which is when the rebuild ends anyway.
pub(crate) async fn fan_out(
    stream: &jetstream::stream::Stream,
    instance: &str,
    projections: &[Arc<dyn Projection>],
    keys: Arc<dyn PersonalKeys>,
    target: u64,
) -> Result<Vec<ReadAhead>, ProjectionError> {
    let mut messages = Box::pin(consume(stream, format!("{instance}.ev.>"), 0).await?);
    let mut senders = Vec::with_capacity(projections.len());
    let mut feeds = Vec::with_capacity(projections.len());
    let mut readers: HashMap<&'static str, Vec<usize>> = HashMap::new();
    for (i, projection) in projections.iter().enumerate() {
        for aggregate in projection.aggregates() {
            readers.entry(*aggregate).or_default().push(i);
        }
        let (sender, mut receiver) = mpsc::channel(2 * BATCH);
        senders.push(sender);
        feeds.push(decode_ahead(
            futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)),
            projection.clone(),
            keys.clone(),
            None,
        ));
    }
    let everyone: Vec<usize> = (0..senders.len()).collect();
    let router = tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            let mut raw = match message {
                Ok(raw) => raw,
                Err(e) => {
                    for sender in &senders {
                        let _ = sender
                            .send(Err(ProjectionError::Stream(e.to_string())))
                            .await;
                    }
                    return;
                }
            };
            raw.pending = target.saturating_sub(raw.seq);
            let last = raw.seq >= target;
            let aggregate = raw.subject.split('.').nth(2).unwrap_or_default();
            let to = match readers.get(aggregate) {
                _ if last => &everyone[..],
                Some(to) => &to[..],
                None => &[],
            };
            for i in to {
                // A read model that failed has dropped its feed; the others go on.
                let _ = senders[*i].send(Ok(raw.clone())).await;
            }
            if last || senders.iter().all(mpsc::Sender::is_closed) {
                return;
            }
        }
    });
    // The router ends by itself at `target`, or at the next message once every feed is
    // dropped.
    drop(router);
    Ok(feeds)
}

/// Decodes `messages` for `projection` in a task of its own, so that the next batch is
/// ready while the current one is written.
pub(crate) fn decode_ahead(
    messages: impl Stream<Item = Result<Raw, ProjectionError>> + Send + 'static,
    projection: Arc<dyn Projection>,
    keys: Arc<dyn PersonalKeys>,
    lag: Option<metrics::Gauge>,
) -> ReadAhead {
    let (sender, receiver) = mpsc::channel(2 * BATCH);
    let reader = tokio::spawn(async move {
        let mut messages = Box::pin(messages);
        // Kept from chunk to chunk (see `Scratch::apply_fed`).
        let (mut chunk, mut read) = (Vec::with_capacity(BATCH), Vec::with_capacity(BATCH));
        while let Some(first) = messages.next().await {
            // What the log has ready joins it, so that the sealed values of all of it are
            // opened with one look-up of their keys.
            chunk.push(first);
            while chunk.len() < BATCH {
                match messages.next().now_or_never() {
                    Some(Some(more)) => chunk.push(more),
                    _ => break,
                }
            }
            let mut failed = None;
            for message in chunk.drain(..) {
                match message {
                    Ok(raw) => {
                        if let Some(lag) = &lag {
                            lag.set(raw.pending as f64);
                        }
                        let one = read_message(
                            projection.as_ref(),
                            raw.seq,
                            raw.subject.as_str(),
                            &raw.payload,
                        );
                        read.push((raw.pending, one));
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            let sealed: Vec<&mut Envelope> = read
                .iter_mut()
                .filter_map(|(_, one)| match one {
                    Read::Envelope { envelope, .. }
                        if personal::sealed_key_ids(envelope).next().is_some() =>
                    {
                        Some(envelope)
                    }
                    _ => None,
                })
                .collect();
            if !sealed.is_empty()
                && let Err(e) = keys.open(sealed).await
            {
                let _ = sender.send(Err(e.into())).await;
                return;
            }
            for (pending, one) in read.drain(..) {
                if sender
                    .send(Ok((one.decode(projection.as_ref()), pending)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if let Some(e) = failed {
                let _ = sender.send(Err(e)).await;
                return;
            }
        }
    });
    ReadAhead { receiver, reader }
}
