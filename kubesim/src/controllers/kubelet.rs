//! Pod lifecycle: binding a pending pod to a node (see `scheduler`), then, after the
//! ready delay, running it — or, for an image whose name contains `fail`, leaving its
//! container waiting in `ErrImagePull` and then `ImagePullBackOff`.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::Memory;
use crate::meta;
use crate::resources::{NODES, PODS};
use crate::scheduler::{self, NodeRoom};
use crate::store::State;

fn set_condition(
    status: &mut serde_json::Map<String, Value>,
    kind: &str,
    value: bool,
    reason: Option<&str>,
    message: Option<&str>,
    now: &str,
) {
    let value = if value { "True" } else { "False" };
    let list = status.entry("conditions").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    let Some(list) = list.as_array_mut() else {
        return;
    };
    let mut cond =
        json!({"type": kind, "status": value, "lastProbeTime": null, "lastTransitionTime": now});
    if let Some(r) = reason {
        cond["reason"] = json!(r);
    }
    if let Some(m) = message {
        cond["message"] = json!(m);
    }
    match list
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
    {
        Some(c) => {
            if c.get("status").and_then(Value::as_str) == Some(value) {
                cond["lastTransitionTime"] =
                    c.get("lastTransitionTime").cloned().unwrap_or(json!(now));
            }
            *c = cond;
        }
        None => list.push(cond),
    }
}

fn image_fails(pod: &Value) -> Option<String> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(|c| c.get("image").and_then(Value::as_str))
        .find(|i| i.contains("fail"))
        .map(String::from)
}

/// Container statuses in one state (`waiting` with a reason, or `running`).
fn container_statuses(
    pod: &Value,
    running: bool,
    waiting: &str,
    message: &str,
    now: &str,
) -> Value {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let uid = meta::uid(pod);
    Value::Array(
        containers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let image = c.get("image").and_then(Value::as_str).unwrap_or("");
                let mut s = json!({
                    "name": c.get("name").cloned().unwrap_or(json!("")),
                    "image": image,
                    "imageID": "",
                    "ready": running,
                    "restartCount": 0,
                    "started": running,
                    "lastState": {},
                    "state": if running {
                        json!({"running": {"startedAt": now}})
                    } else {
                        let mut w = json!({"reason": waiting});
                        if !message.is_empty() {
                            w["message"] = json!(message);
                        }
                        json!({"waiting": w})
                    },
                });
                if running {
                    let digest: String = uid.chars().filter(|c| c.is_ascii_hexdigit()).collect();
                    s["imageID"] = json!(format!("{image}@sha256:{digest:0<64}"));
                    s["containerID"] = json!(format!("containerd://{digest:0<62}{i:02}"));
                }
                s
            })
            .collect(),
    )
}

/// Advances every pod that can move; returns when a waiting pod is next due.
pub fn reconcile(
    st: &mut State,
    mem: &mut Memory,
    ready: Duration,
    now: Instant,
) -> Option<Instant> {
    let pending: Vec<_> = st
        .list(PODS, None)
        .filter(|(_, p)| !meta::is_deleting(p) && meta::str_at(p, "/status/phase") == "Pending")
        .map(|(_, p)| p.clone())
        .collect();
    if pending.is_empty() {
        return None;
    }
    let mut rooms: Vec<NodeRoom> = scheduler::rooms(
        st.list(NODES, None).map(|(_, n)| &**n),
        st.list(PODS, None).map(|(_, p)| &**p),
    );
    let stamp = meta::now();
    let mut next: Option<Instant> = None;
    let mut due = |t: Instant| {
        next = Some(next.map_or(t, |n: Instant| n.min(t)));
    };
    for pod in pending {
        let mut p = (*pod).clone();
        let uid = meta::uid(&p).to_string();
        if meta::str_at(&p, "/spec/nodeName").is_empty() {
            match scheduler::pick(&mut rooms, &p) {
                Ok(i) => {
                    let room = &rooms[i];
                    mem.next_ip = mem.next_ip.wrapping_add(1);
                    let ip = format!("10.244.{}.{}", i, 2 + mem.next_ip % 250);
                    p["spec"]["nodeName"] = json!(room.name);
                    let status = meta::object_at(&mut p, &["status"]);
                    set_condition(status, "PodScheduled", true, None, None, &stamp);
                    status.insert("hostIP".into(), json!(room.host_ip));
                    status.insert("hostIPs".into(), json!([{"ip": room.host_ip}]));
                    status.insert("podIP".into(), json!(ip));
                    status.insert("podIPs".into(), json!([{"ip": ip}]));
                    status.insert("startTime".into(), json!(stamp));
                    set_condition(
                        status,
                        "PodReadyToStartContainers",
                        true,
                        None,
                        None,
                        &stamp,
                    );
                    set_condition(status, "Initialized", true, None, None, &stamp);
                    set_condition(
                        status,
                        "Ready",
                        false,
                        Some("ContainersNotReady"),
                        Some("containers with unready status"),
                        &stamp,
                    );
                    set_condition(
                        status,
                        "ContainersReady",
                        false,
                        Some("ContainersNotReady"),
                        Some("containers with unready status"),
                        &stamp,
                    );
                    let cs = container_statuses(&pod, false, "ContainerCreating", "", &stamp);
                    meta::object_at(&mut p, &["status"]).insert("containerStatuses".into(), cs);
                    mem.bound_at.insert(uid.clone(), now);
                }
                Err(message) => {
                    let already = p
                        .pointer("/status/conditions")
                        .and_then(Value::as_array)
                        .and_then(|cs| {
                            cs.iter().find(|c| {
                                c.get("type").and_then(Value::as_str) == Some("PodScheduled")
                            })
                        })
                        .is_some_and(|c| {
                            c.get("message").and_then(Value::as_str) == Some(message.as_str())
                        });
                    if !already {
                        let status = meta::object_at(&mut p, &["status"]);
                        set_condition(
                            status,
                            "PodScheduled",
                            false,
                            Some("Unschedulable"),
                            Some(&message),
                            &stamp,
                        );
                        let p = st.replace(PODS, p);
                        super::events::warn(
                            st,
                            &p,
                            "default-scheduler",
                            "FailedScheduling",
                            &message,
                        );
                    }
                    continue;
                }
            }
        }
        // Bound: run it once the ready delay has passed.
        let bound = *mem.bound_at.entry(uid).or_insert(now);
        let elapsed = now.saturating_duration_since(bound);
        if let Some(image) = image_fails(&p) {
            let (reason, message) = if elapsed >= ready * 2 {
                (
                    "ImagePullBackOff",
                    format!("Back-off pulling image \"{image}\""),
                )
            } else if elapsed >= ready {
                due(bound + ready * 2);
                (
                    "ErrImagePull",
                    format!("failed to pull and unpack image \"{image}\": not found"),
                )
            } else {
                due(bound + ready);
                ("ContainerCreating", String::new())
            };
            let cs = container_statuses(&pod, false, reason, &message, &stamp);
            let same = pod
                .pointer("/status/containerStatuses/0/state/waiting/reason")
                .and_then(Value::as_str)
                == Some(reason);
            if !same {
                meta::object_at(&mut p, &["status"]).insert("containerStatuses".into(), cs);
                match reason {
                    "ErrImagePull" => super::events::warn(
                        st,
                        &p,
                        "kubelet",
                        "Failed",
                        &format!("Failed to pull image \"{image}\": not found"),
                    ),
                    "ImagePullBackOff" => {
                        super::events::warn(st, &p, "kubelet", "BackOff", &message)
                    }
                    _ => {}
                }
            }
        } else if elapsed >= ready {
            let status = meta::object_at(&mut p, &["status"]);
            status.insert("phase".into(), json!("Running"));
            set_condition(status, "Ready", true, None, None, &stamp);
            set_condition(status, "ContainersReady", true, None, None, &stamp);
            let cs = container_statuses(&pod, true, "", "", &stamp);
            meta::object_at(&mut p, &["status"]).insert("containerStatuses".into(), cs);
        } else {
            due(bound + ready);
        }
        if p != *pod {
            st.replace(PODS, p);
        }
    }
    next
}
