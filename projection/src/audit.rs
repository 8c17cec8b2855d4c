//! Auditing the read models against the log alone.
//!
//! Each registered read model is replayed from sequence 1 into a scratch schema
//! ([`crate::replay::Scratch`]) and, at the live checkpoint (under its row lock, so both
//! describe the same sequence), every table is compared with the live table of its name,
//! row by row, both ways (`EXCEPT`): a row the log implies that the live table lacks or
//! holds otherwise is `missing`, a live row the log does not imply is `unexpected`. Every
//! invariant a read model holds (balances, statuses, counts, memberships) is checked this
//! way as soon as the read model is registered.
//!
//! Decisions:
//! - Columns are compared as text (`::text`), so every type can be compared, `json`
//!   included; the columns are those of the scratch table, and a live table without one of
//!   them is itself a difference.
//! - At most [`SHOWN`] differing rows are listed per table and direction; the count is
//!   always complete.
//! - The live projector waits while a table is compared (the row lock): an audit of a
//!   large instance delays read-your-writes for that long, not the writes themselves.
//! - The audit writes nothing but its scratch schema, dropped at the end (and at the next
//!   start after a crash).

use std::sync::Arc;

use serde_json::Value;

use crate::{
    registry::{Projection, Tx},
    replay::{ReplayError, Scratch, Settle, Source, quoted},
};

/// Differing rows listed per table and direction at most.
pub const SHOWN: i64 = 100;

/// One way a read model differs from what the log implies.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    pub projection: String,
    pub table: String,
    pub kind: DifferenceKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DifferenceKind {
    /// The log implies this row; the live table lacks it (or holds it otherwise).
    Missing(Value),
    /// The live table holds this row; the log does not imply it.
    Unexpected(Value),
    /// More differing rows than were listed.
    More { missing: i64, unexpected: i64 },
    /// The live table or one of its columns does not exist.
    NoSuchColumns(String),
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = format!("{}.{}", self.projection, self.table);
        match &self.kind {
            DifferenceKind::Missing(row) => write!(f, "{at}: missing (the log implies it) {row}"),
            DifferenceKind::Unexpected(row) => {
                write!(f, "{at}: unexpected (the log does not imply it) {row}")
            }
            DifferenceKind::More {
                missing,
                unexpected,
            } => write!(
                f,
                "{at}: {missing} missing and {unexpected} unexpected rows in all"
            ),
            DifferenceKind::NoSuchColumns(reason) => write!(f, "{at}: {reason}"),
        }
    }
}

/// The audit of one read model: the checkpoint it was compared at, and what differs.
#[derive(Debug, Clone)]
pub struct Audited {
    pub projection: &'static str,
    pub checkpoint: u64,
    pub differences: Vec<Difference>,
}

/// Replays `projection` from the log and compares it with its live tables.
pub async fn verify(
    source: &Source,
    projection: Arc<dyn Projection>,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Audited, ReplayError> {
    let name = projection.name();
    let mut scratch = Scratch::create(source, projection, "audit", false).await?;
    let target = scratch.live_checkpoint().await?;
    let settled = async {
        scratch.replay_until(target, progress).await?;
        scratch.settle(progress, Settle::Compare).await
    }
    .await;
    scratch.drop().await?;
    let (checkpoint, differences) = settled?;
    Ok(Audited {
        projection: name,
        checkpoint,
        differences,
    })
}

/// Inside the transaction that holds the live checkpoint: every scratch table against the
/// live one.
pub(crate) async fn compare(
    tx: &Tx<'_>,
    scratch: &Scratch,
) -> Result<Vec<Difference>, ReplayError> {
    let live = quoted(scratch.live_schema());
    let fresh = quoted(&scratch.schema);
    let mut differences = Vec::new();
    for table in scratch.tables(tx).await? {
        let difference = |kind| Difference {
            projection: scratch.projection().name().to_string(),
            table: table.clone(),
            kind,
        };
        let columns: Vec<String> = tx
            .query(
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                &[&scratch.schema, &table],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let live_columns: i64 = tx
            .query_one(
                "SELECT count(*) FROM information_schema.columns
                 WHERE table_schema = $1 AND table_name = $2 AND column_name = ANY($3)",
                &[&scratch.live_schema(), &table, &columns],
            )
            .await?
            .get(0);
        if live_columns != columns.len() as i64 {
            differences.push(difference(DifferenceKind::NoSuchColumns(format!(
                "the live table lacks {} of its {} columns",
                columns.len() as i64 - live_columns,
                columns.len()
            ))));
            continue;
        }
        let select = columns
            .iter()
            .map(|c| format!("{q}::text AS {q}", q = quoted(c)))
            .collect::<Vec<_>>()
            .join(", ");
        let t = quoted(&table);
        let rows_of = |a: &str, b: &str| {
            format!("SELECT {select} FROM {a}.{t} EXCEPT ALL SELECT {select} FROM {b}.{t}")
        };
        let missing = rows_of(&fresh, &live);
        let unexpected = rows_of(&live, &fresh);
        let counts = tx
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM ({missing}) m), (SELECT count(*) FROM ({unexpected}) u)"
                ),
                &[],
            )
            .await?;
        let (missing_count, unexpected_count): (i64, i64) = (counts.get(0), counts.get(1));
        if missing_count == 0 && unexpected_count == 0 {
            continue;
        }
        for (query, make) in [
            (
                &missing,
                DifferenceKind::Missing as fn(Value) -> DifferenceKind,
            ),
            (&unexpected, DifferenceKind::Unexpected),
        ] {
            let rows = tx
                .query(
                    &format!("SELECT row_to_json(d)::text FROM ({query}) d LIMIT {SHOWN}"),
                    &[],
                )
                .await?;
            for row in rows {
                let text: String = row.get(0);
                differences.push(difference(make(
                    serde_json::from_str(&text).unwrap_or(Value::String(text)),
                )));
            }
        }
        if missing_count > SHOWN || unexpected_count > SHOWN {
            differences.push(difference(DifferenceKind::More {
                missing: missing_count,
                unexpected: unexpected_count,
            }));
        }
    }
    Ok(differences)
}
