//! `meta.k8s.io/v1` Tables, what `kubectl get` prints, with the columns kubectl shows.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::meta;
use crate::resources::{DEPLOYMENTS, EVENTS, NAMESPACES, NODES, PODS, PVCS, SERVICES};
use crate::selectors::LabelSelector;

/// Age as kubectl prints it (`42s`, `5m`, `3h`, `2d`).
fn age(obj: &Value) -> String {
    let Some(created) = obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - created.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

/// A field of every container of a deployment's template, comma-separated.
fn containers(dep: &Value, field: &str) -> String {
    dep.pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get(field).and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// Columns kubectl shows only with `-o wide`.
const WIDE: &[&str] = &["IP", "Node", "Containers", "Images", "Selector"];

fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn pod_cells(pod: &Value) -> Vec<Value> {
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let total = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let ready = statuses
        .iter()
        .filter(|s| s.get("ready").and_then(Value::as_bool) == Some(true))
        .count();
    let restarts: i64 = statuses.iter().map(|s| int(s, "/restartCount")).sum();
    let waiting = statuses
        .iter()
        .find_map(|s| s.pointer("/state/waiting/reason").and_then(Value::as_str));
    let status = if meta::is_deleting(pod) {
        "Terminating"
    } else {
        waiting.unwrap_or_else(|| meta::str_at(pod, "/status/phase"))
    };
    vec![
        json!(meta::name(pod)),
        json!(format!("{ready}/{total}")),
        json!(status),
        json!(restarts),
        json!(age(pod)),
        json!(or_none(meta::str_at(pod, "/status/podIP"))),
        json!(or_none(meta::str_at(pod, "/spec/nodeName"))),
    ]
}

fn node_status(node: &Value) -> String {
    let ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        })
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str);
    let mut s = if ready == Some("True") {
        "Ready"
    } else {
        "NotReady"
    }
    .to_string();
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        s.push_str(",SchedulingDisabled");
    }
    s
}

fn columns_and_cells(res: usize, obj: &Value) -> (Vec<(&'static str, &'static str)>, Vec<Value>) {
    match res {
        PODS => (
            vec![
                ("Name", "string"),
                ("Ready", "string"),
                ("Status", "string"),
                ("Restarts", "integer"),
                ("Age", "string"),
                ("IP", "string"),
                ("Node", "string"),
            ],
            pod_cells(obj),
        ),
        DEPLOYMENTS => (
            vec![
                ("Name", "string"),
                ("Ready", "string"),
                ("Up-to-date", "integer"),
                ("Available", "integer"),
                ("Age", "string"),
                ("Containers", "string"),
                ("Images", "string"),
                ("Selector", "string"),
            ],
            vec![
                json!(meta::name(obj)),
                json!(format!(
                    "{}/{}",
                    int(obj, "/status/readyReplicas"),
                    int(obj, "/spec/replicas")
                )),
                json!(int(obj, "/status/updatedReplicas")),
                json!(int(obj, "/status/availableReplicas")),
                json!(age(obj)),
                json!(containers(obj, "name")),
                json!(containers(obj, "image")),
                json!(
                    obj.pointer("/spec/selector")
                        .map(|s| LabelSelector::from_object(s).to_query())
                        .unwrap_or_default()
                ),
            ],
        ),
        NODES => (
            vec![
                ("Name", "string"),
                ("Status", "string"),
                ("Roles", "string"),
                ("Age", "string"),
                ("Version", "string"),
            ],
            vec![
                json!(meta::name(obj)),
                json!(node_status(obj)),
                json!("<none>"),
                json!(age(obj)),
                json!(meta::str_at(obj, "/status/nodeInfo/kubeletVersion")),
            ],
        ),
        NAMESPACES => (
            vec![("Name", "string"), ("Status", "string"), ("Age", "string")],
            vec![
                json!(meta::name(obj)),
                json!(meta::str_at(obj, "/status/phase")),
                json!(age(obj)),
            ],
        ),
        SERVICES => {
            let ports = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            let port = int(p, "/port");
                            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                            match p.get("nodePort").and_then(Value::as_i64) {
                                Some(np) => format!("{port}:{np}/{proto}"),
                                None => format!("{port}/{proto}"),
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            (
                vec![
                    ("Name", "string"),
                    ("Type", "string"),
                    ("Cluster-IP", "string"),
                    ("External-IP", "string"),
                    ("Port(s)", "string"),
                    ("Age", "string"),
                ],
                vec![
                    json!(meta::name(obj)),
                    json!(meta::str_at(obj, "/spec/type")),
                    json!(meta::str_at(obj, "/spec/clusterIP")),
                    json!("<none>"),
                    json!(ports),
                    json!(age(obj)),
                ],
            )
        }
        PVCS => (
            vec![
                ("Name", "string"),
                ("Status", "string"),
                ("Volume", "string"),
                ("Capacity", "string"),
                ("Access Modes", "string"),
                ("StorageClass", "string"),
                ("Age", "string"),
            ],
            vec![
                json!(meta::name(obj)),
                json!(meta::str_at(obj, "/status/phase")),
                json!(meta::str_at(obj, "/spec/volumeName")),
                json!(meta::str_at(obj, "/status/capacity/storage")),
                json!(
                    obj.pointer("/status/accessModes")
                        .and_then(Value::as_array)
                        .map(|m| m
                            .iter()
                            .filter_map(Value::as_str)
                            .map(|m| match m {
                                "ReadWriteOnce" => "RWO",
                                "ReadOnlyMany" => "ROX",
                                "ReadWriteMany" => "RWX",
                                "ReadWriteOncePod" => "RWOP",
                                other => other,
                            })
                            .collect::<Vec<_>>()
                            .join(","))
                        .unwrap_or_default()
                ),
                json!(meta::str_at(obj, "/spec/storageClassName")),
                json!(age(obj)),
            ],
        ),
        EVENTS => (
            vec![
                ("Last Seen", "string"),
                ("Type", "string"),
                ("Reason", "string"),
                ("Object", "string"),
                ("Message", "string"),
            ],
            vec![
                json!(age(obj)),
                json!(meta::str_at(obj, "/type")),
                json!(meta::str_at(obj, "/reason")),
                json!(format!(
                    "{}/{}",
                    meta::str_at(obj, "/involvedObject/kind").to_lowercase(),
                    meta::str_at(obj, "/involvedObject/name")
                )),
                json!(meta::str_at(obj, "/message")),
            ],
        ),
        _ => (
            vec![("Name", "string"), ("Age", "string")],
            vec![json!(meta::name(obj)), json!(age(obj))],
        ),
    }
}

/// A Table of `items`; each row carries its whole object, as `includeObject=Object` does.
pub fn table(res: usize, items: &[Arc<Value>], rv: u64) -> Value {
    let (columns, _) = columns_and_cells(res, &Value::Null);
    let defs: Vec<Value> = columns
        .iter()
        .map(|(name, kind)| {
            json!({
                "name": name,
                "type": kind,
                "format": if *name == "Name" { "name" } else { "" },
                "description": "",
                "priority": if WIDE.contains(name) { 1 } else { 0 },
            })
        })
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let (_, cells) = columns_and_cells(res, obj);
            json!({"cells": cells, "object": &**obj})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "columnDefinitions": defs,
        "rows": rows,
    })
}
