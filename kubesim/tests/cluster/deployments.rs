//! The deployment controller: replacement, rollout, failing images, delete propagation.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use serde_json::json;

use crate::{Sim, deployment, eventually, namespace, ready_replicas};

fn pod_names(pods: &[Pod]) -> Vec<String> {
    let mut n: Vec<String> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    n.sort();
    n
}

#[tokio::test]
async fn a_deleted_pod_is_replaced_and_a_new_image_rolls_out() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    let ns = namespace(&sim.client, "roll").await?;
    let deployments = Api::<Deployment>::namespaced(sim.client.clone(), &ns);
    let pods = Api::<Pod>::namespaced(sim.client.clone(), &ns);
    deployments
        .create(&PostParams::default(), &deployment("web", "nginx:1.25", 2))
        .await?;
    eventually("2 ready", || async {
        Ok(ready_replicas(&deployments.get("web").await?) == 2)
    })
    .await?;

    let before = pods
        .list(&ListParams::default().labels("app=web"))
        .await?
        .items;
    let victim = before[0].metadata.name.clone().unwrap();
    let owner = &before[0].metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner.kind, "Deployment");
    assert_eq!(owner.controller, Some(true));
    pods.delete(&victim, &DeleteParams::default()).await?;
    eventually("a replacement", || async {
        let now = pods
            .list(&ListParams::default().labels("app=web"))
            .await?
            .items;
        Ok(now.len() == 2 && !pod_names(&now).contains(&victim))
    })
    .await?;
    eventually("2 ready again", || async {
        Ok(ready_replicas(&deployments.get("web").await?) == 2)
    })
    .await?;

    // A new image: every pod is replaced by one running the new image.
    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.26"}]}}}})))
        .await?;
    eventually("rolled over", || async {
        let d = deployments.get("web").await?;
        let s = d.status.clone().unwrap_or_default();
        let pods_now = pods
            .list(&ListParams::default().labels("app=web"))
            .await?
            .items;
        let all_new = pods_now
            .iter()
            .all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("nginx:1.26"));
        Ok(s.observed_generation == d.metadata.generation
            && s.updated_replicas == Some(2)
            && s.ready_replicas == Some(2)
            && s.replicas == Some(2)
            && pods_now.len() == 2
            && all_new)
    })
    .await?;
    let d = deployments.get("web").await?;
    let conditions = d.status.unwrap().conditions.unwrap();
    let available = conditions.iter().find(|c| c.type_ == "Available").unwrap();
    assert_eq!(available.status, "True");
    let progressing = conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(
        progressing.reason.as_deref(),
        Some("NewReplicaSetAvailable")
    );

    // Scale through the scale subresource.
    deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await?;
    eventually("3 ready", || async {
        Ok(ready_replicas(&deployments.get("web").await?) == 3)
    })
    .await?;
    sim.handle.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_failing_image_backs_off_and_exceeds_the_progress_deadline() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    let ns = namespace(&sim.client, "fail").await?;
    let deployments = Api::<Deployment>::namespaced(sim.client.clone(), &ns);
    let pods = Api::<Pod>::namespaced(sim.client.clone(), &ns);
    deployments
        .create(
            &PostParams::default(),
            &deployment("broken", "registry.local/will-fail:1", 1),
        )
        .await?;
    let reason = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c[0].state.as_ref())
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.clone())
            .unwrap_or_default()
    };
    let reasons = std::sync::Mutex::new(std::collections::BTreeSet::new());
    eventually("ImagePullBackOff", || async {
        let list = pods.list(&ListParams::default()).await?.items;
        let mut seen = reasons.lock().unwrap();
        for p in &list {
            seen.insert(reason(p));
        }
        Ok(seen.contains("ImagePullBackOff"))
    })
    .await?;
    eventually("ProgressDeadlineExceeded", || async {
        let d = deployments.get("broken").await?;
        Ok(d.status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| {
                c.type_ == "Progressing"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            }))
    })
    .await?;
    let d = deployments.get("broken").await?;
    assert_eq!(ready_replicas(&d), 0);
    let pod = &pods.list(&ListParams::default()).await?.items[0];
    assert_eq!(
        pod.status.as_ref().unwrap().phase.as_deref(),
        Some("Pending")
    );
    let events = Api::<k8s_openapi::api::core::v1::Event>::namespaced(sim.client.clone(), &ns)
        .list(&ListParams::default())
        .await?;
    let reasons: Vec<_> = events
        .items
        .iter()
        .filter_map(|e| e.reason.clone())
        .collect();
    assert!(reasons.contains(&"BackOff".to_string()), "{reasons:?}");
    sim.handle.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn deleting_a_deployment_takes_its_pods_background_and_foreground() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    let ns = namespace(&sim.client, "gc").await?;
    let deployments = Api::<Deployment>::namespaced(sim.client.clone(), &ns);
    let pods = Api::<Pod>::namespaced(sim.client.clone(), &ns);
    deployments
        .create(&PostParams::default(), &deployment("bg", "nginx:1.25", 2))
        .await?;
    deployments
        .create(&PostParams::default(), &deployment("fg", "nginx:1.25", 2))
        .await?;
    eventually("4 pods", || async {
        Ok(pods.list(&ListParams::default()).await?.items.len() == 4)
    })
    .await?;

    deployments
        .delete(
            "bg",
            &DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..Default::default()
            },
        )
        .await?;
    assert!(deployments.get_opt("bg").await?.is_none());
    eventually("bg pods gone", || async {
        Ok(pods
            .list(&ListParams::default().labels("app=bg"))
            .await?
            .items
            .is_empty())
    })
    .await?;

    let marked = deployments
        .delete("fg", &DeleteParams::foreground())
        .await?;
    if let Some(d) = marked.left() {
        assert!(d.metadata.deletion_timestamp.is_some());
        assert!(
            d.metadata
                .finalizers
                .unwrap_or_default()
                .contains(&"foregroundDeletion".to_string())
        );
    }
    eventually("fg and its pods gone", || async {
        Ok(deployments.get_opt("fg").await?.is_none()
            && pods.list(&ListParams::default()).await?.items.is_empty())
    })
    .await?;
    sim.handle.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_running_pod_has_a_log_and_a_waiting_one_does_not() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    let ns = namespace(&sim.client, "logs").await?;
    let deployments = Api::<Deployment>::namespaced(sim.client.clone(), &ns);
    let pods = Api::<Pod>::namespaced(sim.client.clone(), &ns);
    deployments
        .create(&PostParams::default(), &deployment("ok", "nginx:1.25", 1))
        .await?;
    deployments
        .create(&PostParams::default(), &deployment("bad", "will-fail:1", 1))
        .await?;
    eventually("ok ready", || async {
        Ok(ready_replicas(&deployments.get("ok").await?) == 1)
    })
    .await?;
    let ok = pods
        .list(&ListParams::default().labels("app=ok"))
        .await?
        .items
        .remove(0);
    let log = pods
        .logs(ok.metadata.name.as_deref().unwrap(), &Default::default())
        .await?;
    assert!(log.contains("is running"), "{log}");
    let bad = pods
        .list(&ListParams::default().labels("app=bad"))
        .await?
        .items
        .remove(0);
    let err = pods
        .logs(bad.metadata.name.as_deref().unwrap(), &Default::default())
        .await;
    assert!(
        matches!(err, Err(kube::Error::Api(ref s)) if s.code == 400),
        "{err:?}"
    );
    sim.handle.shutdown().await?;
    Ok(())
}
