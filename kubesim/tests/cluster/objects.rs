//! Every verb through `kube::Api`, selectors, paging and namespaces.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};

use crate::{Sim, deployment, eventually, namespace, ready_replicas};

#[tokio::test]
async fn a_fresh_cluster_has_nodes_namespaces_and_dataset_claims() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    let nodes = Api::<Node>::all(sim.client.clone())
        .list(&ListParams::default())
        .await?;
    assert_eq!(nodes.items.len(), 2);
    for node in &nodes.items {
        let status = node.status.as_ref().unwrap();
        assert_eq!(
            status.allocatable.as_ref().unwrap()["nvidia.com/gpu"].0,
            "4"
        );
    }
    let namespaces = Api::<Namespace>::all(sim.client.clone())
        .list(&ListParams::default())
        .await?;
    let names: Vec<_> = namespaces
        .items
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    assert!(names.contains(&"default".to_string()) && names.contains(&"kube-system".to_string()));
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(sim.client.clone(), "default")
        .list(&ListParams::default())
        .await?;
    let mut claims: Vec<_> = pvcs
        .items
        .iter()
        .map(|p| {
            (
                p.metadata.name.clone().unwrap(),
                p.status.as_ref().unwrap().phase.clone().unwrap(),
            )
        })
        .collect();
    claims.sort();
    assert_eq!(
        claims,
        vec![
            ("dataset-caltech256".to_string(), "Bound".to_string()),
            ("dataset-cifar-10".to_string(), "Bound".to_string()),
            ("dataset-mnist".to_string(), "Bound".to_string()),
        ]
    );
    sim.handle.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn every_verb_on_deployments() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    let ns = namespace(&sim.client, "verbs").await?;
    let api = Api::<Deployment>::namespaced(sim.client.clone(), &ns);

    let created = api
        .create(&PostParams::default(), &deployment("web", "nginx:1.25", 1))
        .await?;
    let meta = &created.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));
    let rv1: u64 = meta.resource_version.as_deref().unwrap().parse()?;

    let again = api
        .create(&PostParams::default(), &deployment("web", "nginx:1.25", 1))
        .await;
    assert!(
        matches!(again, Err(kube::Error::Api(ref s)) if s.reason == "AlreadyExists" && s.code == 409)
    );

    let got = api.get("web").await?;
    assert_eq!(got.metadata.uid, created.metadata.uid);

    let mut changed = got.clone();
    changed.spec.as_mut().unwrap().replicas = Some(2);
    let replaced = api.replace("web", &PostParams::default(), &changed).await?;
    assert_eq!(replaced.metadata.generation, Some(2));
    let rv2: u64 = replaced
        .metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()?;
    assert!(rv2 > rv1);

    // The old resourceVersion is stale now.
    let stale = api.replace("web", &PostParams::default(), &changed).await;
    assert!(
        matches!(stale, Err(kube::Error::Api(ref s)) if s.reason == "Conflict" && s.code == 409)
    );

    let mut named = deployment("", "nginx:1.25", 1);
    named.metadata.name = None;
    named.metadata.generate_name = Some("gen-".into());
    let generated = api.create(&PostParams::default(), &named).await;
    // The selector is app= (empty name): still valid, and the name is generated.
    let generated = generated?;
    assert!(
        generated
            .metadata
            .name
            .as_deref()
            .unwrap()
            .starts_with("gen-")
    );

    eventually("two ready replicas", || async {
        Ok(ready_replicas(&api.get("web").await?) == 2)
    })
    .await?;
    let status = api.get_status("web").await?;
    assert_eq!(status.status.unwrap().observed_generation, Some(2));

    let scale = api.get_scale("web").await?;
    assert_eq!(scale.spec.unwrap().replicas, Some(2));

    // The status subresource: a patch changes only the status (which the controller
    // then puts back), a change elsewhere in the body is ignored.
    let patched = api
        .patch_status(
            "web",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"metadata": {"labels": {"ignored": "yes"}}, "status": {"observedGeneration": 99}})),
        )
        .await?;
    assert_eq!(patched.status.unwrap().observed_generation, Some(99));
    assert!(
        !patched
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key("ignored")
    );
    eventually("status put back", || async {
        Ok(api
            .get_status("web")
            .await?
            .status
            .unwrap_or_default()
            .observed_generation
            == Some(2))
    })
    .await?;
    let current = api.get_status("web").await?;
    let replaced = api
        .replace_status("web", &PostParams::default(), &current)
        .await?;
    assert_eq!(replaced.metadata.uid, created.metadata.uid);

    api.delete("web", &DeleteParams::default()).await?;
    eventually("web gone", || async {
        Ok(api.get_opt("web").await?.is_none())
    })
    .await?;
    let missing = api.get("web").await;
    assert!(
        matches!(missing, Err(kube::Error::Api(ref s)) if s.code == 404 && s.reason == "NotFound")
    );

    // delete_collection by label.
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app="),
    )
    .await?;
    assert!(api.list(&ListParams::default()).await?.items.is_empty());
    sim.handle.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn lists_filter_by_selectors_and_page() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    let a = namespace(&sim.client, "sel-a").await?;
    let b = namespace(&sim.client, "sel-b").await?;
    for (ns, name, tier) in [
        (&a, "one", "front"),
        (&a, "two", "back"),
        (&b, "three", "front"),
    ] {
        let mut d = deployment(name, "nginx:1.25", 1);
        d.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("tier".into(), tier.into());
        Api::<Deployment>::namespaced(sim.client.clone(), ns)
            .create(&PostParams::default(), &d)
            .await?;
    }
    let all = Api::<Deployment>::all(sim.client.clone());
    let names = |l: kube::api::ObjectList<Deployment>| {
        let mut n: Vec<String> = l
            .items
            .into_iter()
            .filter_map(|d| d.metadata.name)
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("tier=front"))
                .await?
        ),
        ["one", "three"]
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("tier==back"))
                .await?
        ),
        ["two"]
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("tier!=front"))
                .await?
        ),
        ["two"]
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("app in (one,three),tier"))
                .await?
        ),
        ["one", "three"]
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("app notin (one)"))
                .await?
        ),
        ["three", "two"]
    );
    assert_eq!(
        names(all.list(&ListParams::default().labels("!tier")).await?).len(),
        0
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().fields("metadata.name=two"))
                .await?
        ),
        ["two"]
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().fields(&format!("metadata.namespace={b}")))
                .await?
        ),
        ["three"]
    );

    // Paging: one at a time, following `continue`.
    let mut seen = Vec::new();
    let mut params = ListParams::default().limit(1);
    loop {
        let page = all.list(&params).await?;
        assert!(page.items.len() <= 1);
        seen.extend(page.items.into_iter().filter_map(|d| d.metadata.name));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => {
                params = ListParams::default().limit(1).continue_token(&token)
            }
            _ => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["one", "three", "two"]);

    // Pods across namespaces, by node and phase.
    let pods = Api::<Pod>::all(sim.client.clone());
    eventually("three running pods", || async {
        Ok(pods
            .list(&ListParams::default().fields("status.phase=Running"))
            .await?
            .items
            .len()
            == 3)
    })
    .await?;
    let on_nodes: usize = {
        let mut n = 0;
        for node in ["gpu-node-1", "gpu-node-2"] {
            n += pods
                .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
                .await?
                .items
                .len();
        }
        n
    };
    assert_eq!(on_nodes, 3);
    sim.handle.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_deleted_namespace_terminates_then_disappears_with_its_objects() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    let ns = namespace(&sim.client, "doomed").await?;
    let deployments = Api::<Deployment>::namespaced(sim.client.clone(), &ns);
    deployments
        .create(&PostParams::default(), &deployment("web", "nginx:1.25", 2))
        .await?;
    let pods = Api::<Pod>::namespaced(sim.client.clone(), &ns);
    eventually("two pods", || async {
        Ok(pods.list(&ListParams::default()).await?.items.len() == 2)
    })
    .await?;

    let namespaces = Api::<Namespace>::all(sim.client.clone());
    let deleted = namespaces.delete(&ns, &DeleteParams::default()).await?;
    let phase = deleted.left().and_then(|n| n.status).and_then(|s| s.phase);
    assert_eq!(phase.as_deref(), Some("Terminating"));
    eventually("namespace gone", || async {
        Ok(namespaces.get_opt(&ns).await?.is_none())
    })
    .await?;
    assert!(pods.list(&ListParams::default()).await?.items.is_empty());
    assert!(
        deployments
            .list(&ListParams::default())
            .await?
            .items
            .is_empty()
    );

    // Creating in a missing namespace is a 404.
    let late = deployments
        .create(&PostParams::default(), &deployment("late", "nginx:1.25", 1))
        .await;
    assert!(matches!(late, Err(kube::Error::Api(ref s)) if s.code == 404));
    sim.handle.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn kubectl_protobuf_bodies_create_objects() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    // `kubectl create namespace foo`, as kubectl 1.32 sends it.
    let body: Vec<u8> = (0..108)
        .step_by(2)
        .map(|i| u8::from_str_radix(&"6b3873000a0f0a02763112094e616d657370616365121b0a130a03666f6f12001a0022002a0032003800420012001a020a001a002200"[i..i + 2], 16))
        .collect::<Result<_, _>>()?;
    let (code, v) = sim
        .raw(
            "POST",
            "/api/v1/namespaces?fieldManager=kubectl-create&fieldValidation=Strict",
            "application/vnd.kubernetes.protobuf",
            &body,
        )
        .await?;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["metadata"]["name"], "foo");
    assert_eq!(v["status"]["phase"], "Active");
    let ns = Api::<Namespace>::all(sim.client.clone()).get("foo").await?;
    assert!(ns.metadata.uid.is_some());
    sim.handle.shutdown().await?;
    Ok(())
}
