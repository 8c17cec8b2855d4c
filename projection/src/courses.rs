//! The `course` read model: how course events become rows, and the queries of the course
//! catalogue.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::{
    Envelope,
    course::{CourseCreated, CourseEvent, CourseUpdated},
};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{DbError, Pool};

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

/// Rows are written set by set: a batch of events is first folded into one change per
/// course (a new row, changes to an existing row, or a deletion), then written with one
/// statement per kind of change. `datasets` travels as JSON because PostgreSQL arrays of
/// arrays must be rectangular.
const INSERT: &str = "
    INSERT INTO course (id, owner, name, introduction, image, level, gpu, datasets, created_at, last_seq)
    SELECT t.id, t.owner, t.name, t.introduction, t.image, t.level, t.gpu,
           ARRAY(SELECT jsonb_array_elements_text(t.datasets)), t.created_at, t.last_seq
    FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int4[],
                $8::jsonb[], $9::timestamptz[], $10::int8[])
         AS t(id, owner, name, introduction, image, level, gpu, datasets, created_at, last_seq)
    ON CONFLICT (id) DO NOTHING";

const UPDATE: &str = "
    UPDATE course AS c SET
        name = COALESCE(t.name, c.name),
        introduction = COALESCE(t.introduction, c.introduction),
        image = COALESCE(t.image, c.image),
        level = COALESCE(t.level, c.level),
        gpu = COALESCE(t.gpu, c.gpu),
        datasets = CASE WHEN t.datasets IS NULL THEN c.datasets
                        ELSE ARRAY(SELECT jsonb_array_elements_text(t.datasets)) END,
        last_seq = t.last_seq
    FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int4[], $7::jsonb[], $8::int8[])
         AS t(id, name, introduction, image, level, gpu, datasets, last_seq)
    WHERE c.id = t.id";

const DELETE: &str = "DELETE FROM course WHERE id = ANY($1::uuid[])";

/// What one batch does to one course.
enum Change {
    Insert(CourseCreated, DateTime<Utc>, u64),
    Update(CourseUpdated, u64),
    Delete,
}

/// Folds the events of a batch, in log order, into one change per course.
fn fold<'a>(
    events: impl IntoIterator<Item = (u64, &'a Envelope, &'a CourseEvent)>,
) -> HashMap<Uuid, Change> {
    let mut changes = HashMap::new();
    for (seq, envelope, event) in events {
        // An id that is not a UUID cannot come from the course door; it has no row.
        let Ok(id) = Uuid::parse_str(&envelope.aggregate_id) else {
            continue;
        };
        match event {
            CourseEvent::CourseCreated(created) => {
                changes.insert(
                    id,
                    Change::Insert(created.clone(), envelope.meta.occurred_at, seq),
                );
            }
            CourseEvent::CourseUpdated(update) => match changes.get_mut(&id) {
                Some(Change::Insert(row, _, last)) => {
                    merge_into_row(row, update);
                    *last = seq;
                }
                Some(Change::Update(pending, last)) => {
                    merge_changes(pending, update);
                    *last = seq;
                }
                Some(Change::Delete) => {}
                None => {
                    changes.insert(id, Change::Update(update.clone(), seq));
                }
            },
            CourseEvent::CourseDeleted(_) => {
                changes.insert(id, Change::Delete);
            }
        }
    }
    changes
}

fn merge_into_row(row: &mut CourseCreated, update: &CourseUpdated) {
    let u = update.clone();
    row.name = u.name.unwrap_or(std::mem::take(&mut row.name));
    row.introduction = u
        .introduction
        .unwrap_or(std::mem::take(&mut row.introduction));
    row.image = u.image.unwrap_or(std::mem::take(&mut row.image));
    row.level = u.level.unwrap_or(std::mem::take(&mut row.level));
    row.gpu = u.gpu.unwrap_or(row.gpu);
    row.datasets = u.datasets.unwrap_or(std::mem::take(&mut row.datasets));
}

fn merge_changes(pending: &mut CourseUpdated, later: &CourseUpdated) {
    let l = later.clone();
    pending.name = l.name.or(pending.name.take());
    pending.introduction = l.introduction.or(pending.introduction.take());
    pending.image = l.image.or(pending.image.take());
    pending.level = l.level.or(pending.level.take());
    pending.gpu = l.gpu.or(pending.gpu);
    pending.datasets = l.datasets.or(pending.datasets.take());
}

fn gpu(gpu: u32) -> i32 {
    i32::try_from(gpu).unwrap_or(i32::MAX)
}

fn datasets(list: &[String]) -> serde_json::Value {
    serde_json::Value::from(list.to_vec())
}

/// Writes a batch of course events: at most three statements, sent together.
pub(crate) async fn apply_batch(
    tx: &deadpool_postgres::Transaction<'_>,
    events: Vec<(u64, &Envelope, &CourseEvent)>,
) -> Result<(), tokio_postgres::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let (insert, update, delete) = futures::try_join!(
        tx.prepare_cached(INSERT),
        tx.prepare_cached(UPDATE),
        tx.prepare_cached(DELETE)
    )?;

    let mut new = NewRows::default();
    let mut changed = ChangedRows::default();
    let mut deleted = Vec::new();
    for (id, change) in fold(events) {
        match change {
            Change::Insert(row, created_at, seq) => new.push(id, row, created_at, seq),
            Change::Update(update, seq) => changed.push(id, update, seq),
            Change::Delete => deleted.push(id),
        }
    }
    let n = &new;
    let c = &changed;
    futures::try_join!(
        async {
            if n.id.is_empty() {
                return Ok(0);
            }
            tx.execute(
                &insert,
                &[
                    &n.id,
                    &n.owner,
                    &n.name,
                    &n.introduction,
                    &n.image,
                    &n.level,
                    &n.gpu,
                    &n.datasets,
                    &n.created_at,
                    &n.seq,
                ],
            )
            .await
        },
        async {
            if c.id.is_empty() {
                return Ok(0);
            }
            tx.execute(
                &update,
                &[
                    &c.id,
                    &c.name,
                    &c.introduction,
                    &c.image,
                    &c.level,
                    &c.gpu,
                    &c.datasets,
                    &c.seq,
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

/// New rows, column by column, for `UNNEST`.
#[derive(Default)]
struct NewRows {
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

impl NewRows {
    fn push(&mut self, id: Uuid, row: CourseCreated, created_at: DateTime<Utc>, seq: u64) {
        self.id.push(id);
        self.datasets.push(datasets(&row.datasets));
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

/// Changes to existing rows, column by column; `None` keeps the column as it is.
#[derive(Default)]
struct ChangedRows {
    id: Vec<Uuid>,
    name: Vec<Option<String>>,
    introduction: Vec<Option<String>>,
    image: Vec<Option<String>>,
    level: Vec<Option<String>>,
    gpu: Vec<Option<i32>>,
    datasets: Vec<Option<serde_json::Value>>,
    seq: Vec<i64>,
}

impl ChangedRows {
    fn push(&mut self, id: Uuid, update: CourseUpdated, seq: u64) {
        self.id.push(id);
        self.datasets.push(update.datasets.as_deref().map(datasets));
        self.gpu.push(update.gpu.map(gpu));
        self.name.push(update.name);
        self.introduction.push(update.introduction);
        self.image.push(update.image);
        self.level.push(update.level);
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
pub async fn course_get(pool: &Pool, id: Uuid) -> Result<Option<CourseRow>, DbError> {
    const SQL: &str = "SELECT id, owner, name, introduction, image, level, gpu, datasets, created_at \
                       FROM course WHERE id = $1";
    let client = pool.get().await?;
    let statement = client.prepare_cached(SQL).await?;
    Ok(client
        .query_opt(&statement, &[&id])
        .await?
        .as_ref()
        .map(CourseRow::from))
}

#[cfg(test)]
mod tests {
    use events::{Meta, course::CourseDeleted};

    use super::*;

    fn envelope(id: Uuid) -> Envelope {
        let meta = Meta {
            actor: "a".into(),
            request_id: "r".into(),
            causation_id: None,
            occurred_at: Utc::now(),
            idempotency_key: None,
        };
        let event = CourseEvent::CourseDeleted(CourseDeleted {});
        match Envelope::new(&id.to_string(), &event, meta) {
            Ok(envelope) => envelope,
            Err(e) => panic!("{e}"),
        }
    }

    fn created(name: &str) -> CourseEvent {
        CourseEvent::CourseCreated(CourseCreated {
            owner: "o".into(),
            name: name.into(),
            introduction: "i".into(),
            image: "img".into(),
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
    fn a_batch_folds_into_one_change_per_course() {
        let (a, b, c, d) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let (ea, eb, ec, ed) = (envelope(a), envelope(b), envelope(c), envelope(d));
        let clear = CourseEvent::CourseUpdated(CourseUpdated {
            datasets: Some(vec![]),
            ..Default::default()
        });
        let deleted = CourseEvent::CourseDeleted(CourseDeleted {});
        let (ca, ra, cb, db, rc, xc, rc2) = (
            created("a"),
            renamed("a2"),
            created("b"),
            deleted.clone(),
            renamed("c2"),
            clear,
            renamed("c3"),
        );
        let changes = fold([
            (1, &ea, &ca),
            (2, &eb, &cb),
            (3, &ea, &ra),
            (4, &eb, &db),
            (5, &ec, &rc),
            (6, &ec, &xc),
            (7, &ec, &rc2),
            (8, &ed, &deleted),
        ]);
        assert_eq!(changes.len(), 4);
        match &changes[&a] {
            Change::Insert(row, _, seq) => {
                assert_eq!((row.name.as_str(), row.datasets.len(), *seq), ("a2", 1, 3))
            }
            _ => panic!("a is new"),
        }
        assert!(
            matches!(changes[&b], Change::Delete),
            "created then deleted: nothing to insert"
        );
        match &changes[&c] {
            Change::Update(update, seq) => {
                assert_eq!(update.name.as_deref(), Some("c3"));
                assert_eq!(update.datasets.as_deref(), Some(&[][..]));
                assert_eq!(update.image, None);
                assert_eq!(*seq, 7);
            }
            _ => panic!("c changes an existing row"),
        }
        assert!(matches!(changes[&d], Change::Delete));
    }
}
