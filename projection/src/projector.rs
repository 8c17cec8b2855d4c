//! The projector: runs every registered projection, each on its own consumer of the log,
//! applying batches of events together with that projection's checkpoint in ONE PostgreSQL
//! transaction.
//!
//! Because the checkpoint commits with the rows it describes, a projector killed at any
//! moment restarts from exactly the first event not yet applied. Each batch claims the
//! checkpoint it starts from, so two projectors of one instance never apply the same event
//! twice: the one that finds the checkpoint moved rolls back and resumes from it.
//!
//! No event stops the read side in silence:
//! - an event this build knows but the database refuses (a value it cannot store) is
//!   parked (`parked_events`, logged at error level) and the projection goes on;
//! - an envelope that cannot be read at all, or a known type whose data does not match it,
//!   is parked the same way;
//! - an event this build does not know (a type or version from a newer build) halts that
//!   projection at its sequence, visibly (log, `projection_checkpoint.halted_at_seq`,
//!   metric `gantry_projection_halted`), and it tries again from there now and then, so
//!   the build that knows the event carries on where this one stopped. The other
//!   projections go on.
//!
//! Personal values are opened before an event is decoded (`events::personal`): the
//! read-ahead takes what the log has ready (up to a batch), opens the sealed values of all
//! of it with one look-up of their keys, and only then decodes each event, so a
//! projection's `apply` sees plaintext, or an empty string where the key was destroyed.

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{self, stream::DirectGetErrorKind};
use events::{Envelope, Event, PersonalKeys, personal};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::{
    Database, DbError,
    checkpoint::{self, Checkpoints},
    db::refused_value,
    feed::{BATCH, ReadAhead, read_ahead},
    parked::{self, ParkedEvent},
    registry::{Applied, Projection, reads},
};

/// How long an idle projection waits before checking that it is not missing events.
const IDLE_CHECK: Duration = Duration::from_secs(2);
/// How often a halted projection looks again at the event that halted it.
const HALT_RETRY: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("event stream unavailable: {0}")]
    Stream(String),
    #[error("checkpoint moved past {0} by another projector")]
    Moved(u64),
    #[error(transparent)]
    Keys(#[from] personal::KeysError),
}

impl From<tokio_postgres::Error> for ProjectionError {
    fn from(e: tokio_postgres::Error) -> Self {
        ProjectionError::Db(e.into())
    }
}

impl From<deadpool_postgres::PoolError> for ProjectionError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ProjectionError::Db(e.into())
    }
}

/// Runs the projections of one instance.
pub struct Projector {
    db: Database,
    stream: jetstream::stream::Stream,
    instance: String,
    checkpoints: Checkpoints,
    keys: Arc<dyn PersonalKeys>,
}

impl Projector {
    pub fn new(
        db: Database,
        stream: jetstream::stream::Stream,
        instance: &str,
        checkpoints: Checkpoints,
    ) -> Self {
        let keys = Arc::new(crate::personal::KeyStore::new(db.pool.clone()));
        Self {
            db,
            stream,
            instance: instance.to_string(),
            checkpoints,
            keys,
        }
    }

    /// The same projector, opening personal values with `keys` (by default the instance's
    /// own key store, [`crate::personal::KeyStore`]).
    pub fn with_personal_keys(self, keys: Arc<dyn PersonalKeys>) -> Self {
        Self { keys, ..self }
    }

    /// Runs every projection of `projections` until `stop`, each resuming by itself after
    /// NATS or PostgreSQL outages.
    pub async fn run(self, projections: Vec<Arc<dyn Projection>>, stop: CancellationToken) {
        let runs = projections.into_iter().map(|projection| {
            let filter = subject_filter(&self.instance, projection.as_ref());
            let span = info_span!("projection", projection = projection.name());
            Run {
                projection,
                instance: self.instance.clone(),
                db: self.db.clone(),
                stream: self.stream.clone(),
                filter,
                checkpoints: self.checkpoints.clone(),
                keys: self.keys.clone(),
            }
            .run(stop.clone())
            .instrument(span)
        });
        futures::future::join_all(runs).await;
    }
}

/// The subjects `projection` reads: its aggregate's when it reads one (JetStream filters on
/// the server), else every event of the instance.
pub(crate) fn subject_filter(instance: &str, projection: &dyn Projection) -> String {
    match projection.aggregates() {
        [one] => format!("{instance}.ev.{one}.>"),
        _ => format!("{instance}.ev.>"),
    }
}

/// One projection running.
struct Run {
    projection: Arc<dyn Projection>,
    /// Labels its metrics beside its name: one process may run several instances.
    instance: String,
    db: Database,
    stream: jetstream::stream::Stream,
    filter: String,
    checkpoints: Checkpoints,
    keys: Arc<dyn PersonalKeys>,
}

/// One message of the log as the read-ahead task made it out.
pub(crate) enum Delivered {
    /// Boxed: an applied event is far larger than the other cases.
    Event(Box<Applied>),
    /// An event of an aggregate this projection does not read.
    Skip(u64),
    /// Unreadable: parked with the batch it arrives in.
    Park(ParkedEvent),
    /// Unknown to this build: the projection halts before it.
    Unknown { seq: u64, reason: String },
}

impl Delivered {
    pub(crate) fn seq(&self) -> u64 {
        match self {
            Delivered::Event(a) => a.seq,
            Delivered::Skip(seq) | Delivered::Unknown { seq, .. } => *seq,
            Delivered::Park(p) => p.seq,
        }
    }
}

/// How a projection's run ended.
enum Ended {
    Stopped,
    Halted,
}

impl Run {
    fn name(&self) -> &'static str {
        self.projection.name()
    }

    async fn run(self, stop: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let pause = match self.project_until(&stop).await {
                Ok(Ended::Stopped) => return,
                Ok(Ended::Halted) => HALT_RETRY,
                Err(e) => {
                    warn!(error = %e, "projection interrupted; resuming from its checkpoint");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    backoff
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    async fn project_until(&self, stop: &CancellationToken) -> Result<Ended, ProjectionError> {
        let start = {
            let client = self.db.pool.get().await?;
            client.batch_execute(self.projection.schema()).await?;
            client
                .execute(
                    "INSERT INTO projection_checkpoint (name, last_seq) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
                    &[&self.name()],
                )
                .await?;
            checkpoint::load(&client, self.name()).await?
        };
        self.announce(start);
        self.halted_gauge().set(0.0);
        info!(from = start + 1, "projecting");
        let mut incoming = self.read_ahead(start).await?;
        let mut applied = start;
        loop {
            let first = tokio::select! {
                _ = stop.cancelled() => return Ok(Ended::Stopped),
                next = incoming.receiver.recv() => next,
                _ = tokio::time::sleep(IDLE_CHECK) => {
                    applied = self.when_idle(applied).await?;
                    continue;
                }
            };
            let mut batch = Vec::with_capacity(BATCH);
            let mut next = first;
            loop {
                match next {
                    None => return Err(ProjectionError::Stream("event stream closed".into())),
                    Some(Err(e)) => return Err(e),
                    Some(Ok((delivered, _pending))) => {
                        let unknown = matches!(delivered, Delivered::Unknown { .. });
                        batch.push(delivered);
                        if unknown {
                            break;
                        }
                    }
                }
                if batch.len() >= BATCH {
                    break;
                }
                match incoming.receiver.try_recv() {
                    Ok(more) => next = Some(more),
                    Err(_) => break,
                }
            }
            let halted = match batch.last() {
                Some(Delivered::Unknown { .. }) => batch.pop(),
                _ => None,
            };
            applied = self.apply(applied, batch).await?;
            self.announce(applied);
            if let Some(Delivered::Unknown { seq, reason }) = halted {
                self.halt(seq, &reason).await?;
                return Ok(Ended::Halted);
            }
        }
    }

    fn halted_gauge(&self) -> metrics::Gauge {
        metrics::gauge!("gantry_projection_halted", "projection" => self.name(), "instance" => self.instance.clone())
    }

    fn announce(&self, seq: u64) {
        self.checkpoints.advance(self.name(), seq);
        metrics::gauge!("gantry_projection_checkpoint", "projection" => self.name(), "instance" => self.instance.clone())
            .set(seq as f64);
    }

    /// Reads the log from after `applied` in a task of its own, so the next batch arrives
    /// while the current one is written.
    async fn read_ahead(&self, applied: u64) -> Result<ReadAhead, ProjectionError> {
        let lag_gauge = metrics::gauge!("gantry_projection_lag", "projection" => self.name(), "instance" => self.instance.clone());
        read_ahead(
            &self.stream,
            self.filter.clone(),
            applied,
            self.projection.clone(),
            self.keys.clone(),
            Some(lag_gauge),
        )
        .await
    }

    /// When nothing arrived for a while: if the log holds events of ours after `applied`,
    /// the consumer is stalled (after NATS restarts, an ordered consumer may wait for
    /// missed heartbeats before it notices) and is started afresh from the checkpoint; if
    /// it holds only others' events, the checkpoint moves past them, so that each
    /// projection's checkpoint and lag say how far it really is.
    async fn when_idle(&self, applied: u64) -> Result<u64, ProjectionError> {
        let last = self
            .stream
            .get_info()
            .await
            .map_err(|e| ProjectionError::Stream(e.to_string()))?
            .state
            .last_sequence;
        if last <= applied {
            return Ok(applied);
        }
        match self
            .stream
            .direct_get_next_for_subject(self.filter.as_str(), Some(applied + 1))
            .await
        {
            Ok(message) => Err(ProjectionError::Stream(format!(
                "consumer stalled at {applied} while the log holds event {}",
                message.sequence
            ))),
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => {
                self.write(applied, last, &[], &[]).await?;
                self.announce(last);
                metrics::gauge!("gantry_projection_lag", "projection" => self.name(), "instance" => self.instance.clone()).set(0.0);
                Ok(last)
            }
            Err(e) => Err(ProjectionError::Stream(e.to_string())),
        }
    }

    /// Applies the events of `batch` after `applied` and moves the checkpoint to the last
    /// of them. Returns the new checkpoint.
    async fn apply(&self, applied: u64, batch: Vec<Delivered>) -> Result<u64, ProjectionError> {
        let Some(last) = batch
            .iter()
            .map(Delivered::seq)
            .max()
            .filter(|last| *last > applied)
        else {
            return Ok(applied);
        };
        let mut events = Vec::with_capacity(batch.len());
        let mut unreadable = Vec::new();
        for delivered in batch.into_iter().filter(|d| d.seq() > applied) {
            match delivered {
                Delivered::Event(a) => events.push(*a),
                Delivered::Park(p) => unreadable.push(p),
                Delivered::Skip(_) | Delivered::Unknown { .. } => {}
            }
        }
        match self.write(applied, last, &events, &unreadable).await {
            // A refused value, or a statement that the refusal aborted after it.
            Err(ProjectionError::Db(DbError::Refused(reason) | DbError::Internal(reason))) => {
                debug!(%reason, "a value was refused; applying the batch event by event");
                self.write_one_by_one(applied, last, &events, unreadable)
                    .await?;
            }
            other => other?,
        }
        debug!(events = events.len(), checkpoint = last, "batch applied");
        Ok(last)
    }

    /// One transaction, sent as one pipeline: claim the checkpoint (it must still be
    /// `applied`), write the rows, park the unreadable, notify.
    async fn write(
        &self,
        applied: u64,
        last: u64,
        events: &[Applied],
        unreadable: &[ParkedEvent],
    ) -> Result<(), ProjectionError> {
        let mut client = self.db.pool.get().await?;
        let tx = client.transaction().await?;
        let (claimed, (), (), ()) = futures::try_join!(
            self.claim(&tx, applied, last),
            async {
                if events.is_empty() {
                    Ok(())
                } else {
                    self.projection
                        .apply(&tx, events)
                        .await
                        .map_err(DbError::from)
                }
            },
            self.park_all(&tx, unreadable),
            self.notify(&tx, last),
        )?;
        if !claimed {
            tx.rollback().await?;
            return Err(ProjectionError::Moved(applied));
        }
        tx.commit().await?;
        Ok(())
    }

    /// The slow path after a refused value: each event in a savepoint of its own; the ones
    /// the database refuses are parked with its error, the others applied.
    async fn write_one_by_one(
        &self,
        applied: u64,
        last: u64,
        events: &[Applied],
        mut unreadable: Vec<ParkedEvent>,
    ) -> Result<(), ProjectionError> {
        let mut client = self.db.pool.get().await?;
        let tx = client.transaction().await?;
        if !self.claim(&tx, applied, last).await? {
            tx.rollback().await?;
            return Err(ProjectionError::Moved(applied));
        }
        for applied_event in events {
            tx.batch_execute("SAVEPOINT one_event").await?;
            match self
                .projection
                .apply(&tx, std::slice::from_ref(applied_event))
                .await
            {
                Ok(()) => tx.batch_execute("RELEASE SAVEPOINT one_event").await?,
                Err(e) if refused_value(&e) => {
                    tx.batch_execute("ROLLBACK TO SAVEPOINT one_event").await?;
                    let envelope = &applied_event.envelope;
                    unreadable.push(ParkedEvent {
                        consumer: self.name().to_string(),
                        seq: applied_event.seq,
                        aggregate: Some(envelope.aggregate.clone()),
                        aggregate_id: Some(envelope.aggregate_id.clone()),
                        event_type: Some(envelope.event_type.clone()),
                        error: database_error(&e),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.park_all(&tx, &unreadable).await?;
        self.notify(&tx, last).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves the checkpoint from `applied` to `last`; false when another projector moved it
    /// first. Passing the sequence a projection halted at clears the halt.
    async fn claim(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        applied: u64,
        last: u64,
    ) -> Result<bool, DbError> {
        let claim = tx
            .prepare_cached(
                "UPDATE projection_checkpoint SET last_seq = $2, updated_at = now(),
                     halted_reason = CASE WHEN halted_at_seq <= $2 THEN NULL ELSE halted_reason END,
                     halted_at_seq = CASE WHEN halted_at_seq <= $2 THEN NULL ELSE halted_at_seq END
                 WHERE name = $1 AND last_seq = $3",
            )
            .await?;
        let claimed = tx
            .execute(&claim, &[&self.name(), &(last as i64), &(applied as i64)])
            .await?;
        Ok(claimed == 1)
    }

    async fn park_all(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        unreadable: &[ParkedEvent],
    ) -> Result<(), DbError> {
        for event in unreadable {
            parked::park(tx, event).await?;
            metrics::counter!("gantry_projection_parked_total", "projection" => self.name(), "instance" => self.instance.clone())
                .increment(1);
        }
        Ok(())
    }

    async fn notify(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        last: u64,
    ) -> Result<(), DbError> {
        let notify = tx.prepare_cached("SELECT pg_notify($1, $2)").await?;
        tx.execute(
            &notify,
            &[
                &checkpoint::channel(self.db.schema()),
                &checkpoint::notification(self.name(), last),
            ],
        )
        .await?;
        Ok(())
    }

    /// Records that the projection stopped before `seq`, and says so.
    async fn halt(&self, seq: u64, reason: &str) -> Result<(), ProjectionError> {
        error!(
            seq,
            %reason,
            "projection halted: this build does not know the event; a build that does carries on from here"
        );
        self.halted_gauge().set(1.0);
        let client = self.db.pool.get().await?;
        client
            .execute(
                "UPDATE projection_checkpoint SET halted_at_seq = $2, halted_reason = $3 WHERE name = $1",
                &[&self.name(), &(seq as i64), &reason],
            )
            .await?;
        Ok(())
    }
}

/// The database's own words for a refused value, without the driver's wrapping.
pub(crate) fn database_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// A message of the log read as far as its envelope, before its personal values are
/// opened and its event decoded.
pub(crate) enum Read {
    Envelope {
        seq: u64,
        envelope: Envelope,
    },
    /// An event of an aggregate the projection does not read.
    Skip(u64),
    /// Unreadable already.
    Park(ParkedEvent),
}

impl Read {
    /// The envelope read, whose personal values are still to be opened.
    pub(crate) fn envelope_mut(&mut self) -> Option<&mut Envelope> {
        match self {
            Read::Envelope { envelope, .. } => Some(envelope),
            Read::Skip(_) | Read::Park(_) => None,
        }
    }

    /// What `projection` makes of it.
    pub(crate) fn decode(self, projection: &dyn Projection) -> Delivered {
        let (seq, envelope) = match self {
            Read::Skip(seq) => return Delivered::Skip(seq),
            Read::Park(parked) => return Delivered::Park(parked),
            Read::Envelope { seq, envelope } => (seq, envelope),
        };
        match Event::decode(&envelope) {
            Ok(event) => Delivered::Event(Box::new(Applied {
                seq,
                envelope,
                event,
            })),
            Err(e) if e.is_unknown() => Delivered::Unknown {
                seq,
                reason: e.to_string(),
            },
            Err(e) => Delivered::Park(parked(
                projection,
                seq,
                Some(&envelope),
                format!("undecodable event: {e}"),
            )),
        }
    }
}

fn parked(
    projection: &dyn Projection,
    seq: u64,
    envelope: Option<&Envelope>,
    error: String,
) -> ParkedEvent {
    ParkedEvent {
        consumer: projection.name().to_string(),
        seq,
        aggregate: envelope.map(|e| e.aggregate.clone()),
        aggregate_id: envelope.map(|e| e.aggregate_id.clone()),
        event_type: envelope.map(|e| e.event_type.clone()),
        error,
    }
}

/// The envelope of the message at `seq` on `subject`, if `projection` reads it.
pub(crate) fn read_message(
    projection: &dyn Projection,
    seq: u64,
    subject: &str,
    payload: &[u8],
) -> Read {
    // Another aggregate's event (a projection of several aggregates reads the whole log) is
    // not even decoded: the projection that reads it parks it if it is unreadable.
    if let Some(aggregate) = subject.split('.').nth(2)
        && !reads(projection, aggregate)
    {
        return Read::Skip(seq);
    }
    let envelope = match Envelope::from_bytes(payload) {
        Ok(envelope) => envelope,
        Err(e) => {
            return Read::Park(parked(
                projection,
                seq,
                None,
                format!("unreadable envelope: {e}"),
            ));
        }
    };
    // `<instance>.ev.<aggregate>.<id>`: an envelope must say what its subject says.
    let mut tokens = subject.splitn(4, '.').skip(2);
    if (tokens.next(), tokens.next())
        != (
            Some(envelope.aggregate.as_str()),
            Some(envelope.aggregate_id.as_str()),
        )
    {
        return Read::Park(parked(
            projection,
            seq,
            Some(&envelope),
            format!("envelope does not match its subject {subject}"),
        ));
    }
    if !reads(projection, &envelope.aggregate) {
        return Read::Skip(seq);
    }
    Read::Envelope { seq, envelope }
}
