//! The `course` read model: how course events become rows, and the queries of the course
//! catalogue.

use chrono::{DateTime, Utc};
use events::{
    Envelope,
    course::{CourseCreated, CourseEvent, CourseUpdated},
};
use futures::{FutureExt, future::BoxFuture};
use tokio_postgres::{Row, Statement};
use uuid::Uuid;

use crate::{DbError, Pool};

/// A course as the catalogue shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CourseRow {
    pub id: Uuid,
    pub owner: String,
    pub name: String,
    pub introduction: String,
    pub image: String,
    pub level: String,
    pub gpu: i32,
    pub datasets: Vec<String>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, owner, name, introduction, image, level, gpu, datasets, created_at";

impl From<&Row> for CourseRow {
    fn from(row: &Row) -> Self {
        Self {
            id: row.get(0),
            owner: row.get(1),
            name: row.get(2),
            introduction: row.get(3),
            image: row.get(4),
            level: row.get(5),
            gpu: row.get(6),
            datasets: row.get(7),
            created_at: row.get(8),
        }
    }
}

pub(crate) struct Statements {
    create: Statement,
    update: Statement,
    delete: Statement,
}

impl Statements {
    pub(crate) async fn prepare(
        tx: &deadpool_postgres::Transaction<'_>,
    ) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            create: tx
                .prepare_cached(
                    "INSERT INTO course (id, owner, name, introduction, image, level, gpu, datasets, created_at, last_seq)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING",
                )
                .await?,
            update: tx
                .prepare_cached(
                    "UPDATE course SET name = COALESCE($2, name), introduction = COALESCE($3, introduction),
                     image = COALESCE($4, image), level = COALESCE($5, level), gpu = COALESCE($6, gpu),
                     datasets = COALESCE($7, datasets), last_seq = $8 WHERE id = $1",
                )
                .await?,
            delete: tx.prepare_cached("DELETE FROM course WHERE id = $1").await?,
        })
    }
}

/// The write one course event makes (sent without waiting, so a batch is pipelined).
pub(crate) fn apply<'a>(
    tx: &'a deadpool_postgres::Transaction<'_>,
    statements: &'a Statements,
    seq: u64,
    envelope: &'a Envelope,
    event: &'a CourseEvent,
) -> BoxFuture<'a, Result<u64, tokio_postgres::Error>> {
    // An id that is not a UUID cannot come from the course door; such an event matches no row.
    let id = Uuid::parse_str(&envelope.aggregate_id).unwrap_or(Uuid::nil());
    let seq = seq as i64;
    async move {
        match event {
            CourseEvent::CourseCreated(CourseCreated {
                owner,
                name,
                introduction,
                image,
                level,
                gpu,
                datasets,
            }) => {
                let gpu = i32::try_from(*gpu).unwrap_or(i32::MAX);
                tx.execute(
                    &statements.create,
                    &[
                        &id,
                        owner,
                        name,
                        introduction,
                        image,
                        level,
                        &gpu,
                        datasets,
                        &envelope.meta.occurred_at,
                        &seq,
                    ],
                )
                .await
            }
            CourseEvent::CourseUpdated(CourseUpdated {
                name,
                introduction,
                image,
                level,
                gpu,
                datasets,
            }) => {
                let gpu = gpu.map(|g| i32::try_from(g).unwrap_or(i32::MAX));
                tx.execute(
                    &statements.update,
                    &[&id, name, introduction, image, level, &gpu, datasets, &seq],
                )
                .await
            }
            CourseEvent::CourseDeleted(_) => tx.execute(&statements.delete, &[&id]).await,
        }
    }
    .boxed()
}

async fn select(
    pool: &Pool,
    filter: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<CourseRow>, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM course {filter} ORDER BY created_at, id"
        ))
        .await?;
    Ok(client
        .query(&statement, params)
        .await?
        .iter()
        .map(CourseRow::from)
        .collect())
}

/// Every course.
pub async fn course_list(pool: &Pool) -> Result<Vec<CourseRow>, DbError> {
    select(pool, "", &[]).await
}

/// The courses of one user.
pub async fn course_list_by_owner(pool: &Pool, owner: &str) -> Result<Vec<CourseRow>, DbError> {
    select(pool, "WHERE owner = $1", &[&owner]).await
}

/// The courses of one level (`basic`, `advance`).
pub async fn course_list_by_level(pool: &Pool, level: &str) -> Result<Vec<CourseRow>, DbError> {
    select(pool, "WHERE level = $1", &[&level]).await
}

/// Courses whose name contains `query`, case-sensitive, as the platform's `LIKE %q%` was;
/// `strpos` treats `%` and `_` in the query as themselves.
pub async fn course_search(pool: &Pool, query: &str) -> Result<Vec<CourseRow>, DbError> {
    select(pool, "WHERE strpos(name, $1) > 0", &[&query]).await
}

pub async fn course_get(pool: &Pool, id: Uuid) -> Result<Option<CourseRow>, DbError> {
    Ok(select(pool, "WHERE id = $1", &[&id])
        .await?
        .into_iter()
        .next())
}
