//! Scheduling by GPU, Unschedulable pods, and eviction from a NotReady node.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{Sim, deployment_with, eventually, namespace};

fn gpus(n: u32) -> serde_json::Value {
    json!({"limits": {"nvidia.com/gpu": n.to_string()}, "requests": {"cpu": "1", "memory": "1Gi"}})
}

fn scheduled_condition(p: &Pod) -> Option<(String, Option<String>)> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled")
        .map(|c| (c.status.clone(), c.reason.clone()))
}

#[tokio::test]
async fn gpu_pods_wait_unschedulable_until_room_frees() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    let ns = namespace(&sim.client, "gpu").await?;
    let deployments = Api::<Deployment>::namespaced(sim.client.clone(), &ns);
    let pods = Api::<Pod>::namespaced(sim.client.clone(), &ns);
    // Two nodes with 4 GPUs each: two 4-GPU pods fill them.
    deployments
        .create(
            &PostParams::default(),
            &deployment_with("big", "trainer:1", 2, gpus(4)),
        )
        .await?;
    eventually("two running big pods", || async {
        let list = pods
            .list(
                &ListParams::default()
                    .labels("app=big")
                    .fields("status.phase=Running"),
            )
            .await?
            .items;
        Ok(list.len() == 2)
    })
    .await?;
    let list = pods
        .list(&ListParams::default().labels("app=big"))
        .await?
        .items;
    let mut nodes: Vec<_> = list
        .iter()
        .filter_map(|p| p.spec.as_ref()?.node_name.clone())
        .collect();
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes.len(), 2, "each 4-GPU pod on its own node");

    deployments
        .create(
            &PostParams::default(),
            &deployment_with("late", "trainer:1", 1, gpus(1)),
        )
        .await?;
    eventually("late pod Unschedulable", || async {
        let list = pods
            .list(&ListParams::default().labels("app=late"))
            .await?
            .items;
        Ok(list.len() == 1
            && scheduled_condition(&list[0])
                == Some(("False".into(), Some("Unschedulable".into())))
            && list[0].status.as_ref().unwrap().phase.as_deref() == Some("Pending"))
    })
    .await?;

    let events = Api::<k8s_openapi::api::core::v1::Event>::namespaced(sim.client.clone(), &ns)
        .list(&ListParams::default())
        .await?;
    assert!(events.items.iter().any(|e| {
        e.reason.as_deref() == Some("FailedScheduling")
            && e.message
                .as_deref()
                .is_some_and(|m| m.contains("Insufficient nvidia.com/gpu"))
    }));

    // Scale the big one down: room frees and the waiting pod is scheduled.
    deployments
        .patch_scale(
            "big",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await?;
    eventually("late pod running", || async {
        let list = pods
            .list(&ListParams::default().labels("app=late"))
            .await?
            .items;
        Ok(list.len() == 1
            && scheduled_condition(&list[0]).map(|c| c.0) == Some("True".into())
            && list[0].status.as_ref().unwrap().phase.as_deref() == Some("Running"))
    })
    .await?;
    sim.handle.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn pods_leave_a_node_set_not_ready() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    let ns = namespace(&sim.client, "evict").await?;
    let deployments = Api::<Deployment>::namespaced(sim.client.clone(), &ns);
    let pods = Api::<Pod>::namespaced(sim.client.clone(), &ns);
    deployments
        .create(
            &PostParams::default(),
            &deployment_with("web", "nginx:1.25", 4, json!({"requests": {"cpu": "1"}})),
        )
        .await?;
    eventually("4 running", || async {
        Ok(pods
            .list(&ListParams::default().fields("status.phase=Running"))
            .await?
            .items
            .len()
            == 4)
    })
    .await?;
    let on_node_1 = pods
        .list(&ListParams::default().fields("spec.nodeName=gpu-node-1"))
        .await?
        .items;
    assert!(!on_node_1.is_empty(), "pods spread over both nodes");

    let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletStopped"}]}});
    let (code, body) = sim
        .raw(
            "PATCH",
            "/api/v1/nodes/gpu-node-1/status",
            "application/strategic-merge-patch+json",
            patch.to_string().as_bytes(),
        )
        .await?;
    assert_eq!(code, 200, "{body}");
    eventually("all 4 running on gpu-node-2", || async {
        let list = pods
            .list(&ListParams::default().fields("status.phase=Running"))
            .await?
            .items;
        Ok(list.len() == 4
            && list
                .iter()
                .all(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some("gpu-node-2")))
    })
    .await?;
    sim.handle.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn nodes_come_from_the_cluster_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("cluster.toml");
    std::fs::write(
        &file,
        r#"
[[nodes]]
name = "small"
cpu = 2
memory = "4Gi"
ready = true
[nodes.labels]
pool = "cpu"

[[nodes]]
name = "broken"
cpu = "8"
memory = "16Gi"
"nvidia.com/gpu" = 8
ready = false
"#,
    )?;
    let sim = Sim::start_with(|a| a.cluster = Some(file.clone())).await?;
    let nodes = Api::<k8s_openapi::api::core::v1::Node>::all(sim.client.clone());
    let small = nodes.get("small").await?;
    assert_eq!(small.metadata.labels.unwrap()["pool"], "cpu");
    let broken = nodes.get("broken").await?;
    let ready = broken
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "False");
    // A GPU pod cannot go anywhere: the only GPU node is not Ready.
    let ns = namespace(&sim.client, "file").await?;
    Api::<Deployment>::namespaced(sim.client.clone(), &ns)
        .create(
            &PostParams::default(),
            &deployment_with("gpu", "trainer:1", 1, gpus(1)),
        )
        .await?;
    let pods = Api::<Pod>::namespaced(sim.client.clone(), &ns);
    eventually("Unschedulable", || async {
        let list = pods.list(&ListParams::default()).await?.items;
        Ok(list.len() == 1
            && scheduled_condition(&list[0]).map(|c| c.1) == Some(Some("Unschedulable".into())))
    })
    .await?;
    sim.handle.shutdown().await?;
    Ok(())
}
