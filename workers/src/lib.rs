//! Workers: make Kubernetes match the events.
//!
//! A worker is a durable JetStream pull consumer of one aggregate's events, shared by every
//! `gantry work` process of an instance, and a list of [`Reconciler`]s each event goes to.
//! A reconciler is idempotent: it can run twice, or after a crash half-way, and end in the
//! same place (objects are found by label, a missing one is fine). Objects are selected by
//! both [`COURSE_LABEL`] and [`INSTANCE_LABEL`]: another instance's objects in a shared
//! cluster are never touched.
//!
//! Error policy ([`error_policy`], one for every worker). A reconcile returns a typed
//! [`Error`]:
//! - transient (the cluster unreachable, a timeout, HTTP 5xx, 409 Conflict, 429, the log or
//!   the database away): wait with capped exponential back-off (200 ms doubling to 30 s,
//!   jittered) and try again in-process, for as long as it takes, logging each retry at
//!   warn. Meanwhile the message is kept with in-progress acks (every third of its ack wait),
//!   so it is neither redelivered nor counted; it is never nak'ed nor terminated for this.
//! - permanent (any other 4xx, an event a reconciler rejects): logged at error, recorded in
//!   the parked-events record with the reason, and acknowledged.
//! - a message that is not an envelope or whose event cannot be decoded is parked the same
//!   way and terminated. Parking waits out a database that is away: no event is let go
//!   before its record is stored.
//!
//! A worker has up to 32 messages in hand at once, of different aggregates (one aggregate's
//! messages are settled in order, a later one kept with in-progress acks while it waits),
//! and pulls no more than it has room for, so that none waits in a client buffer past its
//! ack wait while another is being retried. Stop interrupts a back-off wait, never a reconcile
//! in flight; a message not done by then is left unacknowledged for the next process.
//!
//! Resync: at start and every five minutes, each reconciler compares the live objects it
//! owns with the log and fixes what differs (level-triggered), so nothing depends on a
//! delivery having happened: the objects of a course deleted while no worker ran still go.
//!
//! Besides the consumers of events, watchers turn what the cluster shows into events
//! through the same command path ([`job_status`]: a job's Deployment and pods into
//! `JobReady` / `JobFailed` / `JobPending`; `cluster_watch`: nodes and dataset claims into
//! `NodeObserved` / `DatasetObserved` and their removals). Every report of a worker is
//! a command of actor `system:<worker name>`, decided by its aggregate like any other.
//!
//! Jobs ([`JobReconciler`], [`job_objects`]): the course's jobs go with the course in one
//! place, [`CourseCleanup`]: on `CourseDeleted` it deletes each live job of the course
//! through the command path (`JobDeleted`, so they leave the job list), and removes any
//! object still labelled with the course; the job reconciler removes each deleted job's
//! objects by name.

mod cluster;
mod cluster_watch;
mod consumer;
mod course_cleanup;
mod error;
pub mod job_objects;
pub mod job_status;
mod jobs;
mod log_scan;
mod parking;
mod reconciler;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::info;

pub use cluster::{Cluster, ClusterError};
pub use consumer::Worker;
pub use course_cleanup::{COURSE_LABEL, CourseCleanup, INSTANCE_LABEL, course_selector};
pub use error::Error;
pub use jobs::JobReconciler;
pub use parking::{Parked, ParkingLot};
pub use reconciler::{
    Action, Backoff, Context, Decision, Incoming, Reconciler, Resynced, error_policy, report,
};

/// Every worker of an instance.
pub fn workers() -> Vec<Worker> {
    vec![
        Worker {
            name: CourseCleanup::NAME,
            aggregate: CourseCleanup::AGGREGATE,
            reconcilers: vec![Box::new(CourseCleanup)],
        },
        Worker {
            name: JobReconciler::NAME,
            aggregate: JobReconciler::AGGREGATE,
            reconcilers: vec![Box::new(JobReconciler)],
        },
    ]
}

/// Runs every worker until `stop`. Without a cluster there is nothing to reconcile.
pub async fn run(
    log: command::JetStreamStore,
    cluster: Option<Cluster>,
    parking: Arc<dyn ParkingLot>,
    stop: CancellationToken,
) {
    let Some(cluster) = cluster else {
        info!("no Kubernetes cluster configured (KUBECONFIG unset): workers idle");
        return stop.cancelled().await;
    };
    let ctx = Context::new(cluster, log);
    let workers = workers();
    tokio::join!(
        futures::future::join_all(workers.iter().map(|worker| worker.run(
            &ctx,
            parking.as_ref(),
            &stop
        )),),
        job_status::watch(ctx.clone(), stop.clone()),
        cluster_watch::watch(ctx.clone(), stop.clone()),
    );
}
