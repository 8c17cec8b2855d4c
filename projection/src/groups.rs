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
    pipeline::{Param, Pipeline},
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

/// A group as an event leaves it; `created_at` stays that of its creation.
const UPSERT: &str = "
    INSERT INTO groups (group_id, name, description, external_name, extension, acl_admin,
                        acl_virtual_clusters, created_at, updated_at, last_seq)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)
    ON CONFLICT (group_id) DO UPDATE SET
        name = EXCLUDED.name, description = EXCLUDED.description,
        external_name = EXCLUDED.external_name, extension = EXCLUDED.extension,
        acl_admin = EXCLUDED.acl_admin, acl_virtual_clusters = EXCLUDED.acl_virtual_clusters,
        created_at = CASE WHEN $10 THEN EXCLUDED.created_at ELSE groups.created_at END,
        updated_at = EXCLUDED.updated_at, last_seq = EXCLUDED.last_seq";

const EXISTING: &str = "
    SELECT name, description, external_name, extension FROM groups WHERE group_id = $1 FOR UPDATE";

const DELETE: &str = "DELETE FROM groups WHERE group_id = $1";

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
            let mut pipeline = Pipeline::new(tx);
            // Each group as this batch left it (`None`: deleted), so that an update of a
            // group the batch already wrote needs no read.
            let mut written = HashMap::new();
            for applied in events {
                apply_one(&mut pipeline, &mut written, applied).await?;
            }
            pipeline.run().await
        })
    }
}

/// Each event is one statement, sent with the batch's others in log order; an update is
/// applied through [`events::group::GroupUpdated::apply_to`] as the aggregate does, to the
/// row as this batch left it or else as read (after what the batch sent so far).
async fn apply_one(
    pipeline: &mut Pipeline<'_>,
    written: &mut HashMap<String, Option<GroupCreated>>,
    applied: &Applied,
) -> Result<(), tokio_postgres::Error> {
    let Event::Group(event) = &applied.event else {
        return Ok(());
    };
    let id = &applied.envelope.aggregate_id;
    match event {
        GroupEvent::GroupCreated(created) => {
            written.insert(id.clone(), Some(created.clone()));
            pipeline.push(UPSERT, upsert(applied, created, true)).await
        }
        GroupEvent::GroupUpdated(changes) => {
            let group = match written.get(id) {
                Some(group) => group.clone(),
                None => existing(pipeline, id).await?,
            };
            let Some(mut group) = group else {
                return Ok(());
            };
            changes.apply_to(&mut group);
            let params = upsert(applied, &group, false);
            written.insert(id.clone(), Some(group));
            pipeline.push(UPSERT, params).await
        }
        GroupEvent::GroupDeleted(_) => {
            written.insert(id.clone(), None);
            pipeline.push(DELETE, vec![Box::new(id.clone())]).await
        }
    }
}

/// The group as its row now is.
async fn existing(
    pipeline: &mut Pipeline<'_>,
    id: &str,
) -> Result<Option<GroupCreated>, tokio_postgres::Error> {
    pipeline.flush().await?;
    let tx = pipeline.tx();
    let statement = tx.prepare_cached(EXISTING).await?;
    Ok(tx
        .query_opt(&statement, &[&id])
        .await?
        .map(|row| GroupCreated {
            name: row.get(0),
            description: row.get(1),
            external_name: row.get(2),
            extension: extension(row.get(3)),
        }))
}

/// The parameters of [`UPSERT`].
fn upsert(applied: &Applied, group: &GroupCreated, created: bool) -> Vec<Param<'static>> {
    vec![
        Box::new(applied.envelope.aggregate_id.clone()),
        Box::new(group.name.clone()),
        Box::new(group.description.clone()),
        Box::new(group.external_name.clone()),
        Box::new(Value::Object(group.extension.clone())),
        Box::new(acl_admin(&group.extension)),
        Box::new(acl_virtual_clusters(&group.extension)),
        Box::new(applied.envelope.meta.occurred_at),
        Box::new(applied.seq as i64),
        Box::new(created),
    ]
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
