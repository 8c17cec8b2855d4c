//! Parked events: what a projection or a worker could not apply, and why.
//!
//! An event that this build knows but cannot store (the database refuses a value), or that
//! cannot be read at all, is parked here and logged, and its consumer goes on with the next
//! one. Parking is a record for an admin, never a silent skip. Parked rows live in the
//! instance's schema beside the read models but are not a read model: no rebuild clears them.

use chrono::{DateTime, Utc};
use tracing::error;

use crate::{DbError, Pool};

/// One event that `consumer` (a projection's or a worker's name) could not apply.
#[derive(Debug, Clone, PartialEq)]
pub struct ParkedEvent {
    pub consumer: String,
    /// The event's stream sequence.
    pub seq: u64,
    /// What could be read of the envelope; `None` when it could not be read at all.
    pub aggregate: Option<String>,
    pub aggregate_id: Option<String>,
    pub event_type: Option<String>,
    /// Why: the database's error, or why it could not be decoded.
    pub error: String,
}

/// A parked event as stored, with when it was parked.
#[derive(Debug, Clone, PartialEq)]
pub struct ParkedRow {
    pub event: ParkedEvent,
    pub parked_at: DateTime<Utc>,
}

pub(crate) const INSERT: &str = "
    INSERT INTO parked_events (consumer, seq, aggregate, aggregate_id, event_type, error)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (consumer, seq) DO UPDATE SET error = EXCLUDED.error, parked_at = now()";

/// Records `event` (inside the caller's transaction, or on its own connection) and logs it
/// at error level.
pub async fn park(
    client: &impl deadpool_postgres::GenericClient,
    event: &ParkedEvent,
) -> Result<(), DbError> {
    error!(
        consumer = %event.consumer,
        seq = event.seq,
        aggregate = event.aggregate.as_deref().unwrap_or("?"),
        aggregate_id = event.aggregate_id.as_deref().unwrap_or("?"),
        event_type = event.event_type.as_deref().unwrap_or("?"),
        error = %event.error,
        "event parked"
    );
    let statement = client.prepare_cached(INSERT).await?;
    client
        .execute(
            &statement,
            &[
                &event.consumer,
                &(event.seq as i64),
                &event.aggregate,
                &event.aggregate_id,
                &event.event_type,
                &event.error,
            ],
        )
        .await?;
    Ok(())
}

/// Parks `event` on a connection of its own.
pub async fn park_in(pool: &Pool, event: &ParkedEvent) -> Result<(), DbError> {
    let client = pool.get().await?;
    park(&client, event).await
}

/// Every parked event, oldest sequence first.
pub async fn parked(pool: &Pool) -> Result<Vec<ParkedRow>, DbError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT consumer, seq, aggregate, aggregate_id, event_type, error, parked_at
             FROM parked_events ORDER BY seq, consumer",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| ParkedRow {
            event: ParkedEvent {
                consumer: r.get(0),
                seq: r.get::<_, i64>(1).max(0) as u64,
                aggregate: r.get(2),
                aggregate_id: r.get(3),
                event_type: r.get(4),
                error: r.get(5),
            },
            parked_at: r.get(6),
        })
        .collect())
}
