//! Rebuilding read models from the log without taking them down.
//!
//! A rebuild replays the whole log into fresh tables in a scratch schema
//! ([`crate::replay::Scratch`]) while the live tables keep answering, then, under the live
//! checkpoint's row lock, catches up with the live projection and swaps the tables in one
//! transaction: each live table is dropped and the fresh one moved into the instance's
//! schema. A query waits at most for that transaction and then reads the new table; none
//! ever sees a half-built one. The live projector goes on from the live checkpoint onto
//! the new tables; when the fresh tables went past it (a projector that lags or does not
//! run), the swap moves the checkpoint to where they are, and the live projector, finding
//! its checkpoint moved, resumes from there, so no event is applied twice.
//!
//! Decisions:
//! - One rebuild per read model at a time, across every process of the instance: the
//!   rebuild holds a PostgreSQL advisory lock on a connection of its own for as long as it
//!   runs. A killed process closes that connection, which releases the lock, so the
//!   rebuild can simply be started again; its leftover scratch schema is dropped then.
//! - How the last rebuild went is a row of `projection_rebuild` (not a read model); it is
//!   "rebuilding" only while the lock is held, so a killed rebuild reads as idle, with
//!   outcome `interrupted`.
//! - "all" rebuilds the registered read models at once, holding every lock from the start.
//! - A table a newer `schema()` no longer creates stays in the live schema untouched.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use tokio_postgres::NoTls;
use tracing::{error, info};

use crate::{
    DbError,
    feed::{self, ReadAhead},
    registry::{Projection, Tx},
    replay::{ReplayError, Scratch, Settle, Source, quoted},
};

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("no read model named {0:?}")]
    Unknown(String),
    #[error("a rebuild of {0} is already running")]
    Busy(String),
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

impl From<DbError> for RebuildError {
    fn from(e: DbError) -> Self {
        RebuildError::Replay(e.into())
    }
}

impl From<tokio_postgres::Error> for RebuildError {
    fn from(e: tokio_postgres::Error) -> Self {
        RebuildError::Replay(e.into())
    }
}

/// The read models `name` picks among `registered`: one by name, or every one for "all".
pub fn pick(
    registered: Vec<Arc<dyn Projection>>,
    name: &str,
) -> Result<Vec<Arc<dyn Projection>>, RebuildError> {
    if name == "all" {
        return Ok(registered);
    }
    let picked: Vec<_> = registered
        .into_iter()
        .filter(|p| p.name() == name)
        .collect();
    if picked.is_empty() {
        return Err(RebuildError::Unknown(name.to_string()));
    }
    Ok(picked)
}

/// How far a running rebuild got, for a progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    /// Each claimed read model and the sequence its fresh tables reached.
    pub reached: Vec<(&'static str, AtomicU64)>,
    /// The log's last sequence when the rebuild started.
    pub target: AtomicU64,
}

impl Progress {
    fn of(projections: &[Arc<dyn Projection>]) -> Self {
        Self {
            reached: projections
                .iter()
                .map(|p| (p.name(), AtomicU64::new(0)))
                .collect(),
            target: AtomicU64::new(0),
        }
    }

    fn counter(&self, name: &str) -> Option<&AtomicU64> {
        self.reached
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, reached)| reached)
    }

    /// The read models still short of the target, and the sequence the slowest reached.
    pub fn behind(&self) -> (Vec<&'static str>, u64) {
        let target = self.target.load(Ordering::Relaxed);
        let mut slowest = target;
        let mut names = Vec::new();
        for (name, reached) in &self.reached {
            let reached = reached.load(Ordering::Relaxed);
            if reached < target {
                names.push(*name);
                slowest = slowest.min(reached);
            }
        }
        (names, slowest)
    }
}

/// Rebuilds that hold their locks and may run.
pub struct Claimed {
    source: Source,
    projections: Vec<Arc<dyn Projection>>,
    /// The connection whose session holds the locks.
    lock: tokio_postgres::Client,
    driver: tokio::task::JoinHandle<()>,
    pub progress: Arc<Progress>,
}

/// Takes the rebuild locks of `projections`, or says which one is already rebuilding.
pub async fn claim(
    source: &Source,
    projections: Vec<Arc<dyn Projection>>,
) -> Result<Claimed, RebuildError> {
    let (lock, connection) = source.db.config().connect(NoTls).await?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    for projection in &projections {
        let taken: bool = lock
            .query_one(
                "SELECT pg_try_advisory_lock(hashtext($1), hashtext($2))",
                &[&source.db.schema(), &projection.name()],
            )
            .await?
            .get(0);
        if !taken {
            driver.abort();
            return Err(RebuildError::Busy(projection.name().to_string()));
        }
    }
    Ok(Claimed {
        source: source.clone(),
        progress: Arc::new(Progress::of(&projections)),
        projections,
        lock,
        driver,
    })
}

impl Claimed {
    /// Rebuilds every claimed read model, all at once (the log read once for all of them,
    /// each writing on connections of its own, so one waiting on the database leaves the
    /// cores to the others), then releases the locks. Returns the log's sequence the
    /// rebuild went to. One that fails leaves its live tables as they were; the others are
    /// swapped in all the same.
    pub async fn run(self) -> Result<u64, RebuildError> {
        let result = self.rebuild_all().await;
        drop(self.lock);
        self.driver.abort();
        result
    }

    async fn rebuild_all(&self) -> Result<u64, RebuildError> {
        let target = self.source.last_sequence().await?;
        self.progress.target.store(target, Ordering::Relaxed);
        // Several read models share one read of the log; one alone reads only its own
        // aggregates' subjects.
        let feeds: Vec<Option<ReadAhead>> = if self.projections.len() > 1 {
            feed::fan_out(
                &self.source.stream,
                &self.source.instance,
                &self.projections,
                self.source.keys.clone(),
                target,
            )
            .await
            .map_err(ReplayError::from)?
            .into_iter()
            .map(Some)
            .collect()
        } else {
            vec![None]
        };
        let outcomes = futures::future::join_all(
            self.projections
                .iter()
                .zip(feeds)
                .map(|(projection, feed)| self.rebuild_one(projection.clone(), target, feed)),
        )
        .await;
        let mut reached = target;
        for outcome in outcomes {
            reached = reached.max(outcome?);
        }
        Ok(reached)
    }

    /// Rebuilds one read model up to at least `target`; answers the sequence its fresh
    /// tables reached when they were swapped in.
    async fn rebuild_one(
        &self,
        projection: Arc<dyn Projection>,
        target: u64,
        feed: Option<ReadAhead>,
    ) -> Result<u64, RebuildError> {
        let name = projection.name();
        record_start(&self.lock, name, target).await?;
        info!(projection = name, target, "rebuilding");
        let reporter = self.report_progress(name);
        let outcome = self.replay(projection, target, feed).await;
        reporter.abort();
        let applied = self.reached(name);
        let (status, error) = match &outcome {
            Ok(_) => ("done", None),
            Err(e) => ("failed", Some(e.to_string())),
        };
        self.lock
            .execute(
                "UPDATE projection_rebuild SET status = $2, applied = $3, finished_at = now(), error = $4
                 WHERE name = $1",
                &[&name, &status, &(applied as i64), &error],
            )
            .await?;
        match &outcome {
            Ok(checkpoint) => info!(projection = name, checkpoint, "rebuilt and swapped in"),
            Err(e) => {
                error!(projection = name, error = %e, "rebuild failed; the live tables are untouched")
            }
        }
        outcome
    }

    fn reached(&self, name: &str) -> u64 {
        self.progress
            .counter(name)
            .map_or(0, |reached| reached.load(Ordering::Relaxed))
    }

    /// Replays into fresh tables up to `target`, from `feed` when the log is read for
    /// several at once, and swaps them in.
    async fn replay(
        &self,
        projection: Arc<dyn Projection>,
        target: u64,
        feed: Option<ReadAhead>,
    ) -> Result<u64, RebuildError> {
        let name = projection.name();
        let mut scratch = Scratch::create(&self.source, projection, "rebuild", true).await?;
        let progress = self.progress.clone();
        let report = move |seq: u64| {
            if let Some(reached) = progress.counter(name) {
                reached.store(seq, Ordering::Relaxed);
            }
        };
        match feed {
            Some(feed) => scratch.replay_fed(feed, target, &report).await?,
            None => scratch.replay_until(target, &report).await?,
        }
        let (checkpoint, _) = scratch.settle(&report, Settle::Swap).await?;
        scratch.drop().await?;
        Ok(checkpoint)
    }

    /// Writes the progress to the rebuild's row twice a second.
    fn report_progress(&self, name: &'static str) -> tokio::task::JoinHandle<()> {
        let progress = self.progress.clone();
        let pool = self.source.db.pool.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                let applied = progress
                    .counter(name)
                    .map_or(0, |reached| reached.load(Ordering::Relaxed))
                    as i64;
                if let Ok(client) = pool.get().await {
                    let _ = client
                        .execute(
                            "UPDATE projection_rebuild SET applied = $2 WHERE name = $1",
                            &[&name, &applied],
                        )
                        .await;
                }
            }
        })
    }
}

async fn record_start(
    client: &tokio_postgres::Client,
    name: &str,
    target: u64,
) -> Result<(), DbError> {
    client
        .execute(
            "INSERT INTO projection_rebuild (name, status, applied, target, started_at, finished_at, error)
             VALUES ($1, 'rebuilding', 0, $2, now(), NULL, NULL)
             ON CONFLICT (name) DO UPDATE SET status = 'rebuilding', applied = 0, target = $2,
                 started_at = now(), finished_at = NULL, error = NULL",
            &[&name, &(target as i64)],
        )
        .await?;
    Ok(())
}

/// Inside the transaction that holds the live checkpoint: every table of the scratch
/// schema replaces the live table of its name.
pub(crate) async fn swap(tx: &Tx<'_>, scratch: &Scratch) -> Result<(), ReplayError> {
    let live = quoted(scratch.live_schema());
    let fresh = quoted(&scratch.schema);
    for table in scratch.tables(tx).await? {
        let table = quoted(&table);
        tx.batch_execute(&format!(
            "DROP TABLE IF EXISTS {live}.{table} CASCADE; ALTER TABLE {fresh}.{table} SET SCHEMA {live};"
        ))
        .await?;
    }
    Ok(())
}

/// How the last rebuild of a read model went.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildStatus {
    pub name: String,
    /// Whether it runs now (its lock is held).
    pub running: bool,
    /// `rebuilding`, `done`, `failed`; `interrupted` for one whose process died.
    pub outcome: String,
    pub applied: u64,
    pub target: u64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

/// The last rebuild of every read model that had one.
pub async fn statuses(pool: &crate::Pool, schema: &str) -> Result<Vec<RebuildStatus>, DbError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT r.name, r.status, r.applied, r.target, r.started_at, r.finished_at, r.error,
                    EXISTS (SELECT 1 FROM pg_locks l
                            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                              AND l.classid = hashtext($1)::oid AND l.objid = hashtext(r.name)::oid)
             FROM projection_rebuild r ORDER BY r.name",
            &[&schema],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let running: bool = r.get(7);
            let status: String = r.get(1);
            let outcome = if status == "rebuilding" && !running {
                "interrupted".to_string()
            } else {
                status
            };
            RebuildStatus {
                name: r.get(0),
                running,
                outcome,
                applied: r.get::<_, i64>(2).max(0) as u64,
                target: r.get::<_, i64>(3).max(0) as u64,
                started_at: r.get(4),
                finished_at: r.get(5),
                error: r.get(6),
            }
        })
        .collect())
}
