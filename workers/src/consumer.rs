//! A worker: a durable JetStream consumer and the reconcilers it feeds, plus the periodic
//! resync that does not wait for any delivery.

use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};

use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, PullConsumer, pull},
};
use events::{Envelope, Event};
use futures::{StreamExt, stream::FuturesUnordered};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::{
    Error,
    parking::{Parked, ParkingLot},
    reconciler::{Action, Backoff, Context, Decision, Incoming, Reconciler, error_policy},
};

/// How long a message may go without an acknowledgement before JetStream hands it to
/// another process. A message being worked on is kept ours with in-progress acks.
const ACK_WAIT: Duration = Duration::from_secs(30);
/// How long one pull request waits for a message.
const FETCH_WAIT: Duration = Duration::from_secs(5);
/// How many messages one process works on at once (of different aggregates: one
/// aggregate's messages are settled in order).
const IN_FLIGHT: usize = 32;
/// How often the level-triggered resync runs after the one at start.
const RESYNC_EVERY: Duration = Duration::from_secs(300);

/// One durable consumer of an aggregate's events and the reconcilers each event goes to,
/// in order.
pub struct Worker {
    /// Names its durable consumer (`<instance>_<name>`), its metrics and its parked events.
    pub name: &'static str,
    /// The aggregate whose events it consumes.
    pub aggregate: &'static str,
    pub reconcilers: Vec<Box<dyn Reconciler>>,
}

/// How one message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// Its effect is in place (or its permanent failure recorded): acknowledge.
    Ack,
    /// It cannot be read, and is parked: terminate it.
    Term,
    /// Asked to stop before it was done: leave it for the next process.
    Stopped,
}

/// How one reconciler ended on one event.
enum Outcome {
    Done,
    Failed(Error),
    Stopped,
}

impl Worker {
    /// Consumes and resyncs until `stop`.
    pub async fn run(&self, ctx: &Context, parking: &dyn ParkingLot, stop: &CancellationToken) {
        tokio::join!(
            self.consume(ctx, parking, stop),
            self.resync_every(ctx, stop)
        );
    }

    async fn consume(&self, ctx: &Context, parking: &dyn ParkingLot, stop: &CancellationToken) {
        let mut backoff = Backoff::new();
        loop {
            let started = Instant::now();
            match self.consume_until(ctx, parking, stop).await {
                Ok(()) => return,
                Err(e) => warn!(worker = self.name, error = %e, "worker interrupted; resuming"),
            }
            // A consumer that ran a while was healthy: start the back-off afresh.
            if started.elapsed() > Duration::from_secs(60) {
                backoff = Backoff::new();
            }
            if !sleep_unless_stopped(backoff.next_delay(), stop).await {
                return;
            }
        }
    }

    async fn open(&self, ctx: &Context) -> Result<PullConsumer, String> {
        let name = format!("{}_{}", ctx.instance, self.name);
        ctx.log
            .stream()
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: format!("{}.ev.{}.>", ctx.instance, self.aggregate),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())
    }

    /// Works on up to [`IN_FLIGHT`] messages at once, several processes sharing the durable
    /// consumer. Messages of one aggregate are settled one after the other, in the order
    /// they came: a later one waits (kept ours with in-progress acks) until the one before
    /// it is acknowledged. No more is pulled than there is room for, so that no message
    /// waits in a client buffer past its ack wait.
    async fn consume_until(
        &self,
        ctx: &Context,
        parking: &dyn ParkingLot,
        stop: &CancellationToken,
    ) -> Result<(), String> {
        let mut consumer = self.open(ctx).await?;
        let ack_wait = match consumer.info().await {
            Ok(info) if !info.config.ack_wait.is_zero() => info.config.ack_wait,
            _ => ACK_WAIT,
        };
        let progress_every = (ack_wait / 3).max(Duration::from_millis(100));
        info!(
            worker = self.name,
            ?ack_wait,
            in_flight = IN_FLIGHT,
            "worker consuming"
        );
        let work = |message: jetstream::Message| async move {
            let settled = self
                .handle(&message, ctx, parking, progress_every, stop)
                .await;
            (message, settled)
        };
        let mut running = FuturesUnordered::new();
        // Per aggregate (its subject) with a message running: the ones that wait behind it.
        let mut waiting: HashMap<String, VecDeque<jetstream::Message>> = HashMap::new();
        let mut batch = None;
        let mut progress =
            tokio::time::interval_at(Instant::now() + progress_every, progress_every);
        progress.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut stopping = false;
        loop {
            let held = running.len() + waiting.values().map(VecDeque::len).sum::<usize>();
            if stopping && running.is_empty() {
                return Ok(());
            }
            if batch.is_none() && !stopping && held < IN_FLIGHT {
                batch = Some(
                    consumer
                        .batch()
                        .max_messages(IN_FLIGHT - held)
                        .expires(FETCH_WAIT)
                        .messages()
                        .await
                        .map_err(|e| e.to_string())?,
                );
            }
            tokio::select! {
                _ = stop.cancelled(), if !stopping => stopping = true,
                Some((message, settled)) = running.next(), if !running.is_empty() => {
                    let (message, settled): (jetstream::Message, Settled) = (message, settled);
                    let ack = match settled {
                        Settled::Ack => AckKind::Ack,
                        Settled::Term => AckKind::Term,
                        Settled::Stopped => {
                            stopping = true;
                            continue;
                        }
                    };
                    message
                        .double_ack_with(ack)
                        .await
                        .map_err(|e| format!("cannot acknowledge: {e}"))?;
                    let subject = message.subject.to_string();
                    match waiting.get_mut(&subject).and_then(VecDeque::pop_front) {
                        Some(next) if !stopping => running.push(work(next)),
                        _ => {
                            waiting.remove(&subject);
                        }
                    }
                }
                next = next_message(&mut batch), if batch.is_some() && !stopping => match next {
                    Some(message) => {
                        let message = message.map_err(|e| e.to_string())?;
                        match waiting.get_mut(message.subject.as_str()) {
                            Some(queue) => queue.push_back(message),
                            None => {
                                waiting.insert(message.subject.to_string(), VecDeque::new());
                                running.push(work(message));
                            }
                        }
                    }
                    None => batch = None,
                },
                _ = progress.tick() => {
                    for message in waiting.values().flatten() {
                        if let Err(e) = message.ack_with(AckKind::Progress).await {
                            debug!(worker = self.name, error = %e, "cannot send an in-progress ack");
                        }
                    }
                }
            }
        }
    }

    /// Settles one message, telling JetStream every `progress_every` that it is still being
    /// worked on, so that it is neither redelivered nor counted again meanwhile.
    async fn handle(
        &self,
        message: &jetstream::Message,
        ctx: &Context,
        parking: &dyn ParkingLot,
        progress_every: Duration,
        stop: &CancellationToken,
    ) -> Settled {
        let work = self.settle(message, ctx, parking, stop);
        tokio::pin!(work);
        let mut progress =
            tokio::time::interval_at(Instant::now() + progress_every, progress_every);
        progress.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                settled = &mut work => return settled,
                _ = progress.tick() => {
                    if let Err(e) = message.ack_with(AckKind::Progress).await {
                        debug!(worker = self.name, error = %e, "cannot send an in-progress ack");
                    }
                }
            }
        }
    }

    async fn settle(
        &self,
        message: &jetstream::Message,
        ctx: &Context,
        parking: &dyn ParkingLot,
        stop: &CancellationToken,
    ) -> Settled {
        let seq = message.info().map(|i| i.stream_sequence).unwrap_or(0);
        let incoming = match decode(seq, &message.payload) {
            Ok(incoming) => incoming,
            Err(mut parked) => {
                parked.consumer = self.name.to_string();
                error!(worker = self.name, seq, error = %parked.error, "undecodable event; parking it");
                if !self.park(parking, &parked, stop).await {
                    return Settled::Stopped;
                }
                self.count("parked");
                return Settled::Term;
            }
        };
        let span =
            info_span!("reconcile", worker = self.name, seq, event = %incoming.envelope.event_type);
        let mut failures = Vec::new();
        for reconciler in &self.reconcilers {
            match self
                .reconcile(reconciler.as_ref(), &incoming, ctx, stop)
                .instrument(span.clone())
                .await
            {
                Outcome::Done => {}
                Outcome::Failed(error) => {
                    failures.push(format!("{}: {}", reconciler.name(), error.describe()))
                }
                Outcome::Stopped => return Settled::Stopped,
            }
        }
        if failures.is_empty() {
            self.count("ok");
            return Settled::Ack;
        }
        let envelope = &incoming.envelope;
        let parked = Parked {
            consumer: self.name.to_string(),
            seq,
            aggregate: Some(envelope.aggregate.clone()),
            aggregate_id: Some(envelope.aggregate_id.clone()),
            event_type: Some(envelope.event_type.clone()),
            error: failures.join("; "),
        };
        if !self.park(parking, &parked, stop).await {
            return Settled::Stopped;
        }
        self.count("permanent");
        Settled::Ack
    }

    /// Runs one reconciler on one event until it is done or fails for good. Stop interrupts
    /// the waits between attempts, never an attempt.
    async fn reconcile(
        &self,
        reconciler: &dyn Reconciler,
        incoming: &Incoming,
        ctx: &Context,
        stop: &CancellationToken,
    ) -> Outcome {
        let mut backoff = Backoff::new();
        loop {
            let wait = match reconciler.reconcile(incoming, ctx).await {
                Ok(Action::Done) => return Outcome::Done,
                Ok(Action::RequeueAfter(delay)) => {
                    backoff = Backoff::new();
                    delay
                }
                Err(error) => {
                    match error_policy(
                        self.name,
                        reconciler.name(),
                        incoming.seq,
                        &error,
                        &mut backoff,
                    ) {
                        Decision::Retry(delay) => delay,
                        Decision::Park => return Outcome::Failed(error),
                    }
                }
            };
            if !sleep_unless_stopped(wait, stop).await {
                return Outcome::Stopped;
            }
        }
    }

    /// Records a parked event, waiting out a database that is away: the event is not let go
    /// before its record is stored. False when stopped first.
    async fn park(
        &self,
        parking: &dyn ParkingLot,
        parked: &Parked,
        stop: &CancellationToken,
    ) -> bool {
        let mut backoff = Backoff::new();
        loop {
            let error = match parking.park(parked).await {
                Ok(()) => return true,
                Err(reason) => Error::Parking(reason),
            };
            let delay = match error_policy(self.name, "park", parked.seq, &error, &mut backoff) {
                Decision::Retry(delay) => delay,
                Decision::Park => Backoff::MAX,
            };
            if !sleep_unless_stopped(delay, stop).await {
                return false;
            }
        }
    }

    /// Resyncs at start, then every [`RESYNC_EVERY`], until `stop`.
    async fn resync_every(&self, ctx: &Context, stop: &CancellationToken) {
        loop {
            for reconciler in &self.reconcilers {
                if !self.resync(reconciler.as_ref(), ctx, stop).await {
                    return;
                }
            }
            if !sleep_unless_stopped(RESYNC_EVERY, stop).await {
                return;
            }
        }
    }

    /// One resync pass of one reconciler, retried whole while its errors are transient.
    /// False when stopped first.
    async fn resync(
        &self,
        reconciler: &dyn Reconciler,
        ctx: &Context,
        stop: &CancellationToken,
    ) -> bool {
        let mut backoff = Backoff::new();
        let what = format!("{} resync", reconciler.name());
        loop {
            let error = match reconciler.resync(ctx).await {
                Ok(resynced) => {
                    for failure in &resynced.failures {
                        metrics::counter!("gantry_worker_failures_total", "worker" => self.name)
                            .increment(1);
                        error!(worker = self.name, what, error = %failure.describe(), "resync cannot fix an object");
                    }
                    if resynced.fixed > 0 {
                        info!(
                            worker = self.name,
                            what,
                            fixed = resynced.fixed,
                            "resync done"
                        );
                    } else {
                        debug!(worker = self.name, what, "resync done; nothing to fix");
                    }
                    return true;
                }
                Err(error) => error,
            };
            match error_policy(self.name, &what, 0, &error, &mut backoff) {
                Decision::Retry(delay) => {
                    if !sleep_unless_stopped(delay, stop).await {
                        return false;
                    }
                }
                // Nothing to park: the next pass tries again.
                Decision::Park => return true,
            }
        }
    }

    fn count(&self, outcome: &'static str) {
        metrics::counter!(
            "gantry_worker_reconciles_total",
            "worker" => self.name,
            "outcome" => outcome,
        )
        .increment(1);
    }
}

/// Reads a message as an event, or says what to park (the consumer is filled in by the
/// caller).
fn decode(seq: u64, payload: &[u8]) -> Result<Incoming, Box<Parked>> {
    let unreadable = |envelope: Option<&Envelope>, error: String| {
        Box::new(Parked {
            consumer: String::new(),
            seq,
            aggregate: envelope.map(|e| e.aggregate.clone()),
            aggregate_id: envelope.map(|e| e.aggregate_id.clone()),
            event_type: envelope.map(|e| e.event_type.clone()),
            error,
        })
    };
    let envelope = Envelope::from_bytes(payload)
        .map_err(|e| unreadable(None, format!("not an event envelope: {e}")))?;
    let event = Event::decode(&envelope)
        .map_err(|e| unreadable(Some(&envelope), format!("undecodable event: {e}")))?;
    Ok(Incoming {
        seq,
        envelope,
        event,
    })
}

/// Sleeps `delay` unless `stop` comes first; false when it did.
async fn sleep_unless_stopped(delay: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}

/// The next message of the pull request in hand (`None` when it is over).
async fn next_message(
    batch: &mut Option<pull::Batch>,
) -> Option<<pull::Batch as futures::Stream>::Item> {
    match batch {
        Some(batch) => batch.next().await,
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_parked_with_nothing_read() {
        let parked = decode(7, b"not json").unwrap_err();
        assert_eq!(parked.seq, 7);
        assert_eq!(parked.aggregate, None);
        assert!(
            parked.error.starts_with("not an event envelope"),
            "{}",
            parked.error
        );
    }

    #[test]
    fn an_envelope_of_an_unknown_event_is_parked_with_what_it_says() {
        let payload = serde_json::json!({
            "event_id": "00000000-0000-0000-0000-000000000001",
            "aggregate": "course",
            "aggregate_id": "c1",
            "type": "CourseExploded",
            "version": 1,
            "data": {},
            "meta": { "actor": "a", "request_id": "r", "occurred_at": "2026-01-01T00:00:00Z" }
        });
        let parked = decode(9, payload.to_string().as_bytes()).unwrap_err();
        assert_eq!(parked.aggregate.as_deref(), Some("course"));
        assert_eq!(parked.aggregate_id.as_deref(), Some("c1"));
        assert_eq!(parked.event_type.as_deref(), Some("CourseExploded"));
        assert!(
            parked.error.starts_with("undecodable event"),
            "{}",
            parked.error
        );
    }

    #[tokio::test]
    async fn stop_interrupts_a_wait() {
        let stop = CancellationToken::new();
        stop.cancel();
        let started = std::time::Instant::now();
        assert!(!sleep_unless_stopped(Duration::from_secs(60), &stop).await);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
