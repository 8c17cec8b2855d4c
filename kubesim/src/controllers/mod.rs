//! The cluster's behaviour: controllers that run after every change (and when a pod's
//! ready delay runs out), each making the stored objects converge a step further.
//! They work under the store's lock in one pass, so they never see a half-made change.

pub mod cleanup;
pub mod deployment;
pub mod kubelet;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::store::{State, Store};

/// What the controllers remember between passes (not persisted: rebuilt after a restart).
#[derive(Debug, Default)]
pub struct Memory {
    /// When each pod (by uid) was bound to its node, for the ready delay.
    pub bound_at: HashMap<String, Instant>,
    /// Template hash per deployment uid and generation.
    pub hashes: HashMap<String, (i64, String)>,
    /// Next pod IP suffix.
    pub next_ip: u32,
}

/// One pass of every controller; returns when the next timed step is due.
pub fn pass(st: &mut State, mem: &mut Memory, ready: Duration, now: Instant) -> Option<Instant> {
    cleanup::namespaces(st);
    cleanup::evict_from_unready_nodes(st);
    cleanup::collect_garbage(st);
    deployment::reconcile_pods(st, mem);
    let next = kubelet::reconcile(st, mem, ready, now);
    deployment::reconcile_status(st, mem);
    mem.bound_at
        .retain(|_, t| now.duration_since(*t) < ready * 4 + Duration::from_secs(600));
    next
}

/// Runs the controllers until `shutdown` turns true.
pub async fn run(store: Arc<Store>, ready: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut mem = Memory::default();
    loop {
        let next = store.write(|st| pass(st, &mut mem, ready, Instant::now()));
        let wake = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = store.kick.notified() => {}
            _ = tokio::time::sleep_until(wake) => {}
            _ = crate::stopped(&mut shutdown) => return,
        }
    }
}
