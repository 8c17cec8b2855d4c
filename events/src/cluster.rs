//! Events of the `Cluster` aggregate: what the workers saw of the Kubernetes cluster that
//! the doors answer from (the health check's nodes, the shared datasets), so that no door
//! calls Kubernetes.
//!
//! One aggregate per observed object: its id is [`node_id`] or [`dataset_id`] (Kubernetes
//! names may hold dots, which a subject token cannot), and the event names the object.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::DomainEvent;

const CLUSTER_NAMESPACE: Uuid = Uuid::from_u128(0x3d0e_51a2_9c47_4b6e_8f13_c2a9_7e64_b015);

/// The aggregate id of the node named `name`.
pub fn node_id(name: &str) -> String {
    Uuid::new_v5(&CLUSTER_NAMESPACE, format!("node/{name}").as_bytes()).to_string()
}

/// The aggregate id of the dataset named `name` (its claim without the `dataset-` prefix).
pub fn dataset_id(name: &str) -> String {
    Uuid::new_v5(&CLUSTER_NAMESPACE, format!("dataset/{name}").as_bytes()).to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum ClusterEvent {
    NodeObserved(NodeObserved),
    NodeRemoved(NodeRemoved),
    DatasetObserved(DatasetObserved),
    DatasetRemoved(DatasetRemoved),
}

impl DomainEvent for ClusterEvent {
    const AGGREGATE: &'static str = "cluster";
    const TYPES: &'static [&'static str] = &[
        "NodeObserved",
        "NodeRemoved",
        "DatasetObserved",
        "DatasetRemoved",
    ];
}

/// A node as the cluster shows it now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NodeObserved {
    pub name: String,
    /// Whether its `Ready` condition is `True`.
    pub ready: bool,
    /// Its first `InternalIP` (else `ExternalIP`, else empty): where its NodePorts answer.
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NodeRemoved {
    pub name: String,
}

/// A shared dataset: a PVC named `dataset-<name>` in the jobs namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatasetObserved {
    pub name: String,
    pub claim: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatasetRemoved {
    pub name: String,
}
