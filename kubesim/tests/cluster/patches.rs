//! Each patch type: merge, strategic merge, JSON patch (with `test`), server-side apply.

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{Sim, deployment, namespace};

#[tokio::test]
async fn each_patch_type_changes_what_it_says() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    let ns = namespace(&sim.client, "patch").await?;
    let api = Api::<Deployment>::namespaced(sim.client.clone(), &ns);
    api.create(&PostParams::default(), &deployment("web", "nginx:1.25", 1))
        .await?;

    // Merge patch: null deletes, objects merge.
    let merged = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "ml", "app": null}}})),
        )
        .await?;
    let labels = merged.metadata.labels.unwrap();
    assert_eq!(labels.get("team").map(String::as_str), Some("ml"));
    assert!(!labels.contains_key("app"));

    // Strategic merge: containers merge by name, keeping what the patch does not name.
    let strategic = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.26"}]}}}})),
        )
        .await?;
    let containers = strategic.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0].image.as_deref(), Some("nginx:1.26"));
    assert_eq!(
        containers[0].image_pull_policy.as_deref(),
        Some("IfNotPresent")
    );

    // JSON patch with a passing test, through raw HTTP.
    let path = format!("/apis/apps/v1/namespaces/{ns}/deployments/web");
    let ops = json!([
        {"op": "test", "path": "/spec/replicas", "value": 1},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
    ]);
    let (code, body) = sim
        .raw(
            "PATCH",
            &path,
            "application/json-patch+json",
            ops.to_string().as_bytes(),
        )
        .await?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["spec"]["replicas"], 3);
    // A failing test changes nothing.
    let before = api.get("web").await?.metadata.resource_version;
    let ops = json!([
        {"op": "test", "path": "/spec/replicas", "value": 1},
        {"op": "replace", "path": "/spec/replicas", "value": 5},
    ]);
    let (code, body) = sim
        .raw(
            "PATCH",
            &path,
            "application/json-patch+json",
            ops.to_string().as_bytes(),
        )
        .await?;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["kind"], "Status");
    let after = api.get("web").await?;
    assert_eq!(after.spec.unwrap().replicas, Some(3));
    assert!(after.metadata.resource_version >= before);

    // Server-side apply creates, then updates, and records the field manager.
    let applied = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "applied"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "applied"}},
            "template": {"metadata": {"labels": {"app": "applied"}}, "spec": {"containers": [{"name": "main", "image": "nginx:1.25"}]}},
        },
    });
    let params = PatchParams::apply("gantry-test");
    let created = api
        .patch("applied", &params, &Patch::Apply(&applied))
        .await?;
    assert_eq!(created.spec.as_ref().unwrap().replicas, Some(2));
    let managers: Vec<_> = created
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["gantry-test"]);
    let mut again = applied.clone();
    again["spec"]["replicas"] = json!(4);
    let updated = api
        .patch("applied", &params.clone().force(), &Patch::Apply(&again))
        .await?;
    assert_eq!(updated.spec.unwrap().replicas, Some(4));
    assert_eq!(updated.metadata.uid, created.metadata.uid);

    // A field the manager applied before and leaves out now is removed; fields set by
    // others stay.
    let mut labelled = again.clone();
    labelled["metadata"]["labels"] = json!({"keep": "yes", "drop": "soon"});
    api.patch("applied", &params, &Patch::Apply(&labelled))
        .await?;
    api.patch(
        "applied",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"other": "manager"}}})),
    )
    .await?;
    labelled["metadata"]["labels"] = json!({"keep": "yes"});
    let released = api
        .patch("applied", &params, &Patch::Apply(&labelled))
        .await?;
    let labels = released.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("keep").map(String::as_str), Some("yes"));
    assert!(!labels.contains_key("drop"), "{labels:?}");
    let annotations = released.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("other").map(String::as_str),
        Some("manager")
    );
    sim.handle.shutdown().await?;
    Ok(())
}
