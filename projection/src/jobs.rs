//! The `jobs` read model: every live job with the course fields it was launched with, its
//! status, the reason of a `Pending` or `Failed`, the last Kubernetes error met for it, and
//! its endpoints; and the queries of the course door's job list.
//!
//! A job's progress is folded by [`events::job::Progress::apply`], the function the
//! aggregate uses, so the list says exactly what the command side decides on. A deleted
//! job has no row.

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
            for applied in events {
                apply_one(tx, applied).await?;
            }
            Ok(())
        })
    }
}

fn gpu(gpu: u32) -> i32 {
    i32::try_from(gpu).unwrap_or(i32::MAX)
}

/// Each event is one statement or a read-modify-write of its row, in log order.
async fn apply_one(tx: &Tx<'_>, applied: &Applied) -> Result<(), tokio_postgres::Error> {
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
            let insert = tx.prepare_cached(INSERT).await?;
            tx.execute(
                &insert,
                &[
                    &id,
                    &l.course_id,
                    &l.owner,
                    &l.name,
                    &l.introduction,
                    &l.level,
                    &l.image,
                    &gpu(l.gpu),
                    &l.datasets,
                    &JobStatus::Created.as_str(),
                    &applied.envelope.meta.occurred_at,
                    &seq,
                ],
            )
            .await?;
        }
        JobEvent::JobDeleted(_) => {
            let delete = tx.prepare_cached(DELETE).await?;
            tx.execute(&delete, &[&id]).await?;
        }
        other => {
            let select = tx.prepare_cached(PROGRESS).await?;
            let Some(row) = tx.query_opt(&select, &[&id]).await? else {
                return Ok(());
            };
            let mut progress = Progress {
                status: JobStatus::parse(row.get(0)),
                reason: row.get(1),
                last_error: row.get(2),
                endpoints: serde_json::from_value(row.get(3)).unwrap_or_default(),
            };
            progress.apply(other);
            let endpoints =
                serde_json::to_value(&progress.endpoints).unwrap_or(serde_json::Value::Null);
            let update = tx.prepare_cached(UPDATE).await?;
            tx.execute(
                &update,
                &[
                    &id,
                    &progress.status.as_str(),
                    &progress.reason,
                    &progress.last_error,
                    &endpoints,
                    &seq,
                ],
            )
            .await?;
        }
    }
    Ok(())
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
