//! Picks a node for a pod: a Ready, schedulable node whose labels match the pod's
//! `nodeSelector` and whose free cpu, memory and GPUs cover the pod's requests; among
//! those, the least allocated one (as the default scheduler's scoring prefers).

use std::collections::HashMap;

use serde_json::Value;

use crate::meta;
use crate::quantity::{self, Request};

/// A node as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct NodeRoom {
    pub name: String,
    pub ready: bool,
    pub schedulable: bool,
    pub labels: serde_json::Map<String, Value>,
    pub allocatable: Request,
    pub used: Request,
    /// Pods bound to the node, to spread pods that request nothing.
    pub pods: usize,
    pub host_ip: String,
}

impl NodeRoom {
    fn free(&self) -> Request {
        Request {
            cpu: self.allocatable.cpu - self.used.cpu,
            memory: self.allocatable.memory - self.used.memory,
            gpu: self.allocatable.gpu - self.used.gpu,
        }
    }

    fn fits(&self, r: &Request) -> Result<(), &'static str> {
        let free = self.free();
        const EPS: f64 = 1e-9;
        if r.gpu > free.gpu + EPS {
            return Err("Insufficient nvidia.com/gpu");
        }
        if r.cpu > free.cpu + EPS {
            return Err("Insufficient cpu");
        }
        if r.memory > free.memory + EPS {
            return Err("Insufficient memory");
        }
        Ok(())
    }

    /// Higher is emptier.
    fn score(&self) -> f64 {
        let frac = |used: f64, total: f64| if total > 0.0 { 1.0 - used / total } else { 1.0 };
        frac(self.used.cpu, self.allocatable.cpu) + frac(self.used.memory, self.allocatable.memory)
    }
}

/// Is the node's Ready condition True?
pub fn node_ready(node: &Value) -> bool {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        })
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        == Some("True")
}

/// Does this pod hold resources on its node?
pub fn holds_resources(pod: &Value) -> bool {
    !matches!(meta::str_at(pod, "/status/phase"), "Succeeded" | "Failed")
        && !meta::str_at(pod, "/spec/nodeName").is_empty()
}

/// The cluster's nodes with what their pods already use.
pub fn rooms<'a>(
    nodes: impl Iterator<Item = &'a Value>,
    pods: impl Iterator<Item = &'a Value>,
) -> Vec<NodeRoom> {
    let mut used: HashMap<&str, (Request, usize)> = HashMap::new();
    for pod in pods.filter(|p| holds_resources(p)) {
        let r = quantity::pod_request(pod);
        let (u, n) = used.entry(meta::str_at(pod, "/spec/nodeName")).or_default();
        u.cpu += r.cpu;
        u.memory += r.memory;
        u.gpu += r.gpu;
        *n += 1;
    }
    nodes
        .map(|n| {
            let host_ip = n
                .pointer("/status/addresses")
                .and_then(Value::as_array)
                .and_then(|a| {
                    a.iter()
                        .find(|a| a.get("type").and_then(Value::as_str) == Some("InternalIP"))
                })
                .and_then(|a| a.get("address"))
                .and_then(Value::as_str)
                .unwrap_or("10.0.0.1")
                .to_string();
            NodeRoom {
                name: meta::name(n).to_string(),
                ready: node_ready(n),
                schedulable: n.pointer("/spec/unschedulable").and_then(Value::as_bool)
                    != Some(true),
                labels: meta::labels(n).cloned().unwrap_or_default(),
                allocatable: quantity::node_allocatable(n),
                used: used.get(meta::name(n)).map(|u| u.0).unwrap_or_default(),
                pods: used.get(meta::name(n)).map(|u| u.1).unwrap_or_default(),
                host_ip,
            }
        })
        .collect()
}

/// The node for `pod`, or the reason none fits (as the scheduler's message says it).
pub fn pick(rooms: &mut [NodeRoom], pod: &Value) -> Result<usize, String> {
    let req = quantity::pod_request(pod);
    let selector = pod.pointer("/spec/nodeSelector").and_then(Value::as_object);
    let mut reasons: HashMap<&'static str, usize> = HashMap::new();
    let mut best: Option<usize> = None;
    for (i, room) in rooms.iter().enumerate() {
        let why = if !room.ready {
            Err("node(s) were not ready")
        } else if !room.schedulable {
            Err("node(s) were unschedulable")
        } else if selector.is_some_and(|sel| sel.iter().any(|(k, v)| room.labels.get(k) != Some(v)))
        {
            Err("node(s) didn't match Pod's node affinity/selector")
        } else {
            room.fits(&req)
        };
        match why {
            Ok(()) => {
                let better = |b: usize| {
                    let (mine, theirs) = (room.score(), rooms[b].score());
                    mine > theirs + 1e-9
                        || ((mine - theirs).abs() <= 1e-9 && room.pods < rooms[b].pods)
                };
                if best.is_none_or(better) {
                    best = Some(i);
                }
            }
            Err(reason) => *reasons.entry(reason).or_default() += 1,
        }
    }
    match best {
        Some(i) => {
            let room = &mut rooms[i];
            room.used.cpu += req.cpu;
            room.used.memory += req.memory;
            room.used.gpu += req.gpu;
            room.pods += 1;
            Ok(i)
        }
        None => {
            let mut parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
            parts.sort();
            Err(format!(
                "0/{} nodes are available: {}.",
                rooms.len(),
                parts.join(", ")
            ))
        }
    }
}
