//! The `groups` read model: every group, with the attributes Gantry reads from its
//! extension (`acls.admin`, `acls.virtualClusters`) in columns of their own.

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
            extension: match row.get::<_, Value>(3) {
                Value::Object(map) => map,
                _ => serde_json::Map::new(),
            },
            acl_admin: row.get(4),
            acl_virtual_clusters: row.get(5),
            created_at: row.get(6),
        }
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
            for applied in events {
                apply_one(tx, applied).await?;
            }
            Ok(())
        })
    }
}

/// Groups are few and change rarely: each event is read-modify-write of its row, in log
/// order, an update through [`events::group::GroupUpdated::apply_to`] as the aggregate does.
async fn apply_one(tx: &Tx<'_>, applied: &Applied) -> Result<(), tokio_postgres::Error> {
    let Event::Group(event) = &applied.event else {
        return Ok(());
    };
    let id = &applied.envelope.aggregate_id;
    match event {
        GroupEvent::GroupCreated(created) => write(tx, applied, created, true).await,
        GroupEvent::GroupUpdated(changes) => {
            let existing = tx.prepare_cached(EXISTING).await?;
            let Some(row) = tx.query_opt(&existing, &[id]).await? else {
                return Ok(());
            };
            let mut group = GroupCreated {
                name: row.get(0),
                description: row.get(1),
                external_name: row.get(2),
                extension: match row.get::<_, Value>(3) {
                    Value::Object(map) => map,
                    _ => serde_json::Map::new(),
                },
            };
            changes.apply_to(&mut group);
            write(tx, applied, &group, false).await
        }
        GroupEvent::GroupDeleted(_) => {
            let delete = tx.prepare_cached(DELETE).await?;
            tx.execute(&delete, &[id]).await.map(|_| ())
        }
    }
}

async fn write(
    tx: &Tx<'_>,
    applied: &Applied,
    group: &GroupCreated,
    created: bool,
) -> Result<(), tokio_postgres::Error> {
    let upsert = tx.prepare_cached(UPSERT).await?;
    let extension = Value::Object(group.extension.clone());
    tx.execute(
        &upsert,
        &[
            &applied.envelope.aggregate_id,
            &group.name,
            &group.description,
            &group.external_name,
            &extension,
            &acl_admin(&group.extension),
            &acl_virtual_clusters(&group.extension),
            &applied.envelope.meta.occurred_at,
            &(applied.seq as i64),
            &created,
        ],
    )
    .await?;
    Ok(())
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
