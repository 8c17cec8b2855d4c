//! How far each read model is: what an operator looks at first.

use chrono::{DateTime, Utc};

use crate::{DbError, Pool};

/// One projection's checkpoint, its parked events, and whether it halted.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionStatus {
    pub name: String,
    pub checkpoint: u64,
    pub updated_at: DateTime<Utc>,
    pub parked: u64,
    /// The sequence of the event it stopped before, and why.
    pub halted: Option<(u64, String)>,
}

/// Every projection that has run in this instance, by name.
pub async fn projections(pool: &Pool) -> Result<Vec<ProjectionStatus>, DbError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT c.name, c.last_seq, c.updated_at,
                    (SELECT count(*) FROM parked_events p WHERE p.consumer = c.name),
                    c.halted_at_seq, c.halted_reason
             FROM projection_checkpoint c ORDER BY c.name",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| ProjectionStatus {
            name: r.get(0),
            checkpoint: r.get::<_, i64>(1).max(0) as u64,
            updated_at: r.get(2),
            parked: r.get::<_, i64>(3).max(0) as u64,
            halted: r.get::<_, Option<i64>>(4).map(|seq| {
                (
                    seq.max(0) as u64,
                    r.get::<_, Option<String>>(5).unwrap_or_default(),
                )
            }),
        })
        .collect())
}
