//! The projector: consume the log in order, apply each batch and its checkpoint in one
//! PostgreSQL transaction.
//!
//! Because the checkpoint commits with the rows it describes, a projector killed at any
//! moment restarts from exactly the first event not yet applied. Each batch claims the
//! checkpoint it starts from, so two projectors of one instance never apply the same event
//! twice: the one that finds the checkpoint moved rolls back and resumes from it.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull},
};
use events::{Envelope, Event};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::{
    Database, DbError,
    checkpoint::{self, Checkpoints, READ_MODELS},
    courses, users,
};

/// Events applied in one transaction at most.
const BATCH: usize = 2000;
/// How long an idle projector waits before checking that it is not missing events.
const STALL_CHECK: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("event stream unavailable: {0}")]
    Stream(String),
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

pub struct Projector {
    db: Database,
    stream: jetstream::stream::Stream,
    subjects: String,
    checkpoints: Checkpoints,
}

/// One message of the log, decoded by the read-ahead task (`None`: unreadable, skipped).
struct Delivered {
    seq: u64,
    decoded: Option<(Envelope, Event)>,
}

impl Projector {
    pub fn new(
        db: Database,
        stream: jetstream::stream::Stream,
        subjects: String,
        checkpoints: Checkpoints,
    ) -> Self {
        Self {
            db,
            stream,
            subjects,
            checkpoints,
        }
    }

    /// Projects until `stop`, resuming by itself after NATS or PostgreSQL outages.
    pub async fn run(self, stop: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.project_until(&stop).await {
                Ok(()) => return,
                Err(e) => warn!(error = %e, "projector interrupted; resuming from its checkpoint"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn project_until(&self, stop: &CancellationToken) -> Result<(), ProjectionError> {
        let start = {
            let client = self.db.pool.get().await?;
            client
                .execute(
                    "INSERT INTO projection_checkpoint (name, last_seq) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
                    &[&READ_MODELS],
                )
                .await?;
            checkpoint::load(&client, READ_MODELS).await?
        };
        self.checkpoints.advance(start);
        info!(from = start + 1, "projecting");
        let mut incoming = self.read_ahead(start).await?;
        let mut applied = start;
        loop {
            let first = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                next = incoming.receiver.recv() => next,
                _ = tokio::time::sleep(STALL_CHECK) => {
                    self.check_not_stalled(applied).await?;
                    continue;
                }
            };
            let mut batch = Vec::with_capacity(BATCH);
            let mut next = first;
            loop {
                match next {
                    None => return Err(ProjectionError::Stream("event stream closed".into())),
                    Some(Err(e)) => return Err(e),
                    Some(Ok(delivered)) => batch.push(delivered),
                }
                if batch.len() >= BATCH {
                    break;
                }
                match incoming.receiver.try_recv() {
                    Ok(more) => next = Some(more),
                    Err(_) => break,
                }
            }
            applied = self.apply_batch(applied, batch).await?;
            self.checkpoints.advance(applied);
        }
    }

    /// Reads the log from after `applied` in a task of its own, so the next batch arrives
    /// while the current one is written.
    async fn read_ahead(&self, applied: u64) -> Result<ReadAhead, ProjectionError> {
        let consumer = self
            .stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: self.subjects.clone(),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: applied + 1,
                },
                ..Default::default()
            })
            .await
            .map_err(|e| ProjectionError::Stream(e.to_string()))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| ProjectionError::Stream(e.to_string()))?;
        let (sender, receiver) = mpsc::channel(4 * BATCH);
        let reader = tokio::spawn(async move {
            while let Some(message) = messages.next().await {
                let delivered = message
                    .map_err(|e| ProjectionError::Stream(e.to_string()))
                    .and_then(|m| {
                        let seq = m
                            .info()
                            .map_err(|e| ProjectionError::Stream(e.to_string()))?
                            .stream_sequence;
                        Ok(Delivered {
                            seq,
                            decoded: decode(seq, &m.payload),
                        })
                    });
                let failed = delivered.is_err();
                if sender.send(delivered).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(ReadAhead { receiver, reader })
    }

    /// After NATS restarts, an ordered consumer may wait for missed heartbeats before it
    /// notices it is gone. When the log holds events we have not received for a while,
    /// start a fresh consumer from the checkpoint instead.
    async fn check_not_stalled(&self, applied: u64) -> Result<(), ProjectionError> {
        let info = self
            .stream
            .get_info()
            .await
            .map_err(|e| ProjectionError::Stream(e.to_string()))?;
        if info.state.last_sequence > applied {
            return Err(ProjectionError::Stream(format!(
                "consumer stalled at {applied} while the log holds {}",
                info.state.last_sequence
            )));
        }
        Ok(())
    }

    /// Applies the events after `applied` and moves the checkpoint to the last of them, in
    /// one transaction, sent as one pipeline: claim the checkpoint, write every read model,
    /// notify. The claim only succeeds if the checkpoint is still `applied`, so a second
    /// projector that got there first makes this one roll back and resume from the
    /// checkpoint. Returns the new checkpoint.
    async fn apply_batch(
        &self,
        applied: u64,
        batch: Vec<Delivered>,
    ) -> Result<u64, ProjectionError> {
        let Some(last) = batch
            .iter()
            .map(|d| d.seq)
            .max()
            .filter(|last| *last > applied)
        else {
            return Ok(applied);
        };
        let fresh: Vec<(u64, Envelope, Event)> = batch
            .into_iter()
            .filter(|d| d.seq > applied)
            .filter_map(|d| d.decoded.map(|(envelope, event)| (d.seq, envelope, event)))
            .collect();
        let mut courses = Vec::new();
        let mut users = Vec::new();
        for (seq, envelope, event) in &fresh {
            match event {
                Event::Course(e) => courses.push((*seq, envelope, e)),
                Event::User(e) => users.push((*seq, envelope, e)),
            }
        }

        let mut client = self.db.pool.get().await?;
        let tx = client.transaction().await?;
        let claim = tx
            .prepare_cached("UPDATE projection_checkpoint SET last_seq = $2, updated_at = now() WHERE name = $1 AND last_seq = $3")
            .await?;
        let notify = tx.prepare_cached("SELECT pg_notify($1, $2)").await?;
        let (last_i64, applied_i64) = (last as i64, applied as i64);
        let channel = checkpoint::channel(self.db.schema());
        let last_text = last.to_string();
        let claim_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&READ_MODELS, &last_i64, &applied_i64];
        let notify_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&channel, &last_text];
        let (claimed, (), (), _) = futures::try_join!(
            tx.execute(&claim, &claim_params),
            courses::apply_batch(&tx, courses),
            users::apply_batch(&tx, users),
            tx.execute(&notify, &notify_params),
        )?;
        if claimed != 1 {
            tx.rollback().await?;
            return Err(ProjectionError::Stream(format!(
                "checkpoint moved past {applied} by another projector; resuming from it"
            )));
        }
        tx.commit().await?;
        debug!(events = fresh.len(), checkpoint = last, "batch applied");
        Ok(last)
    }
}

/// The read-ahead task and what it delivered; the task ends with this.
struct ReadAhead {
    receiver: mpsc::Receiver<Result<Delivered, ProjectionError>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// An event this build cannot read is logged with its sequence and skipped: stopping the
/// projector on it would freeze every read model behind it.
fn decode(seq: u64, payload: &[u8]) -> Option<(Envelope, Event)> {
    let envelope = match Envelope::from_bytes(payload) {
        Ok(envelope) => envelope,
        Err(e) => {
            error!(seq, error = %e, "skipping unreadable event");
            return None;
        }
    };
    match Event::decode(&envelope) {
        Ok(event) => Some((envelope, event)),
        Err(e) => {
            error!(seq, error = %e, "skipping undecodable event");
            None
        }
    }
}
