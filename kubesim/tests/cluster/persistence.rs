//! State that survives a restart with `--state-dir`, and the 410 for history that is gone.

use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{PostParams, WatchEvent, WatchParams};

use crate::{client_for, deployment, namespace};

#[tokio::test]
async fn objects_and_the_counter_survive_a_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("state");
    let args = |dir: &tempfile::TempDir| kubesim::Args {
        kubeconfig: Some(dir.path().join("kubeconfig")),
        state_dir: Some(state.clone()),
        ready_ms: 50,
        ..Default::default()
    };

    let first = kubesim::start(args(&dir)).await?;
    let client = client_for(&first.kubeconfig).await?;
    let ns = namespace(&client, "keep").await?;
    let api = Api::<Deployment>::namespaced(client.clone(), &ns);
    let created = api
        .create(&PostParams::default(), &deployment("web", "nginx:1.25", 1))
        .await?;
    let rv_before: u64 = api
        .get("web")
        .await?
        .metadata
        .resource_version
        .unwrap()
        .parse()?;
    first.shutdown().await?;

    let second = kubesim::start(args(&dir)).await?;
    let client = client_for(&second.kubeconfig).await?;
    let api = Api::<Deployment>::namespaced(client.clone(), &ns);
    let restored = api.get("web").await?;
    assert_eq!(restored.metadata.uid, created.metadata.uid);
    let mut changed = restored.clone();
    changed
        .metadata
        .labels
        .get_or_insert_default()
        .insert("after".into(), "restart".into());
    let replaced = api.replace("web", &PostParams::default(), &changed).await?;
    let rv_after: u64 = replaced.metadata.resource_version.unwrap().parse()?;
    assert!(rv_after > rv_before, "{rv_after} <= {rv_before}");

    // The watch history did not survive: an old resourceVersion is Expired.
    let mut events = Box::pin(api.watch(&WatchParams::default().timeout(5), "2").await?);
    match events.try_next().await? {
        Some(WatchEvent::Error(e)) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    second.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_snapshot_is_written_within_seconds_without_a_shutdown() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("state");
    let running = kubesim::start(kubesim::Args {
        kubeconfig: Some(dir.path().join("kubeconfig")),
        state_dir: Some(state.clone()),
        ready_ms: 50,
        ..Default::default()
    })
    .await?;
    let client = client_for(&running.kubeconfig).await?;
    let ns = namespace(&client, "crash").await?;
    // As after a kill -9: only what the periodic snapshot wrote is on disk.
    let file = kubesim::persist::snapshot_path(&state);
    crate::eventually("the snapshot to hold the namespace", || async {
        Ok(std::fs::read_to_string(&file).is_ok_and(|s| s.contains(&ns)))
    })
    .await?;
    let copy = tempfile::tempdir()?;
    std::fs::copy(&file, kubesim::persist::snapshot_path(copy.path()))?;
    let restored = kubesim::persist::load(copy.path())?.expect("a snapshot");
    assert!(
        restored
            .get(kubesim::resources::NAMESPACES, "", &ns)
            .is_some()
    );
    running.shutdown().await?;
    Ok(())
}
