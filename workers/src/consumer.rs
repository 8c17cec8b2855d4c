//! The loop every worker runs: fetch from its durable consumer, reconcile, acknowledge.

use std::time::Duration;

use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, pull},
};
use events::{Envelope, Event};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info_span, warn};

/// After this many deliveries a message that keeps failing is logged and dropped, so that
/// one poisoned event does not hold back the ones behind it.
const MAX_DELIVERIES: i64 = 20;

/// What a worker does with one event. Errors are retried with a back-off.
pub trait Reconciler: Sync {
    /// The worker's name: names its durable consumer.
    const NAME: &'static str;
    /// The aggregate whose events it consumes.
    const AGGREGATE: &'static str;

    fn reconcile(
        &self,
        envelope: &Envelope,
        event: &Event,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

pub async fn consume<R: Reconciler>(
    stream: &jetstream::stream::Stream,
    instance: &str,
    worker: &R,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match consume_until(stream, instance, worker, &stop).await {
            Ok(()) => return,
            Err(e) => warn!(worker = R::NAME, error = %e, "worker interrupted; resuming"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn consume_until<R: Reconciler>(
    stream: &jetstream::stream::Stream,
    instance: &str,
    worker: &R,
    stop: &CancellationToken,
) -> Result<(), String> {
    let name = format!("{instance}_{}", R::NAME);
    let consumer = stream
        .get_or_create_consumer(
            &name,
            pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: format!("{instance}.ev.{}.>", R::AGGREGATE),
                ack_policy: AckPolicy::Explicit,
                ack_wait: Duration::from_secs(60),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    loop {
        let message = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            next = messages.next() => match next {
                Some(message) => message.map_err(|e| e.to_string())?,
                None => return Err("consumer ended".into()),
            },
        };
        let info = message.info().map_err(|e| e.to_string())?;
        let (seq, delivered) = (info.stream_sequence, info.delivered);
        let span = info_span!("reconcile", worker = R::NAME, seq);
        let outcome = async {
            let envelope = Envelope::from_bytes(&message.payload)
                .map_err(|e| format!("unreadable event: {e}"))?;
            let event = Event::decode(&envelope).map_err(|e| format!("undecodable event: {e}"))?;
            worker.reconcile(&envelope, &event).await
        }
        .instrument(span.clone())
        .await;
        let ack = match outcome {
            Ok(()) => AckKind::Ack,
            Err(e) if delivered >= MAX_DELIVERIES => {
                span.in_scope(|| error!(error = %e, delivered, "giving up on this event"));
                AckKind::Term
            }
            Err(e) => {
                span.in_scope(|| warn!(error = %e, delivered, "will retry"));
                AckKind::Nak(Some(Duration::from_millis(
                    500 * delivered.clamp(1, 20) as u64,
                )))
            }
        };
        message.ack_with(ack).await.map_err(|e| e.to_string())?;
    }
}
