//! The `gantry` binary's roles: `serve` (the HTTP doors), `project` (the projector),
//! `work` (the workers), and `dev` (all three in one process).
//!
//! Each role runs alone against the same NATS and PostgreSQL, so they scale apart; they
//! share nothing in memory but what [`start`] wires together in one process.

pub mod settings;
pub mod telemetry;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use api::{App, Tokens};
use command::{JetStreamStore, Repository, user::UserCommand};
use events::user::{UserCreated, user_id};
use projection::{Database, checkpoint::Checkpoints, projector::Projector};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use settings::Settings;

/// Which roles one process plays.
#[derive(Debug, Clone, Copy)]
pub struct Roles {
    pub serve: bool,
    pub project: bool,
    pub work: bool,
}

impl Roles {
    pub const DEV: Roles = Roles {
        serve: true,
        project: true,
        work: true,
    };
    pub const SERVE: Roles = Roles {
        serve: true,
        project: false,
        work: false,
    };
    pub const PROJECT: Roles = Roles {
        serve: false,
        project: true,
        work: false,
    };
    pub const WORK: Roles = Roles {
        serve: false,
        project: false,
        work: true,
    };
}

/// A started process: its HTTP address (when it serves) and its tasks.
pub struct Running {
    pub http_addr: Option<SocketAddr>,
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

impl Running {
    /// Asks every role to finish what it has in hand, and waits for them.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Runs until a role ends by itself or `signal` fires, then shuts down.
    pub async fn until(mut self, signal: impl Future<Output = ()>) {
        tokio::select! {
            _ = signal => info!("stopping"),
            _ = self.tasks.join_next() => info!("a role ended; stopping"),
        }
        self.shutdown().await
    }
}

/// Connects to NATS and PostgreSQL, migrates the instance's schema, and starts `roles`.
pub async fn start(settings: &Settings, roles: Roles) -> anyhow::Result<Running> {
    settings.validate()?;
    // Before any role starts, so that none of their metrics is lost.
    api::metrics::install();
    let instance = settings.instance.as_str();
    let nats = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(settings.nats_url.as_str())
        .await
        .with_context(|| format!("cannot reach NATS at {}", settings.nats_url))?;
    let store = JetStreamStore::open(nats, instance)
        .await
        .with_context(|| {
            format!("cannot open the event stream of instance {instance} (is JetStream enabled?)")
        })?;
    let db = Database::connect(&settings.database_url, instance)
        .await
        .with_context(|| format!("cannot reach PostgreSQL at {}", settings.database_url))?;
    db.migrate()
        .await
        .context("cannot migrate the read models")?;

    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let checkpoints = Checkpoints::default();

    if roles.project {
        let projector = Projector::new(
            db.clone(),
            store.stream().clone(),
            store.all_subjects(),
            checkpoints.clone(),
        );
        tasks.spawn(projector.run(stop.clone()));
    }
    if roles.work {
        let cluster = match &settings.kubeconfig {
            Some(path) => Some(
                workers::Cluster::from_kubeconfig(path, &settings.jobs_namespace)
                    .await
                    .context("cannot reach the Kubernetes cluster")?,
            ),
            None => None,
        };
        tasks.spawn(workers::run(
            store.stream().clone(),
            instance.to_string(),
            cluster,
            stop.clone(),
        ));
    }
    let mut http_addr = None;
    if roles.serve {
        let follower = checkpoints.follow(db.clone(), stop.clone());
        tasks.spawn(async move {
            let _ = follower.await;
        });
        let key = projection::signing_key::signing_key(&db.pool)
            .await
            .context("cannot load the token signing key")?;
        let app = Arc::new(App {
            courses: Repository::new(store.clone()),
            users: Repository::new(store.clone()),
            db: db.clone(),
            checkpoints: checkpoints.clone(),
            tokens: Tokens::new(&key),
            read_your_writes: Duration::from_millis(settings.read_your_writes_ms),
        });
        bootstrap_admin(&app, settings).await?;
        let listener = tokio::net::TcpListener::bind(settings.http_addr)
            .await
            .with_context(|| format!("cannot listen on {}", settings.http_addr))?;
        let addr = listener.local_addr()?;
        info!(%addr, instance, "serving");
        let server = warp::serve(api::routes(app))
            .incoming(listener)
            .graceful(stop.clone().cancelled_owned());
        tasks.spawn(server.run());
        http_addr = Some(addr);
    }
    Ok(Running {
        http_addr,
        stop,
        tasks,
    })
}

/// Creates the admin named by `GANTRY_ADMIN_USER` with `GANTRY_ADMIN_PASSWORD` if there is
/// none of that name yet. An existing user keeps its password.
async fn bootstrap_admin(app: &App, settings: &Settings) -> anyhow::Result<()> {
    let (Some(username), Some(password)) = (&settings.admin_user, &settings.admin_password) else {
        return Ok(());
    };
    let id = user_id(username);
    if app.users.load(&id).await?.created.is_some() {
        return Ok(());
    }
    let password = password.clone();
    let password_hash =
        tokio::task::spawn_blocking(move || command::password::hash(&password)).await??;
    let command = UserCommand::Create(UserCreated {
        username: username.clone(),
        password_hash,
        admin: true,
        email: String::new(),
        virtual_clusters: vec![],
        extension: Default::default(),
    });
    let ctx = command::Context {
        actor: "system:bootstrap".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        idempotency_key: None,
    };
    match app.write(&app.users, &id, &command, &ctx).await {
        Ok(_) | Err(command::CommandError::Domain(command::DomainError::AlreadyExists)) => {
            info!(%username, "bootstrap admin ready");
            Ok(())
        }
        Err(e) => Err(e).context("cannot create the bootstrap admin"),
    }
}
