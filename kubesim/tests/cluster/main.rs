//! Integration tests: each starts its own simulator in-process on port 0 and talks to it
//! through the real `kube` client (and raw HTTP for malformed requests).

mod deployments;
mod errors;
mod objects;
mod patches;
mod persistence;
mod scheduling;
mod services;
mod watches;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running simulator and a client for it.
pub struct Sim {
    pub handle: kubesim::Handle,
    pub client: Client,
    pub dir: tempfile::TempDir,
}

impl Sim {
    pub async fn start() -> anyhow::Result<Sim> {
        Self::start_with(|_| {}).await
    }

    /// Starts with a 50 ms ready delay, after `tweak` adjusts the arguments.
    pub async fn start_with(tweak: impl FnOnce(&mut kubesim::Args)) -> anyhow::Result<Sim> {
        let dir = tempfile::tempdir()?;
        let mut args = kubesim::Args {
            kubeconfig: Some(dir.path().join("kubeconfig")),
            ready_ms: 50,
            ..Default::default()
        };
        tweak(&mut args);
        Self::start_in(dir, args).await
    }

    pub async fn start_in(dir: tempfile::TempDir, args: kubesim::Args) -> anyhow::Result<Sim> {
        let handle = kubesim::start(args).await?;
        let client = client_for(&handle.kubeconfig).await?;
        Ok(Sim {
            handle,
            client,
            dir,
        })
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// A raw HTTP request; returns the status code and the body as JSON (or a string).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> anyhow::Result<(u16, Value)> {
        self.raw_accepting(method, path, content_type, "application/json", body)
            .await
    }

    /// Like [`Sim::raw`], with an `Accept` header.
    pub async fn raw_accepting(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        accept: &str,
        body: &[u8],
    ) -> anyhow::Result<(u16, Value)> {
        let mut stream = tokio::net::TcpStream::connect(self.handle.addr()).await?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: kubesim\r\nContent-Type: {content_type}\r\nAccept: {accept}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out)).await??;
        let text = String::from_utf8_lossy(&out).to_string();
        let (head, body) = text.split_once("\r\n\r\n").context("no header end")?;
        let code: u16 = head
            .split_whitespace()
            .nth(1)
            .context("no status")?
            .parse()?;
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        };
        let value = serde_json::from_str(body.trim()).unwrap_or(Value::String(body));
        Ok((code, value))
    }

    /// The current resourceVersion, from a list of namespaces.
    pub async fn resource_version(&self) -> anyhow::Result<u64> {
        let (_, v) = self.raw("GET", "/api/v1/namespaces", "", b"").await?;
        Ok(v["metadata"]["resourceVersion"]
            .as_str()
            .context("no rv")?
            .parse()?)
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

pub async fn client_for(kubeconfig: &std::path::Path) -> anyhow::Result<Client> {
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(kubeconfig)?,
        &KubeConfigOptions::default(),
    )
    .await?;
    Ok(Client::try_from(config)?)
}

/// Polls `check` every 20 ms until it says true, for at most 30 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if check().await? {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A deployment of `replicas` pods running `image`, labelled `app=NAME`.
pub fn deployment(name: &str, image: &str, replicas: i32) -> Deployment {
    deployment_with(name, image, replicas, json!({}))
}

/// Like [`deployment`], with container `resources`.
pub fn deployment_with(name: &str, image: &str, replicas: i32, resources: Value) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image, "resources": resources}]},
            },
        },
    }))
    .expect("a valid deployment")
}

/// Creates a namespace with a unique name.
pub async fn namespace(client: &Client, prefix: &str) -> anyhow::Result<String> {
    use k8s_openapi::api::core::v1::Namespace;
    let name = format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    kube::Api::<Namespace>::all(client.clone())
        .create(&Default::default(), &ns)
        .await?;
    Ok(name)
}

pub fn ready_replicas(d: &Deployment) -> i32 {
    d.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}
