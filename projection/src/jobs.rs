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
    job::{Endpoint, JobLaunched, JobStatus, Progress},
};
use futures::future::BoxFuture;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{
    DbError, Pool,
    pipeline::{Param, Pipeline, params},
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

// A batch's launches, deletions and progress each go in one statement: the deletions
// first, then the launches (so a job deleted and launched again in one batch is the new
// one), then each moved job's progress as the batch leaves it. List columns travel as JSON
// arrays, since `UNNEST` flattens an array of arrays.
const INSERT: &str = "
    INSERT INTO jobs (id, course_id, owner, name, introduction, level, image, gpu, datasets,
                      status, reason, last_error, endpoints, started_at, last_seq)
    SELECT t.id, t.course_id, t.owner, t.name, t.introduction, t.level, t.image, t.gpu,
           ARRAY(SELECT jsonb_array_elements_text(t.datasets)), $10, '', '', '[]'::jsonb,
           t.started_at, t.last_seq
    FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::int4[], $9::jsonb[], $11::timestamptz[], $12::int8[])
         AS t(id, course_id, owner, name, introduction, level, image, gpu, datasets,
              started_at, last_seq)
    ON CONFLICT (id) DO NOTHING";

const PROGRESS: &str = "
    SELECT id, status, reason, last_error, endpoints FROM jobs WHERE id = ANY($1::uuid[])
    FOR UPDATE";

const UPDATE: &str = "
    UPDATE jobs SET status = t.status, reason = t.reason, last_error = t.last_error,
                    endpoints = t.endpoints, last_seq = t.last_seq
    FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::int8[])
         AS t(id, status, reason, last_error, endpoints, last_seq)
    WHERE jobs.id = t.id";

const DELETE: &str = "DELETE FROM jobs WHERE id = ANY($1::uuid[])";

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
            // A job id that is not a UUID cannot come from the door and has no row.
            let events: Vec<(Uuid, &Applied, &JobEvent)> = events
                .iter()
                .filter_map(|applied| match &applied.event {
                    Event::Job(event) => Uuid::parse_str(&applied.envelope.aggregate_id)
                        .ok()
                        .map(|id| (id, applied, event)),
                    _ => None,
                })
                .collect();
            let mut batch = Batch {
                progress: stored(tx, &events).await?,
                ..Batch::default()
            };
            for (id, applied, event) in events {
                batch.fold(id, applied, event);
            }
            batch.write(tx).await
        })
    }
}

fn gpu(gpu: u32) -> i32 {
    i32::try_from(gpu).unwrap_or(i32::MAX)
}

/// What a batch did to the jobs it touched.
#[derive(Default)]
struct Batch<'a> {
    /// Each job's progress as the batch left it (`None`: no row).
    progress: HashMap<Uuid, Option<Progress>>,
    /// Jobs whose progress moved, with the sequence of the last event that moved it.
    moved: HashMap<Uuid, i64>,
    /// Launches, by job, with their time and sequence (the last one of a job).
    launched: HashMap<Uuid, (&'a Applied, &'a JobLaunched)>,
    deleted: Vec<Uuid>,
}

/// Each job the batch touches as it is before the batch (`None`: no row), read once for
/// all the jobs whose first event in the batch moves them; a launch or a deletion first
/// sets the job itself.
async fn stored(
    tx: &Tx<'_>,
    events: &[(Uuid, &Applied, &JobEvent)],
) -> Result<HashMap<Uuid, Option<Progress>>, tokio_postgres::Error> {
    let mut progress = HashMap::new();
    let mut read = Vec::new();
    for (id, _, event) in events {
        if !progress.contains_key(id) {
            progress.insert(*id, None);
            if !matches!(event, JobEvent::JobLaunched(_) | JobEvent::JobDeleted(_)) {
                read.push(*id);
            }
        }
    }
    if read.is_empty() {
        return Ok(progress);
    }
    let statement = tx.prepare_cached(PROGRESS).await?;
    for row in tx.query(&statement, &[&read]).await? {
        progress.insert(
            row.get(0),
            Some(Progress {
                status: JobStatus::parse(row.get(1)),
                reason: row.get(2),
                last_error: row.get(3),
                endpoints: serde_json::from_value(row.get(4)).unwrap_or_default(),
            }),
        );
    }
    Ok(progress)
}

impl<'a> Batch<'a> {
    /// One event on the jobs as the batch left them so far.
    fn fold(&mut self, id: Uuid, applied: &'a Applied, event: &'a JobEvent) {
        match event {
            JobEvent::JobLaunched(launched) => {
                self.progress.insert(id, Some(Progress::default()));
                self.launched.insert(id, (applied, launched));
            }
            JobEvent::JobDeleted(_) => {
                self.progress.insert(id, None);
                self.moved.remove(&id);
                self.launched.remove(&id);
                self.deleted.push(id);
            }
            other => {
                if let Some(Some(progress)) = self.progress.get_mut(&id) {
                    progress.apply(other);
                    self.moved.insert(id, applied.seq as i64);
                }
            }
        }
    }

    async fn write(self, tx: &Tx<'_>) -> Result<(), tokio_postgres::Error> {
        let mut pipeline = Pipeline::new(tx);
        if !self.deleted.is_empty() {
            pipeline.push(DELETE, params![self.deleted]).await?;
        }
        if !self.launched.is_empty() {
            let mut launches = Launches::default();
            for (id, (applied, launched)) in self.launched {
                launches.push(id, applied, launched);
            }
            pipeline.push(INSERT, launches.params()).await?;
        }
        let mut moves = Moves::default();
        for (id, seq) in self.moved {
            if let Some(Some(progress)) = self.progress.get(&id) {
                moves.push(id, seq, progress);
            }
        }
        if !moves.id.is_empty() {
            pipeline.push(UPDATE, moves.params()).await?;
        }
        pipeline.run().await
    }
}

/// Launches to insert, column by column, for `UNNEST`.
#[derive(Default)]
struct Launches {
    id: Vec<Uuid>,
    course_id: Vec<String>,
    owner: Vec<String>,
    name: Vec<String>,
    introduction: Vec<String>,
    level: Vec<String>,
    image: Vec<String>,
    gpu: Vec<i32>,
    datasets: Vec<serde_json::Value>,
    started_at: Vec<DateTime<Utc>>,
    last_seq: Vec<i64>,
}

impl Launches {
    fn push(&mut self, id: Uuid, applied: &Applied, launched: &JobLaunched) {
        self.id.push(id);
        self.course_id.push(launched.course_id.clone());
        self.owner.push(launched.owner.clone());
        self.name.push(launched.name.clone());
        self.introduction.push(launched.introduction.clone());
        self.level.push(launched.level.clone());
        self.image.push(launched.image.clone());
        self.gpu.push(gpu(launched.gpu));
        self.datasets
            .push(serde_json::Value::from(launched.datasets.clone()));
        self.started_at.push(applied.envelope.meta.occurred_at);
        self.last_seq.push(applied.seq as i64);
    }

    fn params(self) -> Vec<Param<'static>> {
        params![
            self.id,
            self.course_id,
            self.owner,
            self.name,
            self.introduction,
            self.level,
            self.image,
            self.gpu,
            self.datasets,
            JobStatus::Created.as_str(),
            self.started_at,
            self.last_seq,
        ]
    }
}

/// Progress to write, column by column, for `UNNEST`.
#[derive(Default)]
struct Moves<'a> {
    id: Vec<Uuid>,
    status: Vec<&'static str>,
    reason: Vec<&'a str>,
    last_error: Vec<&'a str>,
    endpoints: Vec<serde_json::Value>,
    last_seq: Vec<i64>,
}

impl<'a> Moves<'a> {
    fn push(&mut self, id: Uuid, seq: i64, progress: &'a Progress) {
        self.id.push(id);
        self.status.push(progress.status.as_str());
        self.reason.push(&progress.reason);
        self.last_error.push(&progress.last_error);
        self.endpoints
            .push(serde_json::to_value(&progress.endpoints).unwrap_or(serde_json::Value::Null));
        self.last_seq.push(seq);
    }

    fn params(self) -> Vec<Param<'a>> {
        params![
            self.id,
            self.status,
            self.reason,
            self.last_error,
            self.endpoints,
            self.last_seq,
        ]
    }
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
