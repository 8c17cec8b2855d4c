//! Workers: make Kubernetes match the events.
//!
//! Each worker is a durable JetStream pull consumer of the events it reacts to, shared by
//! every `gantry work` process of an instance, and a reconciler: it can run twice, or after
//! a crash, and end in the same place (objects are found by label, a missing one is fine).
//! A message is acknowledged only once its effect is done; a failure is retried later.

mod cluster;
mod consumer;
mod course_cleanup;

use async_nats::jetstream;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use cluster::{Cluster, ClusterError};
pub use course_cleanup::COURSE_LABEL;

/// Runs every worker until `stop`. Without a cluster there is nothing to reconcile.
pub async fn run(
    stream: jetstream::stream::Stream,
    instance: String,
    cluster: Option<Cluster>,
    stop: CancellationToken,
) {
    let Some(cluster) = cluster else {
        info!("no Kubernetes cluster configured (KUBECONFIG unset): workers idle");
        return stop.cancelled().await;
    };
    let cleanup = course_cleanup::CourseCleanup::new(cluster);
    consumer::consume(&stream, &instance, &cleanup, stop).await;
}
