//! What a reconciler is, and the one policy for its errors.

use std::{sync::Arc, time::Duration};

use command::{
    Aggregate, CommandError, JetStreamStore, Outcome, Repository, StoreError,
    cluster::ClusterObject, course::Course, job::Job,
};
use events::{Envelope, Event};
use futures::future::BoxFuture;
use tracing::{error, warn};

use crate::{Cluster, Error};

/// What a reconciler works with: the cluster, the instance it serves, the event log, and
/// the repositories through which workers report what they did or saw (the same command
/// path as the doors).
#[derive(Clone)]
pub struct Context {
    pub cluster: Cluster,
    /// Objects in the cluster carry it as [`crate::INSTANCE_LABEL`]: others are not ours.
    pub instance: String,
    pub log: command::JetStreamStore,
    pub jobs: Arc<Repository<Job, JetStreamStore>>,
    pub courses: Arc<Repository<Course, JetStreamStore>>,
    pub cluster_objects: Arc<Repository<ClusterObject, JetStreamStore>>,
}

impl Context {
    pub fn new(cluster: Cluster, log: JetStreamStore) -> Self {
        Self {
            cluster,
            instance: log.instance().to_string(),
            jobs: Arc::new(Repository::new(log.clone())),
            courses: Arc::new(Repository::new(log.clone())),
            cluster_objects: Arc::new(Repository::new(log.clone())),
            log,
        }
    }
}

/// Runs `command` on aggregate `id` as worker `worker` (actor `system:<worker>`), caused by
/// the event `causation` when there is one. A refusal of the domain comes back as is, for
/// the caller to act on; a failure of the log is this crate's (transient) error.
pub async fn report<A: Aggregate>(
    repository: &Repository<A, JetStreamStore>,
    worker: &str,
    id: &str,
    command: &A::Command,
    causation: Option<&Envelope>,
) -> Result<Result<Outcome, command::DomainError>, Error> {
    let ctx = command::Context {
        actor: format!("system:{worker}"),
        request_id: causation
            .map(|e| e.event_id.to_string())
            .unwrap_or_else(|| format!("{worker}-{}", uuid::Uuid::new_v4())),
        idempotency_key: None,
        causation_id: causation.map(|e| e.event_id),
    };
    match repository.execute(id, command, &ctx).await {
        Ok(outcome) => Ok(Ok(outcome)),
        Err(CommandError::Domain(refused)) => Ok(Err(refused)),
        Err(CommandError::Store(e)) => Err(Error::Log(e)),
        Err(CommandError::Conflict) => Err(Error::Log(StoreError::WrongLastSequence)),
        Err(CommandError::KeyReused) => Err(Error::Invalid("an idempotency key reused".into())),
    }
}

/// One event as delivered to a worker.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Its stream sequence.
    pub seq: u64,
    pub envelope: Envelope,
    pub event: Event,
}

/// What to do after a successful reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The event's effect is in place.
    Done,
    /// Not there yet (something is still converging): reconcile the same event again after
    /// this long, keeping its message.
    RequeueAfter(Duration),
}

/// Makes the cluster match one event. Reconcilers are idempotent: an event can be
/// reconciled twice, or after a crash half-way, and end in the same place.
pub trait Reconciler: Send + Sync {
    /// Names it in logs.
    fn name(&self) -> &'static str;

    fn reconcile<'a>(
        &'a self,
        event: &'a Incoming,
        ctx: &'a Context,
    ) -> BoxFuture<'a, Result<Action, Error>>;

    /// Level-triggered pass: compares every live object it owns with the log and fixes what
    /// differs, so that nothing depends on an event's delivery having happened. A transient
    /// error fails the pass (it is retried whole); permanent failures of single objects are
    /// returned and the pass goes on.
    fn resync<'a>(&'a self, _ctx: &'a Context) -> BoxFuture<'a, Result<Resynced, Error>> {
        Box::pin(async { Ok(Resynced::default()) })
    }
}

/// What one resync pass did.
#[derive(Debug, Default)]
pub struct Resynced {
    /// Objects deleted or changed.
    pub fixed: usize,
    /// What could not be fixed, and will not be by trying again.
    pub failures: Vec<Error>,
}

/// Capped exponential back-off with jitter: 200 ms doubling to 30 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_millis(200);
    pub const MAX: Duration = Duration::from_secs(30);

    pub fn new() -> Self {
        Self { attempt: 0 }
    }

    /// How many delays were handed out.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The next delay, randomised so that processes retrying together spread out.
    pub fn next_delay(&mut self) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        Self::delay(self.attempt, rand::random::<f64>())
    }

    /// The delay of attempt `n` (1-based) with `jitter` in [0, 1): between half and all of
    /// `FIRST × 2^(n-1)`, capped at `MAX`.
    pub fn delay(attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let full = Self::FIRST.saturating_mul(1u32 << exponent).min(Self::MAX);
        full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`error_policy`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try the same again after this delay; the message stays ours meanwhile.
    Retry(Duration),
    /// Trying again cannot help: an event is parked and acknowledged, a resync goes on
    /// with the next object.
    Park,
}

/// The one error policy of every worker: transient errors wait (capped back-off) and try
/// again, however long it takes, without spending the message's redelivery budget;
/// permanent ones are logged at error and counted as failures. `what` names the
/// reconciler or the step; `seq` is the event's stream sequence (0 for a resync).
pub fn error_policy(
    worker: &'static str,
    what: &str,
    seq: u64,
    error: &Error,
    backoff: &mut Backoff,
) -> Decision {
    if error.is_transient() {
        let delay = backoff.next_delay();
        metrics::counter!(
            "gantry_worker_retries_total",
            "worker" => worker,
            "reason" => error.metric_label(),
        )
        .increment(1);
        warn!(
            worker,
            what,
            seq,
            attempt = backoff.attempts(),
            delay_ms = delay.as_millis() as u64,
            error = %error.describe(),
            "transient failure; retrying"
        );
        Decision::Retry(delay)
    } else {
        metrics::counter!("gantry_worker_failures_total", "worker" => worker).increment(1);
        error!(
            worker,
            what,
            seq,
            reason = error.metric_label(),
            error = %error.describe(),
            "permanent failure"
        );
        Decision::Park
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_back_off_doubles_from_200_ms_up_to_30_s() {
        let ms: Vec<u128> = (1..=10)
            .map(|n| Backoff::delay(n, 1.0).as_millis())
            .collect();
        assert_eq!(
            ms,
            [200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]
        );
        assert_eq!(Backoff::delay(u32::MAX, 1.0), Backoff::MAX);
    }

    #[test]
    fn jitter_keeps_at_least_half_the_delay() {
        assert_eq!(Backoff::delay(1, 0.0), Duration::from_millis(100));
        assert_eq!(Backoff::delay(50, 0.0), Duration::from_secs(15));
        let mut backoff = Backoff::new();
        for n in 1..=40 {
            let d = backoff.next_delay();
            let full = Backoff::delay(n, 1.0);
            assert!(d >= full / 2 && d <= full, "attempt {n}: {d:?}");
        }
        assert_eq!(backoff.attempts(), 40);
    }

    #[test]
    fn the_policy_retries_transient_errors_and_parks_the_rest() {
        let mut backoff = Backoff::new();
        let down = Error::Log(command::StoreError::Unavailable("down".into()));
        for _ in 0..100 {
            assert!(matches!(
                error_policy("test", "reconcile", 1, &down, &mut backoff),
                Decision::Retry(d) if d <= Backoff::MAX
            ));
        }
        let bad = Error::Invalid("no".into());
        assert_eq!(
            error_policy("test", "reconcile", 1, &bad, &mut backoff),
            Decision::Park
        );
    }
}
