//! The cluster's behaviour: controllers that run after every change (and when a pod's
//! ready delay runs out), each making the stored objects converge a step further.
//! They work under the store's lock in one pass, so they never see a half-made change.

pub mod cleanup;
pub mod deployment;
pub mod events;
pub mod kubelet;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::meta;
use crate::resources::{DEPLOYMENTS, PODS};
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
    /// Changes up to this resourceVersion have been handled; 0 before the first pass.
    pub seen_rv: u64,
}

/// Deployments touched by the changes after `since` (a deployment changed, or one of its
/// pods); `None` when every deployment needs a look (first pass, or history gone).
fn touched_since(st: &State, since: u64) -> Option<HashSet<String>> {
    if since == 0 {
        return None;
    }
    let events = st.events_since(since)?;
    let mut touched = HashSet::new();
    for e in events {
        match e.res {
            DEPLOYMENTS => {
                touched.insert(meta::uid(&e.object).to_string());
            }
            PODS => {
                if let Some(uid) = meta::controller_uid(&e.object) {
                    touched.insert(uid.to_string());
                }
            }
            _ => {}
        }
    }
    Some(touched)
}

/// One pass of every controller; returns when the next timed step is due. Deployments
/// are looked at only when they or their pods changed since the last pass, so a pass
/// costs little however many deployments there are.
pub fn pass(st: &mut State, mem: &mut Memory, ready: Duration, now: Instant) -> Option<Instant> {
    let since = mem.seen_rv;
    cleanup::namespaces(st);
    cleanup::evict_from_unready_nodes(st);
    cleanup::collect_garbage(st);
    let touched = touched_since(st, since);
    // What the steps below change is looked at again by the next pass (a pod that became
    // ready may let its deployment remove an old one).
    let cursor = st.rv;
    deployment::reconcile_pods(st, mem, touched.as_ref());
    let next = kubelet::reconcile(st, mem, ready, now);
    let touched = touched_since(st, since);
    deployment::reconcile_status(st, mem, touched.as_ref());
    if mem.hashes.len() > st.count(DEPLOYMENTS) * 2 + 100 {
        let live: HashSet<&str> = st
            .list(DEPLOYMENTS, None)
            .map(|(_, d)| meta::uid(d))
            .collect();
        mem.hashes.retain(|uid, _| live.contains(uid.as_str()));
    }
    if mem.bound_at.len() > st.count(PODS) * 2 + 100 {
        let live: HashSet<&str> = st.list(PODS, None).map(|(_, p)| meta::uid(p)).collect();
        mem.bound_at.retain(|uid, _| live.contains(uid.as_str()));
    }
    mem.seen_rv = cursor;
    next
}

/// The shortest time between two controller passes.
const PASS_INTERVAL: Duration = Duration::from_millis(20);

/// Runs the controllers until `shutdown` turns true.
pub async fn run(store: Arc<Store>, ready: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut mem = Memory::default();
    loop {
        // A bug in a controller must not stop the cluster: log it and go on.
        let next = store.write(|st| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pass(st, &mut mem, ready, Instant::now())
            }))
            .unwrap_or_else(|_| {
                tracing::error!("a controller pass failed");
                Some(Instant::now() + Duration::from_millis(500))
            })
        });
        let wake = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        // A pass looks at every pod; during a burst of API writes, let them gather (the
        // store's kick remembers that something changed) instead of passing after each.
        tokio::select! {
            _ = tokio::time::sleep(PASS_INTERVAL) => {}
            _ = crate::stopped(&mut shutdown) => return,
        }
        tokio::select! {
            _ = store.kick.notified() => {}
            _ = tokio::time::sleep_until(wake) => {}
            _ = crate::stopped(&mut shutdown) => return,
        }
    }
}
