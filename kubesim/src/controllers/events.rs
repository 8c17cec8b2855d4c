//! Warning events about pods, as the scheduler and kubelet record them, so that
//! `kubectl describe` and clients reading events can tell why a pod is stuck.

use serde_json::{Value, json};

use crate::meta;
use crate::ops;
use crate::resources::EVENTS;
use crate::store::State;

/// Records a Warning event about `pod` from `component`.
pub fn warn(st: &mut State, pod: &Value, component: &str, reason: &str, message: &str) {
    let now = meta::now();
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": format!("{}.{}", meta::name(pod), ops::random_suffix()),
            "namespace": meta::namespace(pod),
        },
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": meta::name(pod),
            "namespace": meta::namespace(pod),
            "uid": meta::uid(pod),
            "resourceVersion": meta::resource_version(pod),
        },
        "type": "Warning",
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": "",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    if let Err(e) = ops::create(st, EVENTS, event, false) {
        tracing::debug!(error = %e.message, "event not recorded");
    }
}
