//! kubesim: a Kubernetes API server simulator, so that code written against a cluster
//! (the `kube` crate, the official Python client, `kubectl`) runs where no cluster can.
//!
//! It is a real HTTP server speaking the Kubernetes REST and watch protocol for the kinds
//! the project uses: namespaces, nodes, pods, services and persistentvolumeclaims (core
//! `v1`) and deployments (`apps/v1`), with their `status` subresources, deployments'
//! `scale` and pods' `log`. Behind it sit small controllers: a deployment controller, a scheduler that
//! places pods by cpu, memory and GPU, a kubelet that makes bound pods Running and Ready
//! after a delay, garbage collection, namespace termination and eviction from NotReady
//! nodes.
//!
//! What is simplified, on purpose:
//! - Objects are JSON kept in memory under one lock; one resourceVersion counter spans all
//!   kinds. The last [`store::HISTORY_LIMIT`] (10,000) change events are kept for watches; an older
//!   resourceVersion gets a 410 `Expired`.
//! - Pods are owned by their deployment directly (ReplicaSets are not served); they carry
//!   a `pod-template-hash` label as a ReplicaSet's pods would. A rollout creates all new
//!   pods at once and removes old ones as new ones become ready.
//! - Deletion is immediate (no grace period); eviction from a NotReady node is immediate
//!   (no taint toleration window). `ProgressDeadlineExceeded` is reported as soon as a new
//!   pod reaches `ImagePullBackOff` (an image whose name contains `fail`).
//! - Server-side apply merges the applied object like a merge patch and records, per field
//!   manager, the fields it applied (lists owned whole), so a field left out of a later
//!   apply is removed; there are no conflicts between managers. Strategic merge patches
//!   merge the well-known lists (containers, env, ports, volumes, …) by their key.
//! - Discovery is the legacy (non-aggregated) format; the OpenAPI v3 documents list paths
//!   and parameters (enough for kubectl's field validation check) but no detailed schemas,
//!   and `fieldValidation` is not enforced: unknown fields are kept. No authentication, no
//!   TLS. Bodies are JSON or YAML; protobuf bodies are read for what kubectl's imperative
//!   commands send (Namespace, Deployment, Service, Pod, DeleteOptions). Answers are JSON.
//! - A LoadBalancer service gets an ingress address at once. Events are served as a kind;
//!   the simulator writes only Warning events (`FailedScheduling`, `Failed`, `BackOff`).
//!   A pod's `log` is one line for a running container (no process runs).
//! - With `--state-dir`, a snapshot of all objects and the counter is written at most once
//!   a second while something changed, and at shutdown.

pub mod admission;
pub mod api;
pub mod cluster;
pub mod controllers;
pub mod kubeconfig;
pub mod meta;
pub mod ops;
pub mod patch;
pub mod persist;
pub mod quantity;
pub mod resources;
pub mod scheduler;
pub mod selectors;
pub mod store;
pub mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch as signal;
use tokio::task::JoinHandle;

/// Command-line options of `gantry kubesim`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
    /// Where to write the kubeconfig (default: $GANTRY_STATE_DIR/kubeconfig, GANTRY_STATE_DIR defaults to ".gantry").
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// TOML file describing the nodes.
    #[arg(long)]
    pub cluster: Option<PathBuf>,
    /// Directory where objects survive a restart.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// How long a scheduled pod takes to become Ready, in ms.
    #[arg(long, env = "GANTRY_KUBESIM_READY_MS", default_value_t = 500)]
    pub ready_ms: u64,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            kubeconfig: None,
            cluster: None,
            state_dir: None,
            ready_ms: 500,
        }
    }
}

/// Why the simulator could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write the kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the cluster file {path}: {message}")]
    ClusterFile { path: PathBuf, message: String },
    #[error("state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("snapshot {path} is unreadable: {message}")]
    Snapshot { path: PathBuf, message: String },
    #[error("waiting for a signal failed: {0}")]
    Signal(std::io::Error),
}

/// A running simulator. Dropping it does not stop it; call [`Handle::shutdown`].
#[derive(Debug)]
pub struct Handle {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// Where the kubeconfig was written.
    pub kubeconfig: PathBuf,
    addr: SocketAddr,
    store: Arc<store::Store>,
    state_dir: Option<PathBuf>,
    stop: signal::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Handle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving (watches end, connections close), stops the controllers and writes
    /// the last snapshot to the state directory.
    pub async fn shutdown(self) -> Result<(), Error> {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        if let Some(dir) = &self.state_dir {
            let store = self.store.clone();
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || persist::save(&store, &dir))
                .await
                .map_err(|e| Error::Snapshot {
                    path: PathBuf::from("state"),
                    message: e.to_string(),
                })??;
        }
        Ok(())
    }
}

/// Binds, writes the kubeconfig, starts the controllers, and returns at once.
pub async fn start(args: Args) -> Result<Handle, Error> {
    let nodes = match &args.cluster {
        Some(path) => cluster::load(path)?,
        None => cluster::default_nodes(),
    };
    let restored = match &args.state_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| Error::StateDir {
                path: dir.clone(),
                source,
            })?;
            persist::load(dir)?
        }
        None => None,
    };
    let fresh = restored.is_none();
    let mut state = restored.unwrap_or_default();
    cluster::bootstrap(&mut state, &nodes, fresh);
    state.dirty = true;
    let store = store::Store::new(state);

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|source| Error::Bind {
            addr: args.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: args.addr,
        source,
    })?;
    let kubeconfig = args
        .kubeconfig
        .clone()
        .unwrap_or_else(kubeconfig::default_path);
    kubeconfig::write(&kubeconfig, addr)?;

    let (stop, stopped) = signal::channel(false);
    let ctx = Arc::new(api::Ctx {
        store: store.clone(),
        addr,
        shutdown: stopped.clone(),
    });
    let mut tasks = vec![
        tokio::spawn(api::serve(listener, ctx)),
        tokio::spawn(controllers::run(
            store.clone(),
            Duration::from_millis(args.ready_ms),
            stopped.clone(),
        )),
    ];
    if let Some(dir) = &args.state_dir {
        tasks.push(tokio::spawn(persist::run(
            store.clone(),
            dir.clone(),
            stopped,
        )));
    }
    tracing::info!(%addr, kubeconfig = %kubeconfig.display(), "kubesim started");
    Ok(Handle {
        url: format!("http://{addr}"),
        kubeconfig,
        addr,
        store,
        state_dir: args.state_dir,
        stop,
        tasks,
    })
}

/// Starts, prints where it listens, serves until SIGTERM or ctrl-c, then shuts down.
pub async fn run(args: Args) -> Result<(), Error> {
    let handle = start(args).await?;
    println!("kubesim listening on {}", handle.url);
    println!("kubeconfig: {}", handle.kubeconfig.display());
    wait_for_signal().await?;
    handle.shutdown().await
}

#[cfg(unix)]
async fn wait_for_signal() -> Result<(), Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signal)?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.map_err(Error::Signal),
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> Result<(), Error> {
    tokio::signal::ctrl_c().await.map_err(Error::Signal)
}

/// Resolves once the stop signal turns true (or its sender is gone).
pub(crate) async fn stopped(rx: &mut signal::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await.map(|_| ());
}
