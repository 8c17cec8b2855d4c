//! The simulated cluster's fixed parts: nodes (from a TOML file or two default GPU
//! nodes), the system namespaces, the `kubernetes` service and the dataset PVCs.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::Error;
use crate::ops;
use crate::resources::{NAMESPACES, NODES, PVCS, SERVICES};
use crate::store::State;

/// The `--cluster` file: `[[nodes]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    #[serde(default)]
    pub nodes: Vec<NodeSpec>,
}

/// A quantity written as a number or a string (`32`, `"500m"`, `"128Gi"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Quantity {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Quantity {
    fn text(&self) -> String {
        match self {
            Quantity::Int(n) => n.to_string(),
            Quantity::Float(f) => f.to_string(),
            Quantity::Text(s) => s.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub cpu: Option<Quantity>,
    pub memory: Option<Quantity>,
    #[serde(rename = "nvidia.com/gpu", alias = "gpus", alias = "gpu")]
    pub gpu: Option<u64>,
    #[serde(default = "yes")]
    pub ready: bool,
}

fn yes() -> bool {
    true
}

/// Two Ready nodes with 32 cpu, 128Gi and 4 GPUs each.
pub fn default_nodes() -> Vec<NodeSpec> {
    (1..=2)
        .map(|i| NodeSpec {
            name: format!("gpu-node-{i}"),
            labels: BTreeMap::from([(
                "nvidia.com/gpu.product".to_string(),
                "NVIDIA-A100-SXM4-80GB".to_string(),
            )]),
            cpu: Some(Quantity::Int(32)),
            memory: Some(Quantity::Text("128Gi".into())),
            gpu: Some(4),
            ready: true,
        })
        .collect()
}

pub fn load(path: &Path) -> Result<Vec<NodeSpec>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::ClusterFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let file: ClusterFile = toml::from_str(&text).map_err(|e| Error::ClusterFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(file.nodes)
}

pub fn node_object(spec: &NodeSpec, index: usize) -> Value {
    let now = crate::meta::now();
    let mut labels = json!({
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
    });
    for (k, v) in &spec.labels {
        labels[k] = json!(v);
    }
    let mut capacity = json!({
        "cpu": spec.cpu.as_ref().map(Quantity::text).unwrap_or_else(|| "32".into()),
        "memory": spec.memory.as_ref().map(Quantity::text).unwrap_or_else(|| "128Gi".into()),
        "pods": "110",
        "ephemeral-storage": "500Gi",
    });
    if let Some(g) = spec.gpu {
        capacity[crate::quantity::GPU] = json!(g.to_string());
    }
    let cond = |kind: &str, status: bool, reason: &str, message: &str| {
        json!({
            "type": kind,
            "status": if status { "True" } else { "False" },
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        })
    };
    let ip = format!("10.0.0.{}", 10 + index);
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": spec.name, "labels": labels},
        "spec": {"podCIDR": format!("10.244.{index}.0/24"), "podCIDRs": [format!("10.244.{index}.0/24")]},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [
                cond("MemoryPressure", false, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", false, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", false, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                if spec.ready {
                    cond("Ready", true, "KubeletReady", "kubelet is posting ready status")
                } else {
                    cond("Ready", false, "KubeletNotReady", "container runtime is down")
                },
            ],
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": spec.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": format!("{:032x}", index + 1),
                "systemUUID": uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_DNS, spec.name.as_bytes()).to_string(),
                "bootID": uuid::Uuid::new_v4().to_string(),
                "kernelVersion": "6.1.0-kubesim",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "containerd://1.7.24",
                "kubeletVersion": crate::api::discovery::GIT_VERSION,
                "kubeProxyVersion": crate::api::discovery::GIT_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    })
}

fn ensure(st: &mut State, res: usize, obj: Value) {
    let ns = crate::meta::namespace(&obj).to_string();
    let name = crate::meta::name(&obj).to_string();
    if st.get(res, &ns, &name).is_none()
        && let Err(e) = ops::create(st, res, obj, false)
    {
        tracing::warn!(%name, error = %e.message, "cannot create a built-in object");
    }
}

/// Creates what a fresh cluster has. `fresh` is false after a restore, when only the
/// system namespaces and missing nodes are added.
pub fn bootstrap(st: &mut State, nodes: &[NodeSpec], fresh: bool) {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        ensure(st, NAMESPACES, json!({"metadata": {"name": ns}}));
    }
    // Nodes register themselves again after a restart, as kubelets do.
    for (i, spec) in nodes.iter().enumerate() {
        ensure(st, NODES, node_object(spec, i));
    }
    if !fresh {
        return;
    }
    ensure(
        st,
        SERVICES,
        json!({
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
        }),
    );
    for name in ["dataset-mnist", "dataset-cifar-10", "dataset-caltech256"] {
        ensure(
            st,
            PVCS,
            json!({
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"accessModes": ["ReadOnlyMany"], "resources": {"requests": {"storage": "50Gi"}}},
            }),
        );
    }
}
