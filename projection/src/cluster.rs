//! The cluster read models: the nodes (the course door's Kubernetes health check) and the
//! shared datasets (its dataset list, and the check of a launch), as the workers' watchers
//! reported them. The doors answer from here, never from a Kubernetes call per request.

use events::{ClusterEvent, DomainEvent, Event};
use futures::future::BoxFuture;

use crate::{
    DbError, Pool,
    registry::{Applied, Projection, Tx},
};

pub struct ClusterView;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS nodes (
        name     text PRIMARY KEY,
        ready    boolean NOT NULL,
        address  text NOT NULL,
        last_seq bigint NOT NULL
    );
    CREATE TABLE IF NOT EXISTS datasets (
        name     text PRIMARY KEY,
        claim    text NOT NULL,
        last_seq bigint NOT NULL
    );";

const NODE: &str = "
    INSERT INTO nodes (name, ready, address, last_seq) VALUES ($1, $2, $3, $4)
    ON CONFLICT (name) DO UPDATE SET
        ready = EXCLUDED.ready, address = EXCLUDED.address, last_seq = EXCLUDED.last_seq";
const NODE_GONE: &str = "DELETE FROM nodes WHERE name = $1";
const DATASET: &str = "
    INSERT INTO datasets (name, claim, last_seq) VALUES ($1, $2, $3)
    ON CONFLICT (name) DO UPDATE SET claim = EXCLUDED.claim, last_seq = EXCLUDED.last_seq";
const DATASET_GONE: &str = "DELETE FROM datasets WHERE name = $1";

impl Projection for ClusterView {
    fn name(&self) -> &'static str {
        "cluster_view"
    }

    fn aggregates(&self) -> &'static [&'static str] {
        &[ClusterEvent::AGGREGATE]
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
                let Event::Cluster(event) = &applied.event else {
                    continue;
                };
                let seq = applied.seq as i64;
                match event {
                    ClusterEvent::NodeObserved(n) => {
                        let s = tx.prepare_cached(NODE).await?;
                        tx.execute(&s, &[&n.name, &n.ready, &n.address, &seq])
                            .await?;
                    }
                    ClusterEvent::NodeRemoved(n) => {
                        let s = tx.prepare_cached(NODE_GONE).await?;
                        tx.execute(&s, &[&n.name]).await?;
                    }
                    ClusterEvent::DatasetObserved(d) => {
                        let s = tx.prepare_cached(DATASET).await?;
                        tx.execute(&s, &[&d.name, &d.claim, &seq]).await?;
                    }
                    ClusterEvent::DatasetRemoved(d) => {
                        let s = tx.prepare_cached(DATASET_GONE).await?;
                        tx.execute(&s, &[&d.name]).await?;
                    }
                }
            }
            Ok(())
        })
    }
}

/// A node as the health check shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    pub name: String,
    pub ready: bool,
    pub address: String,
}

/// Every node, by name.
pub async fn node_list(pool: &Pool) -> Result<Vec<NodeRow>, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached("SELECT name, ready, address FROM nodes ORDER BY name")
        .await?;
    Ok(client
        .query(&statement, &[])
        .await?
        .iter()
        .map(|r| NodeRow {
            name: r.get(0),
            ready: r.get(1),
            address: r.get(2),
        })
        .collect())
}

/// Every shared dataset's name (its claim without the `dataset-` prefix), by name.
pub async fn dataset_list(pool: &Pool) -> Result<Vec<String>, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached("SELECT name FROM datasets ORDER BY name")
        .await?;
    Ok(client
        .query(&statement, &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}
