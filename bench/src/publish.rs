//! Filling a fresh instance's log straight through JetStream, as the catch-up and rebuild
//! benchmarks do: many publishes awaiting their acks at once, no Gantry in between.

use std::{collections::VecDeque, time::Instant};

use anyhow::{Context as _, bail};
use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};

use crate::instance::{Target, connect_nats};

/// One event for the log: its subject and its encoded envelope.
pub type Message = (String, Vec<u8>);

/// Opens (creating it if missing) the stream of `instance` as the store configures it, and
/// answers its last sequence.
pub async fn open(target: &Target, instance: &str) -> anyhow::Result<u64> {
    let client = connect_nats(&target.nats_url).await?;
    let store =
        command::JetStreamStore::open(client, instance, std::time::Duration::from_secs(600))
            .await
            .with_context(|| format!("cannot create the stream of instance {instance}"))?;
    Ok(store.last_sequence().await?)
}

/// Publishes `messages` with `in_flight` acks outstanding; answers how many were published
/// and how long it took.
pub async fn publish(
    target: &Target,
    in_flight: usize,
    messages: impl IntoIterator<Item = Message>,
) -> anyhow::Result<(u64, f64)> {
    if in_flight == 0 {
        bail!("at least one publish must be in flight");
    }
    let js = jetstream::new(connect_nats(&target.nats_url).await?);
    let started = Instant::now();
    let mut published = 0u64;
    let mut pending: VecDeque<PublishAckFuture> = VecDeque::with_capacity(in_flight);
    for (subject, bytes) in messages {
        if pending.len() >= in_flight {
            await_acks(&mut pending, in_flight / 2).await?;
        }
        let ack = js
            .send_publish(subject, PublishMessage::build().payload(bytes.into()))
            .await
            .context("cannot publish an event")?;
        pending.push_back(ack);
        published += 1;
    }
    await_acks(&mut pending, usize::MAX).await?;
    Ok((published, started.elapsed().as_secs_f64()))
}

/// Awaits up to `count` of the oldest outstanding acks.
async fn await_acks(pending: &mut VecDeque<PublishAckFuture>, count: usize) -> anyhow::Result<()> {
    let n = count.max(1).min(pending.len());
    let acks: Vec<PublishAckFuture> = pending.drain(..n).collect();
    for ack in futures::future::join_all(acks.into_iter().map(IntoFuture::into_future)).await {
        ack.context("JetStream did not acknowledge an event")?;
    }
    Ok(())
}
