//! What the API server does to an object before storing it: fill in defaults (as the
//! real defaulting does, so clients see the fields they expect) and refuse invalid ones.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::api::errors::{ApiError, Cause, cause};
use crate::meta;
use crate::resources::{DEPLOYMENTS, NAMESPACES, PODS, PVCS, RESOURCES, SERVICES};
use crate::selectors::LabelSelector;
use crate::store::State;

pub const NODE_PORT_MIN: u64 = 30000;
pub const NODE_PORT_MAX: u64 = 32767;

/// Defaults then validates `obj` (a create when `old` is `None`).
pub fn admit(st: &State, res: usize, obj: &mut Value, old: Option<&Value>) -> Result<(), ApiError> {
    default(st, res, obj, old);
    let mut causes = Vec::new();
    validate_name(res, obj, &mut causes);
    match res {
        PODS => validate_pod_spec(obj.get("spec"), "spec", &mut causes),
        DEPLOYMENTS => validate_deployment(obj, &mut causes),
        SERVICES => validate_service(st, obj, &mut causes),
        PVCS if old.is_none() => validate_pvc(obj, &mut causes),
        _ => {}
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&RESOURCES[res], meta::name(obj), causes))
    }
}

/// RFC 1123 label: lowercase alphanumerics and '-', starting and ending alphanumeric.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn validate_name(res: usize, obj: &Value, causes: &mut Vec<Cause>) {
    let name = meta::name(obj);
    if name.is_empty() {
        causes.push(cause(
            "metadata.name",
            "FieldValueRequired",
            "Required value: name or generateName is required",
        ));
        return;
    }
    let ok = match res {
        NAMESPACES => is_dns_label(name),
        SERVICES => is_dns_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase()),
        _ => is_dns_subdomain(name),
    };
    if !ok {
        causes.push(cause(
            "metadata.name",
            "FieldValueInvalid",
            format!(
                "Invalid value: {name:?}: a lowercase RFC 1123 name must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ));
    }
}

fn validate_pod_spec(spec: Option<&Value>, at: &str, causes: &mut Vec<Cause>) {
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    let Some(containers) = containers.filter(|c| !c.is_empty()) else {
        causes.push(cause(
            format!("{at}.containers"),
            "FieldValueRequired",
            "Required value",
        ));
        return;
    };
    for (i, c) in containers.iter().enumerate() {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            causes.push(cause(
                format!("{at}.containers[{i}].name"),
                "FieldValueRequired",
                "Required value",
            ));
        } else if !is_dns_label(name) {
            causes.push(cause(
                format!("{at}.containers[{i}].name"),
                "FieldValueInvalid",
                format!("Invalid value: {name:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'"),
            ));
        }
        if c.get("image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            causes.push(cause(
                format!("{at}.containers[{i}].image"),
                "FieldValueRequired",
                "Required value",
            ));
        }
    }
}

fn validate_deployment(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = obj.get("spec");
    if spec
        .and_then(|s| s.get("replicas"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
        < 0
    {
        causes.push(cause(
            "spec.replicas",
            "FieldValueInvalid",
            "Invalid value: must be greater than or equal to 0",
        ));
    }
    let selector = spec
        .and_then(|s| s.get("selector"))
        .filter(|s| s.is_object());
    match selector {
        None => causes.push(cause(
            "spec.selector",
            "FieldValueRequired",
            "Required value",
        )),
        Some(sel) => {
            let parsed = LabelSelector::from_object(sel);
            if parsed.is_empty() {
                causes.push(cause(
                    "spec.selector",
                    "FieldValueInvalid",
                    "Invalid value: empty selector is invalid for deployment",
                ));
            }
            let labels = spec
                .and_then(|s| s.pointer("/template/metadata/labels"))
                .and_then(Value::as_object);
            if !parsed.matches(labels) {
                causes.push(cause(
                    "spec.template.metadata.labels",
                    "FieldValueInvalid",
                    format!(
                        "Invalid value: {}: `selector` does not match template `labels`",
                        serde_json::to_string(&labels).unwrap_or_default()
                    ),
                ));
            }
        }
    }
    validate_pod_spec(
        spec.and_then(|s| s.pointer("/template/spec")),
        "spec.template.spec",
        causes,
    );
}

fn validate_service(st: &State, obj: &Value, causes: &mut Vec<Cause>) {
    let kind = meta::str_at(obj, "/spec/type");
    if kind == "ExternalName" {
        return;
    }
    let ports = obj.pointer("/spec/ports").and_then(Value::as_array);
    let Some(ports) = ports.filter(|p| !p.is_empty()) else {
        causes.push(cause("spec.ports", "FieldValueRequired", "Required value"));
        return;
    };
    let taken = node_ports_in_use(st, Some(obj));
    let mut mine = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        match p.get("port").and_then(Value::as_u64) {
            Some(1..=65535) => {}
            _ => causes.push(cause(
                format!("spec.ports[{i}].port"),
                "FieldValueInvalid",
                "Invalid value: must be between 1 and 65535, inclusive",
            )),
        }
        if let Some(np) = p.get("nodePort").and_then(Value::as_u64) {
            if !(NODE_PORT_MIN..=NODE_PORT_MAX).contains(&np) {
                causes.push(cause(
                    format!("spec.ports[{i}].nodePort"),
                    "FieldValueInvalid",
                    format!("Invalid value: {np}: provided port is not in the valid range. The range of valid ports is {NODE_PORT_MIN}-{NODE_PORT_MAX}"),
                ));
            } else if taken.contains(&np) || !mine.insert(np) {
                causes.push(cause(
                    format!("spec.ports[{i}].nodePort"),
                    "FieldValueInvalid",
                    format!("Invalid value: {np}: provided port is already allocated"),
                ));
            }
        }
    }
}

fn validate_pvc(obj: &Value, causes: &mut Vec<Cause>) {
    let modes = obj.pointer("/spec/accessModes").and_then(Value::as_array);
    if modes.is_none_or(|m| m.is_empty()) {
        causes.push(cause(
            "spec.accessModes",
            "FieldValueRequired",
            "Required value: at least 1 access mode is required",
        ));
    }
    if obj.pointer("/spec/resources/requests/storage").is_none() {
        causes.push(cause(
            "spec.resources[storage]",
            "FieldValueRequired",
            "Required value",
        ));
    }
}

/// Node ports held by services other than `except`.
fn node_ports_in_use(st: &State, except: Option<&Value>) -> HashSet<u64> {
    let skip = except.map(|o| (meta::namespace(o).to_string(), meta::name(o).to_string()));
    st.list(SERVICES, None)
        .filter(|(k, _)| Some((k.0.clone(), k.1.clone())) != skip)
        .flat_map(|(_, svc)| {
            svc.pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    let entry = map.entry(key.to_string()).or_insert(Value::Null);
    if entry.is_null() {
        *entry = value;
    }
}

/// Pod spec defaults, for pods and deployment templates.
pub fn default_pod_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "securityContext", json!({}));
    if let Some(Value::Array(containers)) = spec.get_mut("containers") {
        for c in containers.iter_mut().filter_map(Value::as_object_mut) {
            let image = c.get("image").and_then(Value::as_str).unwrap_or("");
            let latest =
                !image.rsplit('/').next().unwrap_or("").contains(':') || image.ends_with(":latest");
            let policy = if latest { "Always" } else { "IfNotPresent" };
            set_default(c, "imagePullPolicy", json!(policy));
            set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
            set_default(c, "terminationMessagePolicy", json!("File"));
            set_default(c, "resources", json!({}));
            if let Some(Value::Array(ports)) = c.get_mut("ports") {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    set_default(p, "protocol", json!("TCP"));
                }
            }
        }
    }
}

fn default(st: &State, res: usize, obj: &mut Value, old: Option<&Value>) {
    match res {
        NAMESPACES => {
            let name = meta::name(obj).to_string();
            let labels = meta::object_at(obj, &["metadata", "labels"]);
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
            set_default(
                meta::object_at(obj, &["spec"]),
                "finalizers",
                json!(["kubernetes"]),
            );
            set_default(meta::object_at(obj, &["status"]), "phase", json!("Active"));
        }
        PODS => {
            default_pod_spec(meta::object_at(obj, &["spec"]));
            if old.is_none() {
                let qos = if crate::quantity::pod_request(obj) == Default::default() {
                    "BestEffort"
                } else {
                    "Burstable"
                };
                let status = meta::object_at(obj, &["status"]);
                set_default(status, "phase", json!("Pending"));
                set_default(status, "qosClass", json!(qos));
            }
        }
        DEPLOYMENTS => {
            let spec = meta::object_at(obj, &["spec"]);
            set_default(spec, "replicas", json!(1));
            set_default(
                spec,
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
            );
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "progressDeadlineSeconds", json!(600));
            default_pod_spec(meta::object_at(obj, &["spec", "template", "spec"]));
            meta::object_at(obj, &["spec", "template", "metadata"]);
        }
        SERVICES => default_service(st, obj, old),
        PVCS if old.is_none() => {
            let uid = meta::uid(obj).to_string();
            let storage = obj
                .pointer("/spec/resources/requests/storage")
                .cloned()
                .unwrap_or(json!("1Gi"));
            let modes = obj
                .pointer("/spec/accessModes")
                .cloned()
                .unwrap_or(json!(["ReadWriteOnce"]));
            let spec = meta::object_at(obj, &["spec"]);
            set_default(spec, "storageClassName", json!("standard"));
            set_default(spec, "volumeMode", json!("Filesystem"));
            set_default(spec, "volumeName", json!(format!("pvc-{uid}")));
            let status = meta::object_at(obj, &["status"]);
            status.insert("phase".into(), json!("Bound"));
            status.insert("accessModes".into(), modes);
            status.insert("capacity".into(), json!({"storage": storage}));
        }
        _ => {}
    }
}

fn default_service(st: &State, obj: &mut Value, old: Option<&Value>) {
    let old_ports: Vec<Value> = old
        .and_then(|o| o.pointer("/spec/ports"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let old_ip = old.map(|o| meta::str_at(o, "/spec/clusterIP").to_string());
    let mut taken = node_ports_in_use(st, Some(obj));
    let used_ips: HashSet<String> = st
        .list(SERVICES, None)
        .map(|(_, s)| meta::str_at(s, "/spec/clusterIP").to_string())
        .collect();
    let spec = meta::object_at(obj, &["spec"]);
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    let kind = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let wants_node_port = kind == "NodePort" || kind == "LoadBalancer";
    if kind != "ExternalName" {
        set_default(spec, "ipFamilies", json!(["IPv4"]));
        set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
        let ip = match (spec.get("clusterIP").and_then(Value::as_str), old_ip) {
            (Some(ip), _) if !ip.is_empty() => ip.to_string(),
            (_, Some(ip)) if !ip.is_empty() => ip,
            _ => next_cluster_ip(&used_ips),
        };
        spec.insert("clusterIP".into(), json!(ip));
        spec.insert("clusterIPs".into(), json!([ip]));
    }
    if wants_node_port {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        // Ports the request names itself are not free for the others.
        for p in ports.iter() {
            if let Some(np) = p.get("nodePort").and_then(Value::as_u64) {
                taken.insert(np);
            }
        }
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "protocol", json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                set_default(p, "targetPort", port);
            }
            if wants_node_port && p.get("nodePort").and_then(Value::as_u64).is_none() {
                let port = p.get("port").cloned();
                let kept = old_ports
                    .iter()
                    .find(|o| o.get("port") == port.as_ref())
                    .and_then(|o| o.get("nodePort"))
                    .and_then(Value::as_u64)
                    .filter(|np| !taken.contains(np));
                let np =
                    kept.or_else(|| (NODE_PORT_MIN..=NODE_PORT_MAX).find(|np| !taken.contains(np)));
                if let Some(np) = np {
                    taken.insert(np);
                    p.insert("nodePort".into(), json!(np));
                }
            }
        }
    }
    let cluster_ip = meta::str_at(obj, "/spec/clusterIP").to_string();
    let lb = meta::object_at(obj, &["status", "loadBalancer"]);
    if kind == "LoadBalancer" && !lb.contains_key("ingress") {
        // A load balancer "provisioned" at once, with an address derived from the cluster IP.
        let ip = cluster_ip.replacen("10.96.", "172.18.", 1);
        lb.insert("ingress".into(), json!([{"ip": ip, "ipMode": "VIP"}]));
    }
}

/// The next free address in 10.96.0.0/16 (10.96.0.1 is the `kubernetes` service's).
fn next_cluster_ip(used: &HashSet<String>) -> String {
    (10u32..65534)
        .map(|n| format!("10.96.{}.{}", n / 256, n % 256))
        .find(|ip| !used.contains(ip) && !ip.ends_with(".0") && !ip.ends_with(".255"))
        .unwrap_or_else(|| "10.96.255.254".to_string())
}
