//! The `groups` read model: every group, with the attributes Gantry reads from its
//! extension (`acls.admin`, `acls.virtualClusters`) in columns of their own.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::{
    DomainEvent, Event, GroupEvent,
    group::{GroupCreated, acl_admin, acl_virtual_clusters},
};
use futures::future::BoxFuture;
use serde_json::Value;
use tokio_postgres::Row;

use crate::{
    DbError, Pool,
    pipeline::{Param, Pipeline, params},
    registry::{Applied, Projection, Tx},
};

#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub name: String,
    pub description: String,
    pub external_name: String,
    pub extension: serde_json::Map<String, Value>,
    pub acl_admin: bool,
    pub acl_virtual_clusters: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&Row> for GroupRow {
    fn from(row: &Row) -> Self {
        Self {
            name: row.get(0),
            description: row.get(1),
            external_name: row.get(2),
            extension: extension(row.get(3)),
            acl_admin: row.get(4),
            acl_virtual_clusters: row.get(5),
            created_at: row.get(6),
        }
    }
}

/// A stored extension as its map (an object always, as written).
fn extension(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// The `groups` table: one row per existing group.
pub struct GroupDirectory;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS groups (
        group_id             text PRIMARY KEY,
        name                 text NOT NULL UNIQUE,
        description          text NOT NULL,
        external_name        text NOT NULL,
        extension            jsonb NOT NULL,
        acl_admin            boolean NOT NULL,
        acl_virtual_clusters text[] NOT NULL,
        created_at           timestamptz NOT NULL,
        updated_at           timestamptz NOT NULL,
        last_seq             bigint NOT NULL
    );";

// A batch leaves each group written or deleted: one delete and one upsert for all of them.
// List columns travel as JSON arrays, since `UNNEST` flattens an array of arrays.
const UPSERT: &str = "
    INSERT INTO groups (group_id, name, description, external_name, extension, acl_admin,
                        acl_virtual_clusters, created_at, updated_at, last_seq)
    SELECT t.group_id, t.name, t.description, t.external_name, t.extension, t.acl_admin,
           ARRAY(SELECT jsonb_array_elements_text(t.virtual_clusters)), t.created_at,
           t.updated_at, t.last_seq
    FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::bool[],
                $7::jsonb[], $8::timestamptz[], $9::timestamptz[], $10::int8[])
         AS t(group_id, name, description, external_name, extension, acl_admin,
              virtual_clusters, created_at, updated_at, last_seq)
    ON CONFLICT (group_id) DO UPDATE SET
        name = EXCLUDED.name, description = EXCLUDED.description,
        external_name = EXCLUDED.external_name, extension = EXCLUDED.extension,
        acl_admin = EXCLUDED.acl_admin, acl_virtual_clusters = EXCLUDED.acl_virtual_clusters,
        created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
        last_seq = EXCLUDED.last_seq";

const STORED: &str = "
    SELECT group_id, name, description, external_name, extension, created_at, updated_at,
           last_seq FROM groups
    WHERE group_id = ANY($1::text[]) FOR UPDATE";

const DELETE: &str = "DELETE FROM groups WHERE group_id = ANY($1::text[])";

impl Projection for GroupDirectory {
    fn name(&self) -> &'static str {
        "group_directory"
    }

    fn aggregates(&self) -> &'static [&'static str] {
        &[GroupEvent::AGGREGATE]
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
            let events: Vec<(&Applied, &GroupEvent)> = events
                .iter()
                .filter_map(|applied| match &applied.event {
                    Event::Group(event) => Some((applied, event)),
                    _ => None,
                })
                .collect();
            let mut groups = stored(tx, &events).await?;
            for (applied, event) in events {
                fold(&mut groups, applied, event);
            }
            write(tx, groups).await
        })
    }
}

/// A group as the batch leaves it.
struct Written {
    group: GroupCreated,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_seq: i64,
}

/// Each group the batch touches as it is before the batch (`None`: deleted or never
/// created), read once for all the groups whose first event in the batch updates them.
async fn stored<'a>(
    tx: &Tx<'_>,
    events: &[(&'a Applied, &GroupEvent)],
) -> Result<HashMap<&'a str, Option<Written>>, tokio_postgres::Error> {
    let mut groups = HashMap::new();
    let mut read = Vec::new();
    for (applied, event) in events {
        let id = applied.envelope.aggregate_id.as_str();
        if !groups.contains_key(id) {
            groups.insert(id, None);
            if matches!(event, GroupEvent::GroupUpdated(_)) {
                read.push(id);
            }
        }
    }
    if read.is_empty() {
        return Ok(groups);
    }
    let statement = tx.prepare_cached(STORED).await?;
    for row in tx.query(&statement, &[&read]).await? {
        let id: String = row.get(0);
        if let Some(group) = groups.get_mut(id.as_str()) {
            *group = Some(Written {
                group: GroupCreated {
                    name: row.get(1),
                    description: row.get(2),
                    external_name: row.get(3),
                    extension: extension(row.get(4)),
                },
                created_at: row.get(5),
                updated_at: row.get(6),
                last_seq: row.get(7),
            });
        }
    }
    Ok(groups)
}

/// One event on the groups as the batch left them so far; an update goes through
/// [`events::group::GroupUpdated::apply_to`] as the aggregate does, and one of a group
/// that does not exist changes nothing.
fn fold(groups: &mut HashMap<&str, Option<Written>>, applied: &Applied, event: &GroupEvent) {
    let at = applied.envelope.meta.occurred_at;
    let seq = applied.seq as i64;
    let Some(group) = groups.get_mut(applied.envelope.aggregate_id.as_str()) else {
        return;
    };
    match event {
        GroupEvent::GroupCreated(created) => {
            *group = Some(Written {
                group: created.clone(),
                created_at: at,
                updated_at: at,
                last_seq: seq,
            });
        }
        GroupEvent::GroupUpdated(changes) => {
            if let Some(written) = group {
                changes.apply_to(&mut written.group);
                written.updated_at = at;
                written.last_seq = seq;
            }
        }
        GroupEvent::GroupDeleted(_) => *group = None,
    }
}

/// The deletions first, so that a name a deleted group leaves is free for the upsert.
async fn write(
    tx: &Tx<'_>,
    groups: HashMap<&str, Option<Written>>,
) -> Result<(), tokio_postgres::Error> {
    let mut deleted = Vec::new();
    let mut rows: Rows = Rows::default();
    for (id, group) in groups {
        match group {
            None => deleted.push(id),
            Some(written) => rows.push(id, written),
        }
    }
    let mut pipeline = Pipeline::new(tx);
    if !deleted.is_empty() {
        pipeline.push(DELETE, params![deleted]).await?;
    }
    if !rows.id.is_empty() {
        pipeline.push(UPSERT, rows.params()).await?;
    }
    pipeline.run().await
}

/// Rows to write, column by column, for `UNNEST`.
#[derive(Default)]
struct Rows<'a> {
    id: Vec<&'a str>,
    name: Vec<String>,
    description: Vec<String>,
    external_name: Vec<String>,
    extension: Vec<Value>,
    acl_admin: Vec<bool>,
    virtual_clusters: Vec<Value>,
    created_at: Vec<DateTime<Utc>>,
    updated_at: Vec<DateTime<Utc>>,
    last_seq: Vec<i64>,
}

impl<'a> Rows<'a> {
    fn push(&mut self, id: &'a str, written: Written) {
        let group = written.group;
        self.id.push(id);
        self.acl_admin.push(acl_admin(&group.extension));
        self.virtual_clusters
            .push(Value::from(acl_virtual_clusters(&group.extension)));
        self.name.push(group.name);
        self.description.push(group.description);
        self.external_name.push(group.external_name);
        self.extension.push(Value::Object(group.extension));
        self.created_at.push(written.created_at);
        self.updated_at.push(written.updated_at);
        self.last_seq.push(written.last_seq);
    }

    fn params(self) -> Vec<Param<'a>> {
        params![
            self.id,
            self.name,
            self.description,
            self.external_name,
            self.extension,
            self.acl_admin,
            self.virtual_clusters,
            self.created_at,
            self.updated_at,
            self.last_seq,
        ]
    }
}

const SELECT: &str = "SELECT name, description, external_name, extension, acl_admin,
                             acl_virtual_clusters, created_at FROM groups";

pub async fn group_by_name(pool: &Pool, name: &str) -> Result<Option<GroupRow>, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached(&format!("{SELECT} WHERE name = $1"))
        .await?;
    Ok(client
        .query_opt(&statement, &[&name])
        .await?
        .as_ref()
        .map(GroupRow::from))
}

/// Every group, by name.
pub async fn group_list(pool: &Pool) -> Result<Vec<GroupRow>, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached(&format!("{SELECT} ORDER BY name"))
        .await?;
    Ok(client
        .query(&statement, &[])
        .await?
        .iter()
        .map(GroupRow::from)
        .collect())
}
