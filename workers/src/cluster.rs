//! The Kubernetes cluster the workers drive, reached through the real `kube` client.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot read kubeconfig {path}: {reason}")]
    Kubeconfig { path: String, reason: String },
    #[error("kubernetes: {0}")]
    Api(#[from] kube::Error),
}

/// A client, the namespace where jobs live, and the host their endpoints are reached at.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    pub namespace: String,
    /// `GANTRY_JOBS_PUBLIC_HOST`: the host of every job endpoint; `None`, the address of the
    /// node the job's pod runs on.
    pub public_host: Option<String>,
}

impl Cluster {
    /// Connects with the kubeconfig at `path` (its current context).
    pub async fn from_kubeconfig(path: &Path, namespace: &str) -> Result<Self, ClusterError> {
        let error = |reason: String| ClusterError::Kubeconfig {
            path: path.display().to_string(),
            reason,
        };
        let kubeconfig = Kubeconfig::read_from(path).map_err(|e| error(e.to_string()))?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| error(e.to_string()))?;
        Ok(Self {
            client: kube::Client::try_from(config)?,
            namespace: namespace.to_string(),
            public_host: None,
        })
    }

    /// Endpoints are reached at `host` rather than at the node's address.
    pub fn with_public_host(mut self, host: Option<String>) -> Self {
        self.public_host = host.filter(|h| !h.is_empty());
        self
    }
}
