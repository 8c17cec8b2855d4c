//! The cluster watcher: keeps the log (and so the read models the course door answers
//! from) told of the nodes and of the shared datasets (claims named `dataset-<name>` in
//! the jobs namespace), as `system:cluster_watch`.
//!
//! Each watcher relists at start and after every lost watch: the listed objects are
//! reported, and every object the log still holds but the list lacks is reported removed,
//! so what went while no worker watched goes from the read models too. Reports are
//! decided by the `Cluster` aggregate, which records only changes: two workers, or a
//! restart, add nothing. A report the log could not take is retried at the next relist;
//! the relist is forced every [`RELIST_EVERY`] for that reason.

use std::{collections::HashMap, time::Duration};

use command::cluster::{ClusterCommand, ClusterObject};
use events::{
    ClusterEvent,
    cluster::{dataset_id, node_id},
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim};
use kube::{
    Api, Resource,
    runtime::{WatchStreamExt, watcher},
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    job_status::address,
    log_scan,
    reconciler::{Context, report},
};

pub const NAME: &str = "cluster_watch";
/// The prefix of the claims that are shared datasets.
pub const DATASET_PREFIX: &str = "dataset-";
/// How long a watch lasts before it is listed afresh.
const RELIST_EVERY: Duration = Duration::from_secs(120);

/// One observed object, as a command of the `Cluster` aggregate and its id.
type Observation = (String, ClusterCommand);

trait Watched: Resource + Clone + std::fmt::Debug + Send + Sync + 'static {
    fn observe(&self) -> Option<Observation>;
    fn removal(last: &ClusterEvent) -> Option<Observation>;
}

impl Watched for Node {
    fn observe(&self) -> Option<Observation> {
        let name = self.meta().name.clone()?;
        let ready = self
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        Some((
            node_id(&name),
            ClusterCommand::ObserveNode {
                address: address(self),
                name,
                ready,
            },
        ))
    }

    fn removal(last: &ClusterEvent) -> Option<Observation> {
        match last {
            ClusterEvent::NodeObserved(n) => Some((
                node_id(&n.name),
                ClusterCommand::RemoveNode {
                    name: n.name.clone(),
                },
            )),
            _ => None,
        }
    }
}

impl Watched for PersistentVolumeClaim {
    fn observe(&self) -> Option<Observation> {
        let claim = self.meta().name.clone()?;
        let name = claim.strip_prefix(DATASET_PREFIX)?.to_string();
        if name.is_empty() || self.meta().deletion_timestamp.is_some() {
            return None;
        }
        Some((
            dataset_id(&name),
            ClusterCommand::ObserveDataset { name, claim },
        ))
    }

    fn removal(last: &ClusterEvent) -> Option<Observation> {
        match last {
            ClusterEvent::DatasetObserved(d) => Some((
                dataset_id(&d.name),
                ClusterCommand::RemoveDataset {
                    name: d.name.clone(),
                },
            )),
            _ => None,
        }
    }
}

/// Runs until `stop`.
pub async fn watch(ctx: Context, stop: CancellationToken) {
    let nodes = Api::<Node>::all(ctx.cluster.client.clone());
    let claims = Api::<PersistentVolumeClaim>::namespaced(
        ctx.cluster.client.clone(),
        &ctx.cluster.namespace,
    );
    info!(worker = NAME, "watching nodes and dataset claims");
    tokio::join!(follow(&ctx, nodes, &stop), follow(&ctx, claims, &stop));
}

async fn follow<K>(ctx: &Context, api: Api<K>, stop: &CancellationToken)
where
    K: Watched + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    loop {
        let config = watcher::Config::default().timeout(RELIST_EVERY.as_secs() as u32);
        let mut events = watcher(api.clone(), config).default_backoff().boxed();
        let mut listed: Option<HashMap<String, ClusterCommand>> = None;
        // A fresh watcher relists at once; it is replaced after a while so that a report
        // lost to an outage of the log is made again.
        let until = tokio::time::sleep(RELIST_EVERY * 2);
        tokio::pin!(until);
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => return,
                _ = &mut until => break,
                next = events.next() => match next {
                    Some(Ok(event)) => event,
                    Some(Err(e)) => {
                        warn!(worker = NAME, error = %e, "watch failed; retrying");
                        continue;
                    }
                    None => break,
                },
            };
            match event {
                watcher::Event::Init => listed = Some(HashMap::new()),
                watcher::Event::InitApply(object) => {
                    if let (Some(list), Some((id, command))) = (&mut listed, object.observe()) {
                        list.insert(id, command);
                    }
                }
                watcher::Event::InitDone => {
                    if let Some(list) = listed.take() {
                        relisted::<K>(ctx, list).await;
                    }
                }
                watcher::Event::Apply(object) => {
                    if let Some((id, command)) = object.observe() {
                        send(ctx, &id, &command).await;
                    }
                }
                watcher::Event::Delete(object) => {
                    let removal = object.observe().and_then(|(id, command)| match command {
                        ClusterCommand::ObserveNode { name, .. } => {
                            Some((id, ClusterCommand::RemoveNode { name }))
                        }
                        ClusterCommand::ObserveDataset { name, .. } => {
                            Some((id, ClusterCommand::RemoveDataset { name }))
                        }
                        _ => None,
                    });
                    if let Some((id, command)) = removal {
                        send(ctx, &id, &command).await;
                    }
                }
            }
        }
    }
}

/// Reports every listed object, and the removal of every object of this kind the log
/// holds that the list lacks.
async fn relisted<K: Watched>(ctx: &Context, listed: HashMap<String, ClusterCommand>) {
    for (id, command) in &listed {
        send(ctx, id, command).await;
    }
    let known = match log_scan::read_all::<ClusterObject>(ctx).await {
        Ok(known) => known,
        Err(e) => {
            warn!(worker = NAME, error = %e.describe(), "cannot read the observed objects; removals wait for the next relist");
            return;
        }
    };
    for object in known.values() {
        let Some((id, command)) = object.last.as_ref().and_then(K::removal) else {
            continue;
        };
        if !listed.contains_key(&id) {
            send(ctx, &id, &command).await;
        }
    }
}

async fn send(ctx: &Context, id: &str, command: &ClusterCommand) {
    match report(&ctx.cluster_objects, NAME, id, command, None).await {
        Ok(Ok(_)) => {}
        Ok(Err(refused)) => warn!(worker = NAME, id, %refused, "observation refused"),
        Err(e) => warn!(worker = NAME, id, error = %e.describe(), "cannot report an observation"),
    }
}
