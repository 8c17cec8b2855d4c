//! Workers: make the world (Kubernetes) match the events.

use tokio_util::sync::CancellationToken;

/// Runs every worker until `stop`.
pub async fn run(stop: CancellationToken) {
    stop.cancelled().await;
}
