//! The `Cluster` aggregate: one object of the Kubernetes cluster as the workers saw it last
//! (a node or a shared dataset; ids from `events::cluster::node_id` / `dataset_id`).
//!
//! Watchers report every object they see, again after each restart and relist; only a
//! change is recorded, so the log grows with the cluster's changes, not with the watches.

use events::cluster::{ClusterEvent, DatasetObserved, DatasetRemoved, NodeObserved, NodeRemoved};
use serde::Serialize;

use crate::{Aggregate, DomainError};

/// The last event of the object: what the cluster showed of it, or that it went.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct ClusterObject {
    pub last: Option<ClusterEvent>,
}

impl ClusterObject {
    /// Whether the object is in the cluster, as last seen.
    pub fn is_present(&self) -> bool {
        matches!(
            self.last,
            Some(ClusterEvent::NodeObserved(_) | ClusterEvent::DatasetObserved(_))
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ClusterCommand {
    ObserveNode {
        name: String,
        ready: bool,
        address: String,
    },
    RemoveNode {
        name: String,
    },
    ObserveDataset {
        name: String,
        claim: String,
    },
    RemoveDataset {
        name: String,
    },
}

impl Aggregate for ClusterObject {
    type Command = ClusterCommand;
    type Event = ClusterEvent;

    fn evolve(&mut self, event: &ClusterEvent) {
        self.last = Some(event.clone());
    }

    fn decide(&self, command: &ClusterCommand) -> Result<Option<ClusterEvent>, DomainError> {
        let event = match command {
            ClusterCommand::ObserveNode {
                name,
                ready,
                address,
            } => ClusterEvent::NodeObserved(NodeObserved {
                name: name.clone(),
                ready: *ready,
                address: address.clone(),
            }),
            ClusterCommand::ObserveDataset { name, claim } => {
                ClusterEvent::DatasetObserved(DatasetObserved {
                    name: name.clone(),
                    claim: claim.clone(),
                })
            }
            ClusterCommand::RemoveNode { name } if self.is_present() => {
                ClusterEvent::NodeRemoved(NodeRemoved { name: name.clone() })
            }
            ClusterCommand::RemoveDataset { name } if self.is_present() => {
                ClusterEvent::DatasetRemoved(DatasetRemoved { name: name.clone() })
            }
            ClusterCommand::RemoveNode { .. } | ClusterCommand::RemoveDataset { .. } => {
                return Ok(None);
            }
        };
        Ok((self.last.as_ref() != Some(&event)).then_some(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_are_recorded() {
        let mut node = ClusterObject::default();
        let observe = |ready| ClusterCommand::ObserveNode {
            name: "gpu-node-1".into(),
            ready,
            address: "10.0.0.1".into(),
        };
        let seen = node.decide(&observe(true)).unwrap().unwrap();
        node.evolve(&seen);
        assert_eq!(node.decide(&observe(true)), Ok(None));
        assert!(node.decide(&observe(false)).unwrap().is_some());
        let remove = ClusterCommand::RemoveNode {
            name: "gpu-node-1".into(),
        };
        let gone = node.decide(&remove).unwrap().unwrap();
        node.evolve(&gone);
        assert!(!node.is_present());
        assert_eq!(node.decide(&remove), Ok(None));
        assert_eq!(
            ClusterObject::default().decide(&ClusterCommand::RemoveDataset {
                name: "mnist".into()
            }),
            Ok(None)
        );
    }
}
