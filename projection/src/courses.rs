//! The course catalogue read model: how course events become rows, and the queries of the
//! course door.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::{CourseEvent, DomainEvent, Event, course::CourseCreated};
use futures::future::BoxFuture;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{
    Database, DbError, Pool,
    registry::{Applied, Projection, Tx},
};

/// A course as the catalogue shows it (columns in the order of `select_courses!`).
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

/// The `course` table: one row per live course.
pub struct CourseCatalogue;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS course (
        id           uuid PRIMARY KEY,
        owner        text NOT NULL,
        name         text NOT NULL,
        introduction text NOT NULL,
        image        text NOT NULL,
        level        text NOT NULL,
        gpu          integer NOT NULL,
        datasets     text[] NOT NULL,
        created_at   timestamptz NOT NULL,
        last_seq     bigint NOT NULL
    );
    CREATE INDEX IF NOT EXISTS course_owner ON course (owner, created_at);
    CREATE INDEX IF NOT EXISTS course_level ON course (level, created_at);
    CREATE INDEX IF NOT EXISTS course_created ON course (created_at);";

impl Projection for CourseCatalogue {
    fn name(&self) -> &'static str {
        "course_catalogue"
    }

    fn aggregates(&self) -> &'static [&'static str] {
        &[CourseEvent::AGGREGATE]
    }

    fn schema(&self) -> &'static str {
        SCHEMA
    }

    fn apply<'a>(
        &'a self,
        tx: &'a Tx<'a>,
        events: &'a [Applied],
    ) -> BoxFuture<'a, Result<(), tokio_postgres::Error>> {
        Box::pin(apply_batch(tx, events))
    }
}

/// Rows are written set by set: the rows a batch changes are read once, every event is
/// applied to them in log order (a course update through [`CourseUpdated::apply_to`], the
/// same function the aggregate uses), and the result is written with one upsert and one
/// delete. `datasets` travels as JSON because PostgreSQL arrays of arrays must be
/// rectangular.
///
/// [`CourseUpdated::apply_to`]: events::course::CourseUpdated::apply_to
const UPSERT: &str = "
    INSERT INTO course (id, owner, name, introduction, image, level, gpu, datasets, created_at, last_seq)
    SELECT t.id, t.owner, t.name, t.introduction, t.image, t.level, t.gpu,
           ARRAY(SELECT jsonb_array_elements_text(t.datasets)), t.created_at, t.last_seq
    FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int4[],
                $8::jsonb[], $9::timestamptz[], $10::int8[])
         AS t(id, owner, name, introduction, image, level, gpu, datasets, created_at, last_seq)
    ON CONFLICT (id) DO UPDATE SET
        owner = EXCLUDED.owner, name = EXCLUDED.name, introduction = EXCLUDED.introduction,
        image = EXCLUDED.image, level = EXCLUDED.level, gpu = EXCLUDED.gpu,
        datasets = EXCLUDED.datasets, created_at = EXCLUDED.created_at, last_seq = EXCLUDED.last_seq";

const EXISTING: &str = "
    SELECT id, owner, name, introduction, image, level, gpu, datasets, created_at
    FROM course WHERE id = ANY($1::uuid[]) FOR UPDATE";

const DELETE: &str = "DELETE FROM course WHERE id = ANY($1::uuid[])";

/// A course as a batch leaves it: its row (`None`: deleted), its creation time, and the
/// sequence of the last event that changed it.
type Folded = HashMap<Uuid, (Option<CourseCreated>, DateTime<Utc>, u64)>;

/// The course events of a batch, with their course id (an id that is not a UUID cannot come
/// from the course door and has no row).
fn course_events(events: &[Applied]) -> impl Iterator<Item = (Uuid, &Applied, &CourseEvent)> {
    events.iter().filter_map(|a| match &a.event {
        Event::Course(event) => Uuid::parse_str(&a.envelope.aggregate_id)
            .ok()
            .map(|id| (id, a, event)),
        _ => None,
    })
}

/// Applies the events in log order to the rows they touch (`rows` holds the existing ones
/// that an update needs).
fn fold<'a>(
    mut rows: Folded,
    events: impl IntoIterator<Item = (Uuid, &'a Applied, &'a CourseEvent)>,
) -> Folded {
    for (id, applied, event) in events {
        match event {
            CourseEvent::CourseCreated(created) => {
                rows.insert(
                    id,
                    (
                        Some(created.clone()),
                        applied.envelope.meta.occurred_at,
                        applied.seq,
                    ),
                );
            }
            CourseEvent::CourseUpdated(update) => {
                if let Some((Some(row), _, last)) = rows.get_mut(&id) {
                    update.apply_to(row);
                    *last = applied.seq;
                }
            }
            CourseEvent::CourseDeleted(_) => {
                if let Some((row, _, last)) = rows.get_mut(&id) {
                    *row = None;
                    *last = applied.seq;
                } else {
                    rows.insert(id, (None, applied.envelope.meta.occurred_at, applied.seq));
                }
            }
        }
    }
    rows
}

fn gpu(gpu: u32) -> i32 {
    i32::try_from(gpu).unwrap_or(i32::MAX)
}

async fn apply_batch(tx: &Tx<'_>, events: &[Applied]) -> Result<(), tokio_postgres::Error> {
    let mut created_here = std::collections::HashSet::new();
    let mut needed = Vec::new();
    for (id, _, event) in course_events(events) {
        match event {
            CourseEvent::CourseCreated(_) => {
                created_here.insert(id);
            }
            CourseEvent::CourseUpdated(_) if !created_here.contains(&id) => needed.push(id),
            _ => {}
        }
    }
    let mut existing = Folded::new();
    if !needed.is_empty() {
        needed.dedup();
        let select = tx.prepare_cached(EXISTING).await?;
        for row in tx.query(&select, &[&needed]).await? {
            let row = CourseRow::from(&row);
            let created = CourseCreated {
                owner: row.owner,
                name: row.name,
                introduction: row.introduction,
                image: row.image,
                level: row.level,
                gpu: u32::try_from(row.gpu).unwrap_or(0),
                datasets: row.datasets,
            };
            existing.insert(row.id, (Some(created), row.created_at, 0));
        }
    }
    let mut live = Rows::default();
    let mut deleted = Vec::new();
    for (id, (row, created_at, seq)) in fold(existing, course_events(events)) {
        match row {
            Some(row) if seq > 0 => live.push(id, row, created_at, seq),
            Some(_) => {}
            None => deleted.push(id),
        }
    }
    let (upsert, delete) =
        futures::try_join!(tx.prepare_cached(UPSERT), tx.prepare_cached(DELETE))?;
    let l = &live;
    futures::try_join!(
        async {
            if l.id.is_empty() {
                return Ok(0);
            }
            tx.execute(
                &upsert,
                &[
                    &l.id,
                    &l.owner,
                    &l.name,
                    &l.introduction,
                    &l.image,
                    &l.level,
                    &l.gpu,
                    &l.datasets,
                    &l.created_at,
                    &l.seq,
                ],
            )
            .await
        },
        async {
            if deleted.is_empty() {
                return Ok(0);
            }
            tx.execute(&delete, &[&deleted]).await
        },
    )?;
    Ok(())
}

/// Rows to write, column by column, for `UNNEST`.
#[derive(Default)]
struct Rows {
    id: Vec<Uuid>,
    owner: Vec<String>,
    name: Vec<String>,
    introduction: Vec<String>,
    image: Vec<String>,
    level: Vec<String>,
    gpu: Vec<i32>,
    datasets: Vec<serde_json::Value>,
    created_at: Vec<DateTime<Utc>>,
    seq: Vec<i64>,
}

impl Rows {
    fn push(&mut self, id: Uuid, row: CourseCreated, created_at: DateTime<Utc>, seq: u64) {
        self.id.push(id);
        self.datasets.push(serde_json::Value::from(row.datasets));
        self.gpu.push(gpu(row.gpu));
        self.owner.push(row.owner);
        self.name.push(row.name);
        self.introduction.push(row.introduction);
        self.image.push(row.image);
        self.level.push(row.level);
        self.created_at.push(created_at);
        self.seq.push(seq as i64);
    }
}

/// `SELECT <columns> FROM course <filter> ORDER BY created_at, id`, written out once.
macro_rules! select_courses {
    ($filter:literal) => {
        concat!(
            "SELECT id, owner, name, introduction, image, level, gpu, datasets, created_at FROM course ",
            $filter,
            " ORDER BY created_at, id"
        )
    };
}

async fn select(
    pool: &Pool,
    sql: &'static str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<CourseRow>, DbError> {
    let client = pool.get().await?;
    let statement = client.prepare_cached(sql).await?;
    Ok(client
        .query(&statement, params)
        .await?
        .iter()
        .map(CourseRow::from)
        .collect())
}

/// Every course.
pub async fn course_list(pool: &Pool) -> Result<Vec<CourseRow>, DbError> {
    select(pool, select_courses!(""), &[]).await
}

/// The courses of one user.
pub async fn course_list_by_owner(pool: &Pool, owner: &str) -> Result<Vec<CourseRow>, DbError> {
    select(pool, select_courses!("WHERE owner = $1"), &[&owner]).await
}

/// The courses of one level (`basic`, `advance`).
pub async fn course_list_by_level(pool: &Pool, level: &str) -> Result<Vec<CourseRow>, DbError> {
    select(pool, select_courses!("WHERE level = $1"), &[&level]).await
}

/// Courses whose name contains `query`, case-sensitive, as the platform's `LIKE %q%` was;
/// `strpos` treats `%` and `_` in the query as themselves.
pub async fn course_search(pool: &Pool, query: &str) -> Result<Vec<CourseRow>, DbError> {
    select(
        pool,
        select_courses!("WHERE strpos(name, $1) > 0"),
        &[&query],
    )
    .await
}

/// One course by id: a primary-key lookup, without the lists' ORDER BY and its sort.
/// One course, read on a shared connection ([`crate::Readers`]).
pub async fn course_get(db: &Database, id: Uuid) -> Result<Option<CourseRow>, DbError> {
    const SQL: &str = "SELECT id, owner, name, introduction, image, level, gpu, datasets, created_at \
                       FROM course WHERE id = $1";
    let client = db.readers.client().await?;
    let statement = client.prepare_cached(SQL).await?;
    Ok(client
        .query_opt(&statement, &[&id])
        .await?
        .as_ref()
        .map(CourseRow::from))
}

#[cfg(test)]
mod tests {
    use events::{
        Envelope, Meta,
        course::{CourseDeleted, CourseUpdated},
    };

    use super::*;

    fn applied(seq: u64, id: Uuid, event: CourseEvent) -> Applied {
        let meta = Meta {
            actor: "admin".into(),
            request_id: "r".into(),
            causation_id: None,
            occurred_at: Utc::now(),
            idempotency_key: None,
            request_digest: None,
        };
        let envelope = Envelope::new(&id.to_string(), &event, meta).unwrap();
        Applied {
            seq,
            envelope,
            event: Event::Course(event),
        }
    }

    fn created(name: &str) -> CourseEvent {
        CourseEvent::CourseCreated(CourseCreated {
            owner: "o".into(),
            name: name.into(),
            introduction: String::new(),
            image: String::new(),
            level: "basic".into(),
            gpu: 1,
            datasets: vec!["mnist".into()],
        })
    }

    fn renamed(name: &str) -> CourseEvent {
        CourseEvent::CourseUpdated(CourseUpdated {
            name: Some(name.into()),
            ..Default::default()
        })
    }

    #[test]
    fn a_batch_folds_into_one_row_per_course() {
        let (a, b, c, d) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let clear = CourseEvent::CourseUpdated(CourseUpdated {
            datasets: Some(vec![]),
            ..Default::default()
        });
        let deleted = CourseEvent::CourseDeleted(CourseDeleted {});
        let batch = [
            applied(1, a, created("a")),
            applied(2, b, created("b")),
            applied(3, a, renamed("a2")),
            applied(4, b, deleted.clone()),
            applied(5, c, renamed("c2")),
            applied(6, c, clear),
            applied(7, c, renamed("c3")),
            applied(8, d, deleted),
        ];
        let CourseEvent::CourseCreated(existing_c) = created("c") else {
            unreachable!()
        };
        let existing = Folded::from([(c, (Some(existing_c), Utc::now(), 0))]);
        let rows = fold(existing, course_events(&batch));
        assert_eq!(rows.len(), 4);
        let (row, _, seq) = &rows[&a];
        let row = row.as_ref().expect("a is live");
        assert_eq!((row.name.as_str(), row.datasets.len(), *seq), ("a2", 1, 3));
        assert!(rows[&b].0.is_none(), "created then deleted: no row");
        let (row, _, seq) = &rows[&c];
        let row = row.as_ref().expect("c is live");
        assert_eq!(
            (
                row.name.as_str(),
                row.datasets.len(),
                row.level.as_str(),
                *seq
            ),
            ("c3", 0, "basic", 7)
        );
        assert!(rows[&d].0.is_none());
    }

    #[test]
    fn an_update_of_a_course_without_a_row_changes_nothing() {
        let id = Uuid::new_v4();
        let rows = fold(
            Folded::new(),
            course_events(&[applied(1, id, renamed("x"))]),
        );
        assert!(rows.is_empty());
    }
}
