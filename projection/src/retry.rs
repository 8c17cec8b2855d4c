//! Retrying a parked event once its cause is fixed (`POST /admin/parked/{seq}/retry`).
//!
//! The event is read again from the log at its sequence, made out as its projection's
//! read-ahead makes it out (envelope checked against its subject, personal values opened,
//! decoded), and applied by the projection in one transaction that also removes its parked
//! row; or, if it is refused again, it stays parked with the new reason.
//!
//! Decisions recorded here:
//! - A retried event is applied to the rows as they are now, after the events that came
//!   behind it. That is what a parked insert or a parked charge needs (their rows were never
//!   written); an event whose change later events of the same aggregate have since
//!   overwritten would undo them, and is better mended by a rebuild of its projection
//!   (`POST /admin/projections/rebuild`), which replays the log in order.
//! - Workers are not retried here: their reconcilers go over every live job at start and at
//!   each resync, so what one parked is tried again there; its parked row stays as the record
//!   of what failed.

use std::sync::Arc;

use crate::{
    DbError,
    parked::ParkedEvent,
    projector::{Delivered, database_error, read_message},
    refused_value,
    registry::{self, Projection},
    replay::Source,
};

/// What a retry did for one consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retried {
    /// Applied at last; no longer parked.
    Applied,
    /// Still parked, for this reason.
    Parked(String),
    /// Parked by a worker, which takes it up again at its next resync.
    Worker,
}

#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("no event is parked at sequence {0}")]
    NotParked(u64),
    #[error("the log no longer holds sequence {0}")]
    Gone(u64),
    #[error("the log cannot be read: {0}")]
    Stream(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<tokio_postgres::Error> for RetryError {
    fn from(e: tokio_postgres::Error) -> Self {
        RetryError::Db(e.into())
    }
}

impl From<deadpool_postgres::PoolError> for RetryError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        RetryError::Db(e.into())
    }
}

/// Retries the event parked at `seq` for every consumer that parked it (or only for
/// `consumer`); answers each consumer's outcome, in name order.
pub async fn retry(
    source: &Source,
    seq: u64,
    consumer: Option<&str>,
) -> Result<Vec<(String, Retried)>, RetryError> {
    let client = source.db.pool.get().await?;
    let rows = client
        .query(
            "SELECT consumer FROM parked_events
             WHERE seq = $1 AND ($2::text IS NULL OR consumer = $2) ORDER BY consumer",
            &[&(seq as i64), &consumer],
        )
        .await?;
    drop(client);
    if rows.is_empty() {
        return Err(RetryError::NotParked(seq));
    }
    let mut outcomes = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = row.get(0);
        let projection = registry::registered()
            .into_iter()
            .find(|p| p.name() == name);
        let outcome = match projection {
            Some(projection) => retry_one(source, projection, seq).await?,
            None => Retried::Worker,
        };
        outcomes.push((name, outcome));
    }
    Ok(outcomes)
}

async fn retry_one(
    source: &Source,
    projection: Arc<dyn Projection>,
    seq: u64,
) -> Result<Retried, RetryError> {
    let message = source.stream.direct_get(seq).await.map_err(|e| {
        if matches!(
            e.kind(),
            async_nats::jetstream::stream::DirectGetErrorKind::NotFound
        ) {
            RetryError::Gone(seq)
        } else {
            RetryError::Stream(e.to_string())
        }
    })?;
    let mut read = read_message(
        projection.as_ref(),
        seq,
        message.subject.as_str(),
        &message.payload,
    );
    if let Some(envelope) = read.envelope_mut() {
        source
            .keys
            .open(vec![envelope])
            .await
            .map_err(|e| RetryError::Stream(e.to_string()))?;
    }
    let parked_again = |error: String| ParkedEvent {
        consumer: projection.name().to_string(),
        seq,
        aggregate: None,
        aggregate_id: None,
        event_type: None,
        error,
    };
    let event = match read.decode(projection.as_ref()) {
        Delivered::Event(event) => event,
        Delivered::Park(parked) => return still_parked(source, parked).await,
        Delivered::Unknown { reason, .. } => {
            return still_parked(source, parked_again(reason)).await;
        }
        Delivered::Skip(_) => {
            let why = "its projection does not read this aggregate".to_string();
            return still_parked(source, parked_again(why)).await;
        }
    };
    let mut client = source.db.pool.get().await?;
    let tx = client.transaction().await?;
    match projection.apply(&tx, std::slice::from_ref(&*event)).await {
        Ok(()) => {
            tx.execute(
                "DELETE FROM parked_events WHERE consumer = $1 AND seq = $2",
                &[&projection.name(), &(seq as i64)],
            )
            .await?;
            tx.commit().await?;
            tracing::info!(projection = projection.name(), seq, "parked event applied");
            Ok(Retried::Applied)
        }
        Err(e) if refused_value(&e) => {
            tx.rollback().await?;
            let envelope = &event.envelope;
            still_parked(
                source,
                ParkedEvent {
                    consumer: projection.name().to_string(),
                    seq,
                    aggregate: Some(envelope.aggregate.clone()),
                    aggregate_id: Some(envelope.aggregate_id.clone()),
                    event_type: Some(envelope.event_type.clone()),
                    error: database_error(&e),
                },
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// Records the new reason of an event that stays parked (keeping what was known of it).
async fn still_parked(source: &Source, event: ParkedEvent) -> Result<Retried, RetryError> {
    let client = source.db.pool.get().await?;
    client
        .execute(
            "UPDATE parked_events SET error = $3, parked_at = now()
             WHERE consumer = $1 AND seq = $2",
            &[&event.consumer, &(event.seq as i64), &event.error],
        )
        .await?;
    tracing::warn!(consumer = %event.consumer, seq = event.seq, error = %event.error, "retried event still parked");
    Ok(Retried::Parked(event.error))
}
