//! Watches: `runtime::watcher` across re-watches, `await_condition`, raw watch lines,
//! bookmarks and timeouts.

use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, watcher};

use crate::{Sim, deployment, namespace};

#[tokio::test]
async fn watcher_keeps_seeing_changes_across_rewatches() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    let ns = namespace(&sim.client, "watch").await?;
    let api = Api::<Deployment>::namespaced(sim.client.clone(), &ns);
    // Each watch request times out after 1 s, so the watcher re-watches from its last
    // resourceVersion several times during the test.
    let stream = watcher(api.clone(), watcher::Config::default().timeout(1)).applied_objects();
    let mut stream = Box::pin(stream);
    api.create(
        &PostParams::default(),
        &deployment("first", "nginx:1.25", 1),
    )
    .await?;
    let mut seen = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut created_second = false;
    while seen.len() < 2 {
        let next = tokio::time::timeout_at(deadline, stream.try_next()).await??;
        let Some(d) = next else { break };
        seen.insert(d.metadata.name.clone().unwrap_or_default());
        if !created_second && seen.contains("first") {
            // Wait past a watch timeout before the next change.
            tokio::time::sleep(Duration::from_millis(2500)).await;
            api.create(
                &PostParams::default(),
                &deployment("second", "nginx:1.25", 1),
            )
            .await?;
            created_second = true;
        }
    }
    assert!(
        seen.contains("first") && seen.contains("second"),
        "{seen:?}"
    );
    sim.handle.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn await_condition_sees_a_deployment_complete() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    let ns = namespace(&sim.client, "await").await?;
    let api = Api::<Deployment>::namespaced(sim.client.clone(), &ns);
    api.create(&PostParams::default(), &deployment("web", "nginx:1.25", 2))
        .await?;
    let done = tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(api.clone(), "web", conditions::is_deployment_completed()),
    )
    .await??;
    let status = done.and_then(|d| d.status).expect("a status");
    assert_eq!(status.ready_replicas, Some(2));
    assert_eq!(status.available_replicas, Some(2));
    assert_eq!(status.updated_replicas, Some(2));
    let pods = Api::<Pod>::namespaced(sim.client.clone(), &ns);
    let pod = pods.list(&ListParams::default()).await?.items.remove(0);
    let cs = &pod.status.unwrap().container_statuses.unwrap()[0];
    assert!(cs.ready && cs.started == Some(true) && cs.state.as_ref().unwrap().running.is_some());
    sim.handle.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn watch_replays_from_a_resource_version_and_ends_at_its_timeout() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    let ns = namespace(&sim.client, "replay").await?;
    let api = Api::<Deployment>::namespaced(sim.client.clone(), &ns);
    let list = api.list(&ListParams::default()).await?;
    let from = list.metadata.resource_version.unwrap();
    api.create(&PostParams::default(), &deployment("web", "nginx:1.25", 1))
        .await?;
    let started = tokio::time::Instant::now();
    let events: Vec<_> = api
        .watch(&WatchParams::default().timeout(2), &from)
        .await?
        .try_collect()
        .await?;
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        matches!(events.first(), Some(WatchEvent::Added(d)) if d.metadata.name.as_deref() == Some("web"))
    );
    assert!(events.iter().any(|e| matches!(e, WatchEvent::Modified(_))));

    // All namespaces, raw: one JSON object per line.
    let (code, body) = sim
        .raw(
            "GET",
            &format!(
                "/apis/apps/v1/deployments?watch=true&resourceVersion={from}&timeoutSeconds=1"
            ),
            "",
            b"",
        )
        .await?;
    assert_eq!(code, 200);
    let text = body
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| body.to_string());
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap_or("{}"))?;
    assert_eq!(first["type"], "ADDED");
    sim.handle.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_streaming_list_watcher_gets_its_initial_events_then_changes() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    let ns = namespace(&sim.client, "stream").await?;
    let api = Api::<Deployment>::namespaced(sim.client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &deployment("before", "nginx:1.25", 1),
    )
    .await?;
    let mut stream = Box::pin(watcher(
        api.clone(),
        watcher::Config::default().streaming_lists(),
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut initial = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, stream.try_next()).await?? {
            Some(watcher::Event::InitApply(d)) => initial.push(d.metadata.name.unwrap_or_default()),
            Some(watcher::Event::InitDone) => break,
            Some(_) => {}
            None => anyhow::bail!("watch ended"),
        }
    }
    assert_eq!(initial, ["before"]);
    api.create(
        &PostParams::default(),
        &deployment("after", "nginx:1.25", 1),
    )
    .await?;
    loop {
        match tokio::time::timeout_at(deadline, stream.try_next()).await?? {
            Some(watcher::Event::Apply(d)) if d.metadata.name.as_deref() == Some("after") => break,
            Some(_) => {}
            None => anyhow::bail!("watch ended"),
        }
    }
    sim.handle.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn an_object_leaving_a_filtered_watch_is_deleted_from_it() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    let ns = namespace(&sim.client, "leave").await?;
    let pods = Api::<Pod>::namespaced(sim.client.clone(), &ns);
    let from = pods
        .list(&ListParams::default())
        .await?
        .metadata
        .resource_version
        .unwrap();
    Api::<Deployment>::namespaced(sim.client.clone(), &ns)
        .create(&PostParams::default(), &deployment("web", "nginx:1.25", 1))
        .await?;
    // Watching Pending pods: the pod is ADDED, then DELETED from the watch once Running.
    let mut events = Box::pin(
        pods.watch(
            &WatchParams::default()
                .fields("status.phase=Pending")
                .timeout(20),
            &from,
        )
        .await?,
    );
    let mut kinds = Vec::new();
    while let Some(e) = tokio::time::timeout(Duration::from_secs(30), events.try_next()).await?? {
        match e {
            WatchEvent::Added(_) => kinds.push("ADDED"),
            WatchEvent::Modified(_) => kinds.push("MODIFIED"),
            WatchEvent::Deleted(p) => {
                assert_eq!(p.status.unwrap().phase.as_deref(), Some("Running"));
                kinds.push("DELETED");
                break;
            }
            _ => {}
        }
    }
    assert_eq!(kinds.first(), Some(&"ADDED"));
    assert_eq!(kinds.last(), Some(&"DELETED"));
    sim.handle.shutdown().await?;
    Ok(())
}
