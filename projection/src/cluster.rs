//! The cluster read models: the nodes (the course door's Kubernetes health check) and the
//! shared datasets (its dataset list, and the check of a launch), as the workers' watchers
//! reported them. The doors answer from here, never from a Kubernetes call per request.

use std::collections::HashMap;

use events::{ClusterEvent, DomainEvent, Event};
use futures::future::BoxFuture;

use crate::{
    DbError, Pool,
    pipeline::{Pipeline, params},
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

// A batch leaves each node and dataset in one state: its rows are written with one upsert
// and one delete per table, whatever the number of events.
const NODES: &str = "
    INSERT INTO nodes (name, ready, address, last_seq)
    SELECT * FROM UNNEST($1::text[], $2::bool[], $3::text[], $4::int8[])
    ON CONFLICT (name) DO UPDATE SET
        ready = EXCLUDED.ready, address = EXCLUDED.address, last_seq = EXCLUDED.last_seq";
const NODES_GONE: &str = "DELETE FROM nodes WHERE name = ANY($1::text[])";
const DATASETS: &str = "
    INSERT INTO datasets (name, claim, last_seq)
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[])
    ON CONFLICT (name) DO UPDATE SET claim = EXCLUDED.claim, last_seq = EXCLUDED.last_seq";
const DATASETS_GONE: &str = "DELETE FROM datasets WHERE name = ANY($1::text[])";

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
            // Each node and dataset as the batch leaves it (`None`: removed).
            let mut nodes: HashMap<&str, Option<(bool, &str, i64)>> = HashMap::new();
            let mut datasets: HashMap<&str, Option<(&str, i64)>> = HashMap::new();
            for applied in events {
                let Event::Cluster(event) = &applied.event else {
                    continue;
                };
                let seq = applied.seq as i64;
                match event {
                    ClusterEvent::NodeObserved(n) => {
                        nodes.insert(&n.name, Some((n.ready, &n.address, seq)));
                    }
                    ClusterEvent::NodeRemoved(n) => {
                        nodes.insert(&n.name, None);
                    }
                    ClusterEvent::DatasetObserved(d) => {
                        datasets.insert(&d.name, Some((&d.claim, seq)));
                    }
                    ClusterEvent::DatasetRemoved(d) => {
                        datasets.insert(&d.name, None);
                    }
                }
            }
            let mut pipeline = Pipeline::new(tx);
            let (mut name, mut ready, mut address, mut last, mut gone) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (node, state) in nodes {
                match state {
                    Some((r, a, seq)) => {
                        name.push(node);
                        ready.push(r);
                        address.push(a);
                        last.push(seq);
                    }
                    None => gone.push(node),
                }
            }
            if !name.is_empty() {
                pipeline
                    .push(NODES, params![name, ready, address, last])
                    .await?;
            }
            if !gone.is_empty() {
                pipeline.push(NODES_GONE, params![gone]).await?;
            }
            let (mut name, mut claim, mut last, mut gone) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (dataset, state) in datasets {
                match state {
                    Some((c, seq)) => {
                        name.push(dataset);
                        claim.push(c);
                        last.push(seq);
                    }
                    None => gone.push(dataset),
                }
            }
            if !name.is_empty() {
                pipeline.push(DATASETS, params![name, claim, last]).await?;
            }
            if !gone.is_empty() {
                pipeline.push(DATASETS_GONE, params![gone]).await?;
            }
            pipeline.run().await
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
