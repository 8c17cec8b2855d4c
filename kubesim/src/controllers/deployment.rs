//! The deployment controller: keeps `replicas` pods of the current template (pods carry
//! a `pod-template-hash` label, as a ReplicaSet's would), rolls old pods over once new
//! ones are ready, and writes a status true to the pods.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::Memory;
use crate::meta;
use crate::ops;
use crate::resources::{DEPLOYMENTS, NAMESPACES, PODS};
use crate::store::State;

/// Pods one deployment may create in one pass.
const MAX_CREATES_PER_PASS: usize = 500;

/// A short, stable hash of a pod template (FNV-1a of its JSON).
fn template_hash(template: &Value) -> String {
    let text = serde_json::to_string(template).unwrap_or_default();
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|i| alphabet[((h >> (i * 6)) % alphabet.len() as u64) as usize] as char)
        .collect()
}

fn hash_of(mem: &mut Memory, dep: &Value) -> String {
    let uid = meta::uid(dep).to_string();
    let generation = dep
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if let Some((g, h)) = mem.hashes.get(&uid)
        && *g == generation
    {
        return h.clone();
    }
    let h = template_hash(dep.pointer("/spec/template").unwrap_or(&Value::Null));
    mem.hashes.insert(uid, (generation, h.clone()));
    h
}

pub fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        })
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        == Some("True")
}

fn pod_hash(pod: &Value) -> &str {
    meta::str_at(pod, "/metadata/labels/pod-template-hash")
}

/// Pods by the uid of their controlling owner, for the owners in `only` (all when `None`).
fn pods_by_owner(st: &State, only: Option<&HashSet<String>>) -> HashMap<String, Vec<Arc<Value>>> {
    let mut map: HashMap<String, Vec<Arc<Value>>> = HashMap::new();
    for (_, pod) in st.list(PODS, None) {
        if let Some(uid) = meta::controller_uid(pod)
            && only.is_none_or(|o| o.contains(uid))
        {
            map.entry(uid.to_string()).or_default().push(pod.clone());
        }
    }
    map
}

/// The deployments in `only` (all when `None`).
fn deployments_in(st: &State, only: Option<&HashSet<String>>) -> Vec<Arc<Value>> {
    st.list(DEPLOYMENTS, None)
        .filter(|(_, d)| only.is_none_or(|o| o.contains(meta::uid(d))))
        .map(|(_, d)| d.clone())
        .collect()
}

fn new_pod(dep: &Value, hash: &str) -> Value {
    let name = meta::name(dep);
    let template = dep.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let mut labels = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert("pod-template-hash".into(), json!(hash));
    let mut metadata = Map::new();
    metadata.insert(
        "name".into(),
        json!(format!("{name}-{hash}-{}", ops::random_suffix())),
    );
    metadata.insert("generateName".into(), json!(format!("{name}-{hash}-")));
    metadata.insert("namespace".into(), json!(meta::namespace(dep)));
    metadata.insert("labels".into(), Value::Object(labels));
    if let Some(a) = template.pointer("/metadata/annotations") {
        metadata.insert("annotations".into(), a.clone());
    }
    metadata.insert(
        "ownerReferences".into(),
        json!([{
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
            "uid": meta::uid(dep),
            "controller": true,
            "blockOwnerDeletion": true,
        }]),
    );
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": template.get("spec").cloned().unwrap_or(json!({})),
    })
}

/// Pods to remove first: not ready before ready, newest before oldest.
fn removal_order(pods: &mut [Arc<Value>]) {
    pods.sort_by(|a, b| {
        pod_ready(a).cmp(&pod_ready(b)).then_with(|| {
            meta::str_at(b, "/metadata/creationTimestamp")
                .cmp(meta::str_at(a, "/metadata/creationTimestamp"))
        })
    });
}

/// Creates and deletes pods so each deployment has `replicas` pods of its template.
/// `only` narrows the work to deployments that changed, or whose pods did.
pub fn reconcile_pods(st: &mut State, mem: &mut Memory, only: Option<&HashSet<String>>) {
    let by_owner = pods_by_owner(st, only);
    for dep in deployments_in(st, only) {
        if meta::is_deleting(&dep) {
            continue;
        }
        let ns = meta::namespace(&dep);
        if st
            .get(NAMESPACES, "", ns)
            .is_none_or(|n| meta::is_deleting(n))
        {
            continue;
        }
        let replicas = dep
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1) as usize;
        let hash = hash_of(mem, &dep);
        let owned = by_owner.get(meta::uid(&dep)).cloned().unwrap_or_default();
        let (mut current, mut old): (Vec<_>, Vec<_>) =
            owned.into_iter().partition(|p| pod_hash(p) == hash);
        if current.len() < replicas {
            // A bounded batch per pass keeps the API responsive while a huge deployment
            // fills up; the next pass creates the rest.
            for _ in current.len()..replicas.min(current.len() + MAX_CREATES_PER_PASS) {
                if let Err(e) = ops::create(st, PODS, new_pod(&dep, &hash), false) {
                    tracing::warn!(deployment = %meta::name(&dep), error = %e.message, "cannot create pod");
                    break;
                }
            }
        } else if current.len() > replicas {
            removal_order(&mut current);
            for pod in &current[..current.len() - replicas] {
                st.remove(PODS, meta::namespace(pod), meta::name(pod));
            }
        }
        // Old pods go as new ones become ready, so availability holds during a rollout.
        let ready_new = current
            .iter()
            .filter(|p| pod_ready(p))
            .count()
            .min(replicas);
        let keep_old = replicas.saturating_sub(ready_new);
        if old.len() > keep_old {
            removal_order(&mut old);
            for pod in &old[..old.len() - keep_old] {
                st.remove(PODS, meta::namespace(pod), meta::name(pod));
            }
        }
    }
}

fn waiting_reason(pod: &Value) -> Option<&str> {
    pod.pointer("/status/containerStatuses")
        .and_then(Value::as_array)?
        .iter()
        .find_map(|s| s.pointer("/state/waiting/reason").and_then(Value::as_str))
}

/// A condition, keeping its transition time when its status did not change.
fn condition(
    old: Option<&Value>,
    kind: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: &str,
) -> Value {
    let status = if status { "True" } else { "False" };
    let old = old.and_then(|o| o.as_array()).and_then(|cs| {
        cs.iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
    });
    let same_status = old.is_some_and(|c| c.get("status").and_then(Value::as_str) == Some(status));
    let same_all = same_status
        && old.is_some_and(|c| {
            c.get("reason").and_then(Value::as_str) == Some(reason)
                && c.get("message").and_then(Value::as_str) == Some(message)
        });
    let keep = |k: &str, same: bool| {
        if same {
            old.and_then(|c| c.get(k)).cloned().unwrap_or(json!(now))
        } else {
            json!(now)
        }
    };
    json!({
        "type": kind,
        "status": status,
        "lastUpdateTime": keep("lastUpdateTime", same_all),
        "lastTransitionTime": keep("lastTransitionTime", same_status),
        "reason": reason,
        "message": message,
    })
}

/// `maxUnavailable` of a rolling update, in pods (25% rounded down by default).
fn max_unavailable(dep: &Value, replicas: usize) -> usize {
    match dep.pointer("/spec/strategy/rollingUpdate/maxUnavailable") {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0) as usize,
        Some(Value::String(s)) if s.ends_with('%') => {
            let pct: usize = s.trim_end_matches('%').parse().unwrap_or(25);
            replicas * pct / 100
        }
        _ if meta::str_at(dep, "/spec/strategy/type") == "Recreate" => replicas,
        _ => replicas / 4,
    }
}

/// Writes each deployment's status from its pods, when it changed.
/// `only` narrows the work to deployments that changed, or whose pods did.
pub fn reconcile_status(st: &mut State, mem: &mut Memory, only: Option<&HashSet<String>>) {
    let by_owner = pods_by_owner(st, only);
    let now = meta::now();
    for dep in deployments_in(st, only) {
        let name = meta::name(&dep);
        let hash = hash_of(mem, &dep);
        let pods = by_owner
            .get(meta::uid(&dep))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let spec_replicas = dep
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1) as usize;
        let total = pods.len();
        let updated = pods.iter().filter(|p| pod_hash(p) == hash).count();
        let ready = pods.iter().filter(|p| pod_ready(p)).count();
        let stuck = pods
            .iter()
            .filter(|p| pod_hash(p) == hash)
            .any(|p| waiting_reason(p) == Some("ImagePullBackOff"));
        let rs = format!("{name}-{hash}");
        let old_conditions = dep.pointer("/status/conditions");
        let available_ok =
            ready >= spec_replicas.saturating_sub(max_unavailable(&dep, spec_replicas));
        let available = if available_ok {
            condition(
                old_conditions,
                "Available",
                true,
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                &now,
            )
        } else {
            condition(
                old_conditions,
                "Available",
                false,
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                &now,
            )
        };
        let complete = updated == spec_replicas && total == spec_replicas && ready >= spec_replicas;
        let progressing = if stuck {
            condition(
                old_conditions,
                "Progressing",
                false,
                "ProgressDeadlineExceeded",
                &format!("ReplicaSet \"{rs}\" has timed out progressing."),
                &now,
            )
        } else if complete {
            condition(
                old_conditions,
                "Progressing",
                true,
                "NewReplicaSetAvailable",
                &format!("ReplicaSet \"{rs}\" has successfully progressed."),
                &now,
            )
        } else {
            condition(
                old_conditions,
                "Progressing",
                true,
                "ReplicaSetUpdated",
                &format!("ReplicaSet \"{rs}\" is progressing."),
                &now,
            )
        };
        let mut status = Map::new();
        status.insert(
            "observedGeneration".into(),
            dep.pointer("/metadata/generation")
                .cloned()
                .unwrap_or(json!(1)),
        );
        // Zero counts are left out, as the API server's omitempty does.
        for (key, n) in [
            ("replicas", total),
            ("updatedReplicas", updated),
            ("readyReplicas", ready),
            ("availableReplicas", ready),
            ("unavailableReplicas", spec_replicas.saturating_sub(ready)),
        ] {
            if n > 0 {
                status.insert(key.into(), json!(n));
            }
        }
        status.insert("conditions".into(), json!([available, progressing]));
        let status = Value::Object(status);
        if dep.get("status") != Some(&status) {
            let mut next = (*dep).clone();
            next["status"] = status;
            st.replace(DEPLOYMENTS, next);
        }
    }
}
