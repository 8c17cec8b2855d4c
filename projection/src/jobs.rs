//! The `jobs` read model: every live job with the course fields it was launched with, its
//! status, the reason of a `Pending` or `Failed`, the last Kubernetes error met for it, and
//! its endpoints; and the queries of the course door's job list.
//!
//! A job's progress is folded by [`events::job::Progress::apply`], the function the
//! aggregate uses, so the list says exactly what the command side decides on. A deleted
//! job has no row.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::{
    DomainEvent, Event, JobEvent,
    job::{Endpoint, JobStatus, Progress},
};
use futures::future::BoxFuture;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{
    DbError, Pool,
    pipeline::{Param, Pipeline},
    registry::{Applied, Projection, Tx},
};

/// A job as the job list shows it (columns in the order of [`SELECT`]).
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: Uuid,
    pub course_id: String,
    pub owner: String,
    pub name: String,
    pub introduction: String,
    pub level: String,
    pub image: String,
    pub gpu: i32,
    pub datasets: Vec<String>,
    pub status: String,
    pub reason: String,
    pub last_error: String,
    pub endpoints: Vec<Endpoint>,
    pub started_at: DateTime<Utc>,
}

impl From<&Row> for JobRow {
    fn from(row: &Row) -> Self {
        Self {
            id: row.get(0),
            course_id: row.get(1),
            owner: row.get(2),
            name: row.get(3),
            introduction: row.get(4),
            level: row.get(5),
            image: row.get(6),
            gpu: row.get(7),
            datasets: row.get(8),
            status: row.get(9),
            reason: row.get(10),
            last_error: row.get(11),
            endpoints: serde_json::from_value(row.get(12)).unwrap_or_default(),
            started_at: row.get(13),
        }
    }
}

pub struct JobList;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS jobs (
        id           uuid PRIMARY KEY,
        course_id    text NOT NULL,
        owner        text NOT NULL,
        name         text NOT NULL,
        introduction text NOT NULL,
        level        text NOT NULL,
        image        text NOT NULL,
        gpu          integer NOT NULL,
        datasets     text[] NOT NULL,
        status       text NOT NULL,
        reason       text NOT NULL,
        last_error   text NOT NULL,
        endpoints    jsonb NOT NULL,
        started_at   timestamptz NOT NULL,
        last_seq     bigint NOT NULL
    );
    CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, started_at);
    CREATE INDEX IF NOT EXISTS jobs_course ON jobs (course_id);";

const INSERT: &str = "
    INSERT INTO jobs (id, course_id, owner, name, introduction, level, image, gpu, datasets,
                      status, reason, last_error, endpoints, started_at, last_seq)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '', '', '[]'::jsonb, $11, $12)
    ON CONFLICT (id) DO NOTHING";

const PROGRESS: &str =
    "SELECT status, reason, last_error, endpoints FROM jobs WHERE id = $1 FOR UPDATE";

const UPDATE: &str = "
    UPDATE jobs SET status = $2, reason = $3, last_error = $4, endpoints = $5, last_seq = $6
    WHERE id = $1";

const DELETE: &str = "DELETE FROM jobs WHERE id = $1";

impl Projection for JobList {
    fn name(&self) -> &'static str {
        "job_list"
    }

    fn aggregates(&self) -> &'static [&'static str] {
        &[JobEvent::AGGREGATE]
    }

    fn schema(&self) -> &'static str {
        SCHEMA
    }

    fn apply<'a>(
        &'a self,
        tx: &'a Tx<'a>,
        events: &'a [Applied],
    ) -> BoxFuture<'a, Result<(), tokio_postgres::Error>> {
        Box::pin(async move {
            let mut pipeline = Pipeline::new(tx);
            let mut batch = Batch::default();
            for applied in events {
                apply_one(&mut pipeline, &mut batch, applied).await?;
            }
            // One update per job whose progress moved, after its insert.
            for (id, seq) in batch.moved {
                if let Some(Some(progress)) = batch.progress.get(&id) {
                    let endpoints = serde_json::to_value(&progress.endpoints)
                        .unwrap_or(serde_json::Value::Null);
                    let params: Vec<Param> = vec![
                        Box::new(id),
                        Box::new(progress.status.as_str()),
                        Box::new(progress.reason.clone()),
                        Box::new(progress.last_error.clone()),
                        Box::new(endpoints),
                        Box::new(seq),
                    ];
                    pipeline.push(UPDATE, params).await?;
                }
            }
            pipeline.run().await
        })
    }
}

fn gpu(gpu: u32) -> i32 {
    i32::try_from(gpu).unwrap_or(i32::MAX)
}

/// What a batch did to the jobs it touched.
#[derive(Default)]
struct Batch {
    /// Each job's progress as the batch left it (`None`: no row), so that the progress of
    /// a job the batch already holds needs no read.
    progress: HashMap<Uuid, Option<Progress>>,
    /// Jobs whose progress moved, with the sequence of the last event that moved it: one
    /// update each at the batch's end.
    moved: HashMap<Uuid, i64>,
}

/// A launch is an insert and a deletion a delete, sent with the batch's others in log
/// order; progress is folded onto the job as this batch left it, or else as its row is
/// (read after what the batch sent so far), and written once at the batch's end.
async fn apply_one(
    pipeline: &mut Pipeline<'_>,
    batch: &mut Batch,
    applied: &Applied,
) -> Result<(), tokio_postgres::Error> {
    let Event::Job(event) = &applied.event else {
        return Ok(());
    };
    // A job id that is not a UUID cannot come from the door and has no row.
    let Ok(id) = Uuid::parse_str(&applied.envelope.aggregate_id) else {
        return Ok(());
    };
    let seq = applied.seq as i64;
    match event {
        JobEvent::JobLaunched(l) => {
            batch.progress.insert(id, Some(Progress::default()));
            let params: Vec<Param> = vec![
                Box::new(id),
                Box::new(l.course_id.clone()),
                Box::new(l.owner.clone()),
                Box::new(l.name.clone()),
                Box::new(l.introduction.clone()),
                Box::new(l.level.clone()),
                Box::new(l.image.clone()),
                Box::new(gpu(l.gpu)),
                Box::new(l.datasets.clone()),
                Box::new(JobStatus::Created.as_str()),
                Box::new(applied.envelope.meta.occurred_at),
                Box::new(seq),
            ];
            pipeline.push(INSERT, params).await
        }
        JobEvent::JobDeleted(_) => {
            batch.progress.insert(id, None);
            batch.moved.remove(&id);
            pipeline.push(DELETE, vec![Box::new(id)]).await
        }
        other => {
            let progress = match batch.progress.get(&id) {
                Some(progress) => progress.clone(),
                None => existing(pipeline, id).await?,
            };
            let Some(mut progress) = progress else {
                batch.progress.insert(id, None);
                return Ok(());
            };
            progress.apply(other);
            batch.progress.insert(id, Some(progress));
            batch.moved.insert(id, seq);
            Ok(())
        }
    }
}

/// The job's progress as its row now is.
async fn existing(
    pipeline: &mut Pipeline<'_>,
    id: Uuid,
) -> Result<Option<Progress>, tokio_postgres::Error> {
    pipeline.flush().await?;
    let tx = pipeline.tx();
    let statement = tx.prepare_cached(PROGRESS).await?;
    Ok(tx.query_opt(&statement, &[&id]).await?.map(|row| Progress {
        status: JobStatus::parse(row.get(0)),
        reason: row.get(1),
        last_error: row.get(2),
        endpoints: serde_json::from_value(row.get(3)).unwrap_or_default(),
    }))
}

const SELECT: &str = "SELECT id, course_id, owner, name, introduction, level, image, gpu, datasets,
                             status, reason, last_error, endpoints, started_at FROM jobs";

async fn select(
    pool: &Pool,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<JobRow>, DbError> {
    let client = pool.get().await?;
    let statement = client.prepare_cached(sql).await?;
    Ok(client
        .query(&statement, params)
        .await?
        .iter()
        .map(JobRow::from)
        .collect())
}

/// The jobs of one user, oldest first.
pub async fn job_list_by_owner(pool: &Pool, owner: &str) -> Result<Vec<JobRow>, DbError> {
    select(
        pool,
        &format!("{SELECT} WHERE owner = $1 ORDER BY started_at, id"),
        &[&owner],
    )
    .await
}

/// One job.
pub async fn job_get(pool: &Pool, id: Uuid) -> Result<Option<JobRow>, DbError> {
    Ok(select(pool, &format!("{SELECT} WHERE id = $1"), &[&id])
        .await?
        .into_iter()
        .next())
}

/// How many jobs are in each status (for the benchmark and operators).
pub async fn job_counts(pool: &Pool) -> Result<Vec<(String, i64)>, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached("SELECT status, count(*) FROM jobs GROUP BY status ORDER BY status")
        .await?;
    Ok(client
        .query(&statement, &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}
