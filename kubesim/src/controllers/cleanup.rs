//! Removal: namespaces that terminate, pods whose owner is gone (garbage collection and
//! foreground deletion), and pods on nodes that stopped being Ready (eviction).

use std::collections::HashSet;

use serde_json::Value;

use crate::meta;
use crate::ops;
use crate::resources::{DEPLOYMENTS, NAMESPACES, NODES, PODS, RESOURCES};
use crate::scheduler;
use crate::store::State;

/// Empties terminating namespaces, then removes them once empty.
pub fn namespaces(st: &mut State) {
    let terminating: Vec<String> = st
        .list(NAMESPACES, None)
        .filter(|(_, ns)| meta::is_deleting(ns))
        .map(|(k, _)| k.1.clone())
        .collect();
    for ns in terminating {
        let mut left = 0;
        for res in (0..RESOURCES.len()).filter(|r| RESOURCES[*r].namespaced) {
            let names: Vec<String> = st.list(res, Some(&ns)).map(|(k, _)| k.1.clone()).collect();
            left += names.len();
            for name in names {
                st.remove(res, &ns, &name);
            }
        }
        if left == 0 {
            st.remove(NAMESPACES, "", &ns);
        }
    }
}

/// Deletes the pods of nodes whose Ready condition is not True (and of nodes that are
/// gone), so their owners recreate them elsewhere.
pub fn evict_from_unready_nodes(st: &mut State) {
    let ready: HashSet<String> = st
        .list(NODES, None)
        .filter(|(_, n)| scheduler::node_ready(n))
        .map(|(k, _)| k.1.clone())
        .collect();
    let doomed: Vec<(String, String)> = st
        .list(PODS, None)
        .filter(|(_, p)| {
            let node = meta::str_at(p, "/spec/nodeName");
            !node.is_empty() && !ready.contains(node)
        })
        .map(|(k, _)| k.clone())
        .collect();
    for (ns, name) in doomed {
        tracing::info!(pod = %name, namespace = %ns, "evicting pod from a NotReady or missing node");
        st.remove(PODS, &ns, &name);
    }
}

/// Deletes pods whose controlling deployment is gone, and finishes foreground deletions.
pub fn collect_garbage(st: &mut State) {
    let orphans: Vec<(String, String)> = {
        let owners: HashSet<&str> = st
            .list(DEPLOYMENTS, None)
            .map(|(_, d)| meta::uid(d))
            .collect();
        st.list(PODS, None)
            .filter(|(_, p)| {
                p.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| {
                        refs.iter().any(|r| {
                            r.get("kind").and_then(Value::as_str) == Some("Deployment")
                                && !owners
                                    .contains(r.get("uid").and_then(Value::as_str).unwrap_or(""))
                        })
                    })
            })
            .map(|(k, _)| k.clone())
            .collect()
    };
    for (ns, name) in orphans {
        st.remove(PODS, &ns, &name);
    }
    let foreground: Vec<Value> = st
        .list(DEPLOYMENTS, None)
        .filter(|(_, d)| {
            meta::is_deleting(d)
                && d.pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| f.iter().any(|f| f == "foregroundDeletion"))
        })
        .map(|(_, d)| (**d).clone())
        .collect();
    for dep in foreground {
        let uid = meta::uid(&dep).to_string();
        let pods: Vec<(String, String)> = st
            .list(PODS, Some(meta::namespace(&dep)))
            .filter(|(_, p)| meta::controller_uid(p) == Some(uid.as_str()))
            .map(|(k, _)| k.clone())
            .collect();
        if pods.is_empty() {
            ops::drop_finalizer(st, DEPLOYMENTS, &dep, "foregroundDeletion");
        } else {
            for (ns, name) in pods {
                st.remove(PODS, &ns, &name);
            }
        }
    }
}
