//! Benchmark: 1,000 one-replica deployments created concurrently through the kube client,
//! watched by 20 `kube::runtime::watcher`s; measures the time until the deployments are
//! seen Ready (readyReplicas == 1), and the peak RSS.
//!
//! Run: `cargo run --release -p kubesim --example bench [-- DEPLOYMENTS WATCHERS]`

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::mpsc;

const NAMESPACE: &str = "default";

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name, "bench": "yes"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "bench": "yes"}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1.25",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
            },
        },
    }))
    .expect("a valid deployment")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut argv = std::env::args().skip(1);
    let count: usize = argv.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let watchers: usize = argv.next().map(|a| a.parse()).transpose()?.unwrap_or(20);

    let dir = tempfile::tempdir()?;
    let handle = kubesim::start(kubesim::Args {
        kubeconfig: Some(dir.path().join("kubeconfig")),
        ready_ms: 0,
        ..Default::default()
    })
    .await?;
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&handle.kubeconfig)?,
        &KubeConfigOptions::default(),
    )
    .await?;
    let client = Client::try_from(config)?;
    let api = Api::<Deployment>::namespaced(client.clone(), NAMESPACE);

    // Each watcher reports when it has seen every deployment Ready.
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(usize, Instant, u64)>();
    let mut ready_watchers = Vec::new();
    for w in 0..watchers {
        let api = api.clone();
        let done = done_tx.clone();
        let (synced_tx, synced_rx) = tokio::sync::oneshot::channel::<()>();
        ready_watchers.push(synced_rx);
        tokio::spawn(async move {
            let mut ready = HashSet::new();
            let mut events = 0u64;
            let mut synced = Some(synced_tx);
            let stream = watcher(api, watcher::Config::default().labels("bench=yes"));
            let mut stream = Box::pin(stream);
            while let Some(event) = stream.next().await {
                let Ok(event) = event else { continue };
                if let watcher::Event::InitDone = event
                    && let Some(s) = synced.take()
                {
                    let _ = s.send(());
                }
                let obj = match event {
                    watcher::Event::Apply(d) | watcher::Event::InitApply(d) => d,
                    _ => continue,
                };
                events += 1;
                let r = obj
                    .status
                    .as_ref()
                    .and_then(|s| s.ready_replicas)
                    .unwrap_or(0);
                if r == 1 {
                    ready.insert(obj.metadata.name.unwrap_or_default());
                    if ready.len() == count {
                        let _ = done.send((w, Instant::now(), events));
                        return;
                    }
                }
            }
        });
    }
    drop(done_tx);
    for synced in ready_watchers {
        let _ = synced.await;
    }

    let t0 = Instant::now();
    let created: Vec<_> = futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(
                    &PostParams::default(),
                    &deployment(&format!("bench-{i:04}")),
                )
                .await
            }
        })
        .buffer_unordered(64)
        .try_collect()
        .await?;
    let created_in = t0.elapsed();

    let mut first = None;
    let mut last = None;
    let mut events = Vec::new();
    for _ in 0..watchers {
        match tokio::time::timeout(Duration::from_secs(120), done_rx.recv()).await {
            Ok(Some((_, at, n))) => {
                first.get_or_insert(at - t0);
                last = Some(at - t0);
                events.push(n);
            }
            _ => anyhow::bail!("a watcher did not see every deployment ready within 120 s"),
        }
    }
    let first = first.unwrap_or_default();
    let last = last.unwrap_or_default();
    let rss = peak_rss_kib();

    println!("deployments created:                 {}", created.len());
    println!("watchers:                            {watchers}");
    println!(
        "all created (64 requests in flight): {:.2} s",
        created_in.as_secs_f64()
    );
    println!(
        "all Ready, seen by the first watcher: {:.2} s",
        first.as_secs_f64()
    );
    println!(
        "all Ready, seen by every watcher:     {:.2} s",
        last.as_secs_f64()
    );
    println!(
        "events per watcher:                  min {} max {}",
        events.iter().min().unwrap_or(&0),
        events.iter().max().unwrap_or(&0)
    );
    println!(
        "peak RSS (VmHWM, simulator + clients in one process): {:.1} MiB",
        rss as f64 / 1024.0
    );
    println!(
        "watch history bound:                 {} events",
        kubesim::store::HISTORY_LIMIT
    );
    handle.shutdown().await?;
    Ok(())
}
