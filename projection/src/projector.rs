//! The projector: consume the log in order, apply each batch and its checkpoint in one
//! PostgreSQL transaction.
//!
//! Because the checkpoint commits with the rows it describes, a projector killed at any
//! moment restarts from exactly the first event not yet applied. The checkpoint row is
//! locked for the transaction, so two projectors of one instance never apply the same event
//! twice: the second one skips whatever the first already committed.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull},
};
use events::{Envelope, Event};
use futures::{FutureExt, StreamExt, future::BoxFuture};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::{
    Database, DbError,
    checkpoint::{self, Checkpoints, READ_MODELS},
    courses, users,
};

/// Events applied in one transaction at most.
const BATCH: usize = 1000;
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

/// One message of the log as the projector receives it.
struct Delivered {
    seq: u64,
    payload: bytes::Bytes,
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
            checkpoint::load(&client, READ_MODELS).await?
        };
        self.checkpoints.advance(start);
        info!(from = start + 1, "projecting");
        let consumer = self
            .stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: self.subjects.clone(),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: start + 1,
                },
                ..Default::default()
            })
            .await
            .map_err(|e| ProjectionError::Stream(e.to_string()))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| ProjectionError::Stream(e.to_string()))?;
        let mut applied = start;
        loop {
            let first = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                next = messages.next() => next,
                _ = tokio::time::sleep(STALL_CHECK) => {
                    self.check_not_stalled(applied).await?;
                    continue;
                }
            };
            let mut batch = Vec::with_capacity(64);
            let mut pending = first;
            loop {
                match pending {
                    None => return Err(ProjectionError::Stream("consumer ended".into())),
                    Some(Err(e)) => return Err(ProjectionError::Stream(e.to_string())),
                    Some(Ok(message)) => {
                        let seq = message
                            .info()
                            .map_err(|e| ProjectionError::Stream(e.to_string()))?
                            .stream_sequence;
                        batch.push(Delivered {
                            seq,
                            payload: message.payload.clone(),
                        });
                    }
                }
                if batch.len() >= BATCH {
                    break;
                }
                match messages.next().now_or_never() {
                    Some(next) => pending = next,
                    None => break,
                }
            }
            applied = self.apply_batch(batch).await?;
            self.checkpoints.advance(applied);
        }
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

    /// Applies the events above the stored checkpoint and moves it, in one transaction.
    /// Returns the checkpoint after the batch.
    async fn apply_batch(&self, batch: Vec<Delivered>) -> Result<u64, ProjectionError> {
        let mut client = self.db.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO projection_checkpoint (name, last_seq) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
            &[&READ_MODELS],
        )
        .await?;
        let done: i64 = tx
            .query_one(
                "SELECT last_seq FROM projection_checkpoint WHERE name = $1 FOR UPDATE",
                &[&READ_MODELS],
            )
            .await?
            .get(0);
        let done = done.max(0) as u64;
        let Some(last) = batch
            .iter()
            .map(|d| d.seq)
            .max()
            .filter(|last| *last > done)
        else {
            tx.commit().await?;
            return Ok(done);
        };
        let fresh: Vec<(u64, Envelope, Event)> = batch
            .into_iter()
            .filter(|d| d.seq > done)
            .filter_map(decode)
            .collect();
        let statements = Statements::prepare(&tx).await?;
        // Sent together, the statements are pipelined on the connection and run in order.
        let writes: Vec<BoxFuture<'_, Result<u64, tokio_postgres::Error>>> = fresh
            .iter()
            .map(|(seq, envelope, event)| match event {
                Event::Course(e) => courses::apply(&tx, &statements.courses, *seq, envelope, e),
                Event::User(e) => users::apply(&tx, &statements.users, *seq, envelope, e),
            })
            .collect();
        futures::future::try_join_all(writes).await?;
        let last_i64 = last as i64;
        tx.execute(
            "UPDATE projection_checkpoint SET last_seq = $2, updated_at = now() WHERE name = $1",
            &[&READ_MODELS, &last_i64],
        )
        .await?;
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&checkpoint::channel(self.db.schema()), &last.to_string()],
        )
        .await?;
        tx.commit().await?;
        debug!(events = fresh.len(), checkpoint = last, "batch applied");
        Ok(last)
    }
}

/// An event this build cannot read is logged with its sequence and skipped: stopping the
/// projector on it would freeze every read model behind it.
fn decode(delivered: Delivered) -> Option<(u64, Envelope, Event)> {
    let envelope = match Envelope::from_bytes(&delivered.payload) {
        Ok(envelope) => envelope,
        Err(e) => {
            error!(seq = delivered.seq, error = %e, "skipping unreadable event");
            return None;
        }
    };
    match Event::decode(&envelope) {
        Ok(event) => Some((delivered.seq, envelope, event)),
        Err(e) => {
            error!(seq = delivered.seq, error = %e, "skipping undecodable event");
            None
        }
    }
}

/// Every read model's prepared statements, prepared once per connection (cached).
pub(crate) struct Statements {
    courses: courses::Statements,
    users: users::Statements,
}

impl Statements {
    async fn prepare(
        tx: &deadpool_postgres::Transaction<'_>,
    ) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            courses: courses::Statements::prepare(tx).await?,
            users: users::Statements::prepare(tx).await?,
        })
    }
}
