//! The job status watcher: turns what the cluster shows of each job's Deployment and pods
//! into reports on the job (`JobReady` with its endpoints, `JobFailed`, `JobPending`), sent
//! through the command path as `system:job_status`.
//!
//! Two kube-runtime watchers (Deployments and pods labelled with a job of this instance)
//! keep a local copy of the objects; after each change the job's state is derived from
//! both ([`observe`]):
//! - `Ready`: the Deployment has a ready replica. Endpoints come from the Service's
//!   NodePorts and the host `GANTRY_JOBS_PUBLIC_HOST`, or else the address of the node the
//!   ready pod runs on.
//! - `Failed`: a container of its pods cannot pull its image (`ErrImagePull`,
//!   `ImagePullBackOff`, `InvalidImageName`), or the Deployment's `Progressing` turned False.
//! - `Pending`: a pod the scheduler left `Unschedulable`, with the scheduler's words.
//!
//! Reports go out [`REPORTS_IN_FLIGHT`] at a time while the watch goes on, one at a time
//! per job: a job touched while its report is under way is derived again once it is done,
//! so its reports reach the log in order. A node's address is looked up once a minute at
//! most.
//!
//! Watch errors (the API server away) are retried by the watchers' default back-off (a
//! watcher stream without one would spin or end on the first error); after a relist the
//! whole state is derived again. A report the log could not take is tried again by the
//! next change or, at the latest, by the pass every [`REEVALUATE_EVERY`]. The last report of
//! each job is remembered, so an unchanged job costs no command; a repeated one changes
//! nothing anyway, since the aggregate records only changes.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    time::{Duration, Instant},
};

use command::job::JobCommand;
use futures::{StreamExt, stream, stream::FuturesUnordered};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Node, Pod, Service},
};
use kube::{
    Api, Resource,
    runtime::{WatchStreamExt, watcher},
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::{
    job_objects::{self, JOB_LABEL, endpoint_label, object_name},
    reconciler::{Context, report},
};

/// Names the watcher in logs, metrics and the actor of its reports.
pub const NAME: &str = "job_status";
/// How often every job is derived again, so that a report lost to an outage is sent anyway.
const REEVALUATE_EVERY: Duration = Duration::from_secs(10);

/// What the cluster shows of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Ready, its pod on this node.
    Ready {
        node: Option<String>,
    },
    Failed(String),
    Pending(String),
}

/// A change of one of the watched kinds.
enum Change {
    Deployment(Box<watcher::Event<Deployment>>),
    Pod(Box<watcher::Event<Pod>>),
    Tick,
}

/// Pods by job, then by name.
type PodsByJob = HashMap<String, HashMap<String, Pod>>;

/// The local copy of the watched objects.
#[derive(Default)]
struct Seen {
    deployments: HashMap<String, Deployment>,
    pods: PodsByJob,
    deployments_relisted: Option<HashMap<String, Deployment>>,
    pods_relisted: Option<PodsByJob>,
    /// The last report that the log took, per job.
    reported: HashMap<String, Observed>,
}

/// Reports sent at once, each of another job (one job's reports go one after the other, so
/// that they reach the log in the order they were seen).
const REPORTS_IN_FLIGHT: usize = 32;
/// How long a node's address is taken as known: nodes keep their addresses for their life,
/// and a pod's node is looked up once per report otherwise.
const NODE_ADDRESS_TTL: Duration = Duration::from_secs(60);

fn job_of<K: Resource>(object: &K) -> Option<String> {
    object.meta().labels.as_ref()?.get(JOB_LABEL).cloned()
}

fn name_of<K: Resource>(object: &K) -> String {
    object.meta().name.clone().unwrap_or_default()
}

/// Runs until `stop`.
pub async fn watch(ctx: Context, stop: CancellationToken) {
    let selector = job_objects::instance_jobs_selector(&ctx.instance);
    let config = watcher::Config::default().labels(&selector);
    let namespace = ctx.cluster.namespace.clone();
    let deployments = watcher(
        Api::<Deployment>::namespaced(ctx.cluster.client.clone(), &namespace),
        config.clone(),
    )
    .default_backoff()
    .map(|e| e.map(|e| Change::Deployment(Box::new(e))));
    let pods = watcher(
        Api::<Pod>::namespaced(ctx.cluster.client.clone(), &namespace),
        config,
    )
    .default_backoff()
    .map(|e| e.map(|e| Change::Pod(Box::new(e))));
    let ticks = stream::unfold((), |()| async {
        tokio::time::sleep(REEVALUATE_EVERY).await;
        Some((Ok(Change::Tick), ()))
    });
    let mut changes = stream::select(stream::select(deployments, pods), ticks).boxed();
    let mut seen = Seen::default();
    let mut reports = Reports::default();
    let nodes = NodeAddresses::default();
    let mut running = FuturesUnordered::new();
    let send = |job: String, observed: Observed| {
        let nodes = &nodes;
        let ctx = &ctx;
        async move {
            let taken = send_report(ctx, nodes, &job, &observed).await;
            (job, observed, taken)
        }
    };
    info!(worker = NAME, "watching the jobs' deployments and pods");
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            next = changes.next() => match next {
                Some(Ok(change)) => {
                    for job in seen.apply(change) {
                        reports.touch(job);
                    }
                }
                Some(Err(e)) => warn!(worker = NAME, error = %e, "watch failed; retrying"),
                None => return,
            },
            Some((job, observed, taken)) = running.next(), if !running.is_empty() => {
                let (job, observed, taken): (String, Observed, bool) = (job, observed, taken);
                reports.busy.remove(&job);
                if taken {
                    seen.reported.insert(job, observed);
                }
            }
        }
        while let Some(job) = reports.next(running.len()) {
            if let Some(observed) = seen.to_report(&job) {
                reports.busy.insert(job.clone());
                running.push(send(job, observed));
            }
        }
    }
}

impl Seen {
    /// Takes in a change; returns the jobs to derive again.
    fn apply(&mut self, change: Change) -> Vec<String> {
        match change {
            Change::Deployment(event) => match *event {
                watcher::Event::Apply(d) => self.put_deployment(d),
                watcher::Event::Delete(d) => {
                    let job = job_of(&d);
                    if let Some(job) = &job {
                        self.deployments.remove(job);
                        self.reported.remove(job);
                    }
                    Vec::new()
                }
                watcher::Event::Init => {
                    self.deployments_relisted = Some(HashMap::new());
                    Vec::new()
                }
                watcher::Event::InitApply(d) => {
                    if let (Some(list), Some(job)) = (&mut self.deployments_relisted, job_of(&d)) {
                        list.insert(job, d);
                    }
                    Vec::new()
                }
                watcher::Event::InitDone => {
                    if let Some(list) = self.deployments_relisted.take() {
                        self.deployments = list;
                    }
                    self.all_jobs()
                }
            },
            Change::Pod(event) => match *event {
                watcher::Event::Apply(p) => {
                    let Some(job) = job_of(&p) else {
                        return Vec::new();
                    };
                    self.pods
                        .entry(job.clone())
                        .or_default()
                        .insert(name_of(&p), p);
                    vec![job]
                }
                watcher::Event::Delete(p) => {
                    let Some(job) = job_of(&p) else {
                        return Vec::new();
                    };
                    if let Some(pods) = self.pods.get_mut(&job) {
                        pods.remove(&name_of(&p));
                        if pods.is_empty() {
                            self.pods.remove(&job);
                        }
                    }
                    vec![job]
                }
                watcher::Event::Init => {
                    self.pods_relisted = Some(HashMap::new());
                    Vec::new()
                }
                watcher::Event::InitApply(p) => {
                    if let (Some(list), Some(job)) = (&mut self.pods_relisted, job_of(&p)) {
                        list.entry(job).or_default().insert(name_of(&p), p);
                    }
                    Vec::new()
                }
                watcher::Event::InitDone => {
                    if let Some(list) = self.pods_relisted.take() {
                        self.pods = list;
                    }
                    self.all_jobs()
                }
            },
            Change::Tick => self.all_jobs(),
        }
    }

    fn put_deployment(&mut self, d: Deployment) -> Vec<String> {
        match job_of(&d) {
            Some(job) => {
                self.deployments.insert(job.clone(), d);
                vec![job]
            }
            None => Vec::new(),
        }
    }

    fn all_jobs(&self) -> Vec<String> {
        self.deployments.keys().cloned().collect()
    }

    /// The job's state as derived now, if it is worth a report: known, and not the one the
    /// log last took.
    fn to_report(&self, job: &str) -> Option<Observed> {
        let deployment = self.deployments.get(job)?;
        let pods: Vec<&Pod> = self
            .pods
            .get(job)
            .map(|pods| pods.values().collect())
            .unwrap_or_default();
        let observed = observe(deployment, &pods)?;
        (self.reported.get(job) != Some(&observed)).then_some(observed)
    }
}

/// The reports under way, and the jobs touched meanwhile.
#[derive(Default)]
struct Reports {
    /// Jobs with a report in flight.
    busy: HashSet<String>,
    /// Jobs to derive again once there is room, or once their report in flight is done.
    queued: VecDeque<String>,
    is_queued: HashSet<String>,
}

impl Reports {
    fn touch(&mut self, job: String) {
        if self.is_queued.insert(job.clone()) {
            self.queued.push_back(job);
        }
    }

    /// The next queued job that has no report in flight, if there is room for one.
    fn next(&mut self, in_flight: usize) -> Option<String> {
        if in_flight >= REPORTS_IN_FLIGHT {
            return None;
        }
        let at = self
            .queued
            .iter()
            .position(|job| !self.busy.contains(job))?;
        let job = self.queued.remove(at)?;
        self.is_queued.remove(&job);
        Some(job)
    }
}

/// Node addresses already looked up, with when.
#[derive(Default)]
struct NodeAddresses(std::sync::Mutex<HashMap<String, (String, Instant)>>);

impl NodeAddresses {
    async fn get(&self, ctx: &Context, node: &str) -> Result<String, kube::Error> {
        let known = self
            .0
            .lock()
            .ok()
            .and_then(|known| known.get(node).cloned())
            .filter(|(_, at)| at.elapsed() < NODE_ADDRESS_TTL);
        if let Some((address, _)) = known {
            return Ok(address);
        }
        let address = node_address(ctx, node).await?;
        if let Ok(mut known) = self.0.lock() {
            known.insert(node.to_string(), (address.clone(), Instant::now()));
        }
        Ok(address)
    }
}

/// Sends the report of `observed` for `job`; true when the log took it (or refused it for
/// good: the job is gone or not ours), so that it need not be sent again.
async fn send_report(ctx: &Context, nodes: &NodeAddresses, job: &str, observed: &Observed) -> bool {
    let command = match observed {
        Observed::Ready { node } => match endpoints(ctx, nodes, job, node.as_deref()).await {
            Ok(endpoints) => JobCommand::MarkReady { endpoints },
            Err(e) => {
                warn!(worker = NAME, job, error = %e, "cannot read the job's endpoints yet");
                return false;
            }
        },
        Observed::Failed(reason) => JobCommand::Fail {
            reason: reason.clone(),
        },
        Observed::Pending(reason) => JobCommand::Wait {
            reason: reason.clone(),
        },
    };
    match report(&ctx.jobs, NAME, job, &command, None).await {
        Ok(Ok(outcome)) => {
            debug!(
                worker = NAME,
                job,
                ?observed,
                appended = outcome.appended,
                "reported"
            );
            true
        }
        // The job is gone (or not ours): nothing more to say of it.
        Ok(Err(refused)) => {
            debug!(worker = NAME, job, %refused, "report refused");
            true
        }
        Err(e) => {
            warn!(worker = NAME, job, error = %e.describe(), "cannot report; will try again");
            false
        }
    }
}

/// Waiting reasons of a container that say its image cannot be had.
const IMAGE_FAILURES: &[&str] = &["ErrImagePull", "ImagePullBackOff", "InvalidImageName"];

/// What the Deployment and its pods say of a job, if anything worth a report.
pub fn observe(deployment: &Deployment, pods: &[&Pod]) -> Option<Observed> {
    let status = deployment.status.as_ref();
    if status.and_then(|s| s.ready_replicas).unwrap_or(0) >= 1 {
        // The pods arrive on a watch of their own: until the ready pod is seen, its node
        // (the endpoints' host) is not known, and nothing is said yet.
        let node = pods
            .iter()
            .find(|p| pod_ready(p))
            .and_then(|p| p.spec.as_ref()?.node_name.clone())?;
        return Some(Observed::Ready { node: Some(node) });
    }
    for pod in pods {
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        for container in statuses.into_iter().flatten() {
            let waiting = container.state.as_ref().and_then(|s| s.waiting.as_ref());
            if waiting
                .and_then(|w| w.reason.as_deref())
                .is_some_and(|r| IMAGE_FAILURES.contains(&r))
            {
                return Some(Observed::Failed(format!(
                    "image pull failure: the cluster cannot pull the image {}",
                    container.image
                )));
            }
        }
    }
    let stuck = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Progressing" && c.status == "False");
    if let Some(stuck) = stuck {
        return Some(Observed::Failed(format!(
            "the deployment made no progress: {}",
            stuck.message.clone().unwrap_or_default()
        )));
    }
    for pod in pods {
        let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
        if let Some(c) = conditions.into_iter().flatten().find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        }) {
            return Some(Observed::Pending(format!(
                "unschedulable: {}",
                c.message.clone().unwrap_or_default()
            )));
        }
    }
    None
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// The job's endpoints: each NodePort of its Service at the public host, or else at the
/// address of `node`.
async fn endpoints(
    ctx: &Context,
    nodes: &NodeAddresses,
    job: &str,
    node: Option<&str>,
) -> Result<Vec<(String, String)>, kube::Error> {
    let service = Api::<Service>::namespaced(ctx.cluster.client.clone(), &ctx.cluster.namespace)
        .get(&object_name(job))
        .await?;
    let host = match (&ctx.cluster.public_host, node) {
        (Some(host), _) => host.clone(),
        (None, Some(node)) => nodes.get(ctx, node).await?,
        (None, None) => String::from("localhost"),
    };
    Ok(service
        .spec
        .and_then(|s| s.ports)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let node_port = p.node_port?;
            Some((endpoint_label(p.port), format!("http://{host}:{node_port}")))
        })
        .collect())
}

/// A node's `InternalIP` (else `ExternalIP`, else its name).
pub async fn node_address(ctx: &Context, node: &str) -> Result<String, kube::Error> {
    let node = Api::<Node>::all(ctx.cluster.client.clone())
        .get(node)
        .await?;
    Ok(address(&node))
}

/// A node's `InternalIP`, else `ExternalIP`, else its name.
pub fn address(node: &Node) -> String {
    let addresses = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .cloned()
        .unwrap_or_default();
    ["InternalIP", "ExternalIP"]
        .iter()
        .find_map(|kind| addresses.iter().find(|a| a.type_ == *kind))
        .map(|a| a.address.clone())
        .unwrap_or_else(|| name_of(node))
}
