//! The `gantry` binary's roles: `serve` (the HTTP doors), `project` (the projector),
//! `work` (the workers), and `dev` (all three in one process).
//!
//! Each role runs alone against the same NATS and PostgreSQL, so they scale apart; they
//! share nothing in memory but what [`start`] wires together in one process.

pub mod admin_tools;
pub mod epilogue;
pub mod settings;
pub mod telemetry;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use api::{
    App, LoginThrottle, ThrottlePolicy, Tokens,
    oauth::{Clients, OAuth},
};
use command::{
    JetStreamStore, Repository,
    user::{Details, NewUser, UserCommand},
    values::{Password, Username},
};
use events::{PersonalKeys, user::user_id};
use futures::{Stream, StreamExt};
use projection::{Database, checkpoint::Checkpoints, projector::Projector, registry};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

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
    pub const SERVE_AND_PROJECT: Roles = Roles {
        serve: true,
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
///
/// It stops in two stages, so that a request in hand still sees the roles it relies on:
/// first the doors (no new connections; requests in hand are answered, and in `dev` the
/// projector still runs to show their writes), then the projector (after the batch in
/// hand), the workers (after the event in hand) and the checkpoint follower.
pub struct Running {
    pub http_addr: Option<SocketAddr>,
    stop_doors: CancellationToken,
    stop: CancellationToken,
    doors: JoinSet<()>,
    tasks: JoinSet<()>,
    grace: Duration,
}

/// How a process stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every role finished what it had in hand.
    Clean,
    /// The grace period ran out, or a second signal came: the rest was abandoned.
    Forced,
}

impl Running {
    /// Asks every role to finish what it has in hand, and waits for them at most the grace
    /// period (`GANTRY_SHUTDOWN_GRACE_MS`); what is still running then is dropped.
    pub async fn shutdown(mut self) -> Stopped {
        let grace = self.grace;
        match tokio::time::timeout(grace, self.finish()).await {
            Ok(()) => Stopped::Clean,
            Err(_) => {
                warn!(
                    grace_ms = grace.as_millis() as u64,
                    "work still in hand when the grace period ended; stopping anyway"
                );
                Stopped::Forced
            }
        }
    }

    /// Runs until a role ends by itself or `signals` yields, then shuts down; a second
    /// signal during the shutdown stops at once.
    pub async fn until(mut self, mut signals: impl Stream<Item = ()> + Unpin) -> Stopped {
        tokio::select! {
            Some(()) = signals.next() => info!("stopping: finishing the work in hand"),
            Some(_) = self.doors.join_next() => warn!("the HTTP server ended; stopping"),
            Some(_) = self.tasks.join_next() => warn!("a role ended; stopping"),
            else => info!("nothing left to run; stopping"),
        }
        tokio::select! {
            stopped = self.shutdown() => stopped,
            Some(()) = signals.next() => {
                warn!("second signal: stopping now, abandoning the work in hand");
                Stopped::Forced
            }
        }
    }

    async fn finish(&mut self) {
        self.stop_doors.cancel();
        while self.doors.join_next().await.is_some() {}
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Connects to NATS and PostgreSQL, migrates the instance's schema, and starts `roles`.
/// Adds a token signing key to the instance's secret store (`gantry rotate-token-key`).
/// Every serving process knows it within a minute and signs with it once it is
/// `projection::token_keys::PUBLISHED_FOR` old; tokens signed before stay good until they
/// expire. Returns the new key's id.
pub async fn rotate_token_key(settings: &Settings) -> anyhow::Result<String> {
    settings.validate()?;
    let db = Database::connect(&settings.database_url, &settings.instance)
        .await
        .with_context(|| format!("cannot reach PostgreSQL at {}", settings.database_url))?;
    db.migrate()
        .await
        .context("cannot migrate the read models")?;
    projection::token_keys::rotate(&db.pool)
        .await
        .context("cannot add a token key")
}

/// The instance's log and database, connected and migrated, with its personal keys: what
/// every role and every admin tool starts from.
pub struct Backends {
    pub store: JetStreamStore,
    pub db: Database,
    pub personal_keys: Arc<dyn PersonalKeys>,
    /// The NATS connection itself, for the request/reply services beside the log.
    pub nats: async_nats::Client,
}

pub async fn connect(settings: &Settings) -> anyhow::Result<Backends> {
    settings.validate()?;
    let instance = settings.instance.as_str();
    let nats = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(settings.nats_url.as_str())
        .await
        .with_context(|| format!("cannot reach NATS at {}", settings.nats_url))?;
    let window = Duration::from_secs(settings.duplicate_window_secs.max(1));
    let client = nats.clone();
    let store = JetStreamStore::open(nats, instance, window)
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
    // Personal data is sealed where events become bytes (the store) and opened where bytes
    // become events (the store, the projector), with the instance's key store.
    let personal_keys: Arc<dyn PersonalKeys> =
        Arc::new(projection::personal::KeyStore::new(db.pool.clone()));
    let store = store.with_personal_keys(personal_keys.clone());
    Ok(Backends {
        store,
        db,
        personal_keys,
        nats: client,
    })
}

pub async fn start(settings: &Settings, roles: Roles) -> anyhow::Result<Running> {
    // Before any role starts, so that none of their metrics is lost.
    api::metrics::install();
    let instance = settings.instance.as_str();
    let Backends {
        store,
        db,
        personal_keys,
        nats: charges_client,
    } = connect(settings).await?;

    let stop_doors = CancellationToken::new();
    let stop = CancellationToken::new();
    let mut doors = JoinSet::new();
    let mut tasks = JoinSet::new();
    let checkpoints =
        Checkpoints::with_followers(&registry::registered(), &[projection::access::FOLLOWER]);

    if roles.project {
        let projector = Projector::new(
            db.clone(),
            store.stream().clone(),
            instance,
            checkpoints.clone(),
        )
        .with_personal_keys(personal_keys.clone());
        tasks.spawn(projector.run(registry::registered(), stop.clone()));
    }
    if roles.work {
        let cluster = match &settings.kubeconfig {
            Some(path) => Some(
                workers::Cluster::from_kubeconfig(path, &settings.jobs_namespace)
                    .await
                    .context("cannot reach the Kubernetes cluster")?
                    .with_public_host(settings.jobs_public_host.clone()),
            ),
            None => None,
        };
        tasks.spawn(workers::run(
            store.clone(),
            cluster,
            Arc::new(ParkedEvents(db.pool.clone())),
            stop.clone(),
        ));
    }
    let mut http_addr = None;
    if roles.serve {
        let follower = checkpoints.follow(db.clone(), stop.clone());
        tasks.spawn(async move {
            let _ = follower.await;
        });
        let keys = projection::token_keys::load(&db.pool)
            .await
            .context("cannot load the token signing keys")?;
        let configured_key = settings
            .token_key
            .as_ref()
            .filter(|k| !k.is_empty())
            .map(|k| k.as_bytes().to_vec());
        let access = projection::access::AccessTable::default();
        if let Err(e) = access.refresh(&db.pool).await {
            warn!(error = %e, "cannot read the access table yet; it follows the user directory");
        }
        let follower = access.follow(db.pool.clone(), checkpoints.clone(), stop.clone());
        tasks.spawn(async move {
            let _ = follower.await;
        });
        let app = Arc::new(App {
            store: store.clone(),
            courses: Repository::new(store.clone()),
            jobs: Repository::new(store.clone()),
            images: Repository::new(store.clone()),
            users: Repository::new(store.clone()),
            groups: Repository::new(store.clone()),
            admins: Repository::new(store.clone()),
            db: db.clone(),
            checkpoints: checkpoints.clone(),
            tokens: Tokens::new(instance, &keys, configured_key),
            access,
            logins: LoginThrottle::new(ThrottlePolicy::new(
                settings.login_max_failures,
                Duration::from_millis(settings.login_lockout_ms),
            )),
            read_your_writes: Duration::from_millis(settings.read_your_writes_ms),
            oauth: OAuth::new(
                Clients::parse(settings.oauth_clients.as_deref())?,
                Duration::from_millis(settings.oauth_code_ttl_ms),
            ),
            accounting: api::accounting::Ledger::new(&store, settings.refuse_overdraft()),
        });
        bootstrap_admin(&app, settings).await?;
        tasks.spawn(reload_token_keys(app.clone(), stop.clone()));
        let charges = api::accounting::charge::serve(
            app.clone(),
            charges_client,
            instance.to_string(),
            stop_doors.clone().cancelled_owned(),
        );
        tasks.spawn(async move {
            if let Err(e) = charges.await {
                warn!(error = %e, "the accounting charge service stopped");
            }
        });
        let listener = tokio::net::TcpListener::bind(settings.http_addr)
            .await
            .with_context(|| format!("cannot listen on {}", settings.http_addr))?;
        let addr = listener.local_addr()?;
        info!(%addr, instance, "serving");
        let server = warp::serve(api::routes(app))
            .incoming(listener)
            .graceful(stop_doors.clone().cancelled_owned());
        doors.spawn(server.run());
        http_addr = Some(addr);
    }
    info!(?roles, instance, "started");
    Ok(Running {
        http_addr,
        stop_doors,
        stop,
        doors,
        tasks,
        grace: Duration::from_millis(settings.shutdown_grace_ms),
    })
}

/// Takes the instance's token keys again now and then, so a key added by
/// `gantry rotate-token-key` is known here before any process signs with it
/// (`projection::token_keys::PUBLISHED_FOR`).
async fn reload_token_keys(app: Arc<App>, stop: CancellationToken) {
    const EVERY: Duration = Duration::from_secs(30);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        match projection::token_keys::load(&app.db.pool).await {
            Ok(keys) => app.tokens.reload(&keys),
            Err(e) => warn!(error = %e, "cannot reload the token keys; keeping those in hand"),
        }
    }
}

/// The workers' parked events go to the instance's parked-events record, beside the
/// projections'.
struct ParkedEvents(projection::Pool);

impl workers::ParkingLot for ParkedEvents {
    fn park<'a>(
        &'a self,
        event: &'a workers::Parked,
    ) -> futures::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let record = projection::parked::ParkedEvent {
                consumer: event.consumer.clone(),
                seq: event.seq,
                aggregate: event.aggregate.clone(),
                aggregate_id: event.aggregate_id.clone(),
                event_type: event.event_type.clone(),
                error: event.error.clone(),
            };
            projection::parked::park_in(&self.0, &record)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Creates the admin named by `GANTRY_ADMIN_USER` with `GANTRY_ADMIN_PASSWORD` if there is
/// none of that name yet. An existing user keeps its password. The hash goes to the
/// credential store, never into the event.
async fn bootstrap_admin(app: &App, settings: &Settings) -> anyhow::Result<()> {
    let (Some(username), Some(password)) = (&settings.admin_user, &settings.admin_password) else {
        return Ok(());
    };
    let username = Username::parse(username.as_str()).context("GANTRY_ADMIN_USER")?;
    let password = Password::parse(password.as_str()).context("GANTRY_ADMIN_PASSWORD")?;
    let id = user_id(username.as_str());
    if app.users.load(&id).await?.exists() {
        return Ok(());
    }
    let password_hash = command::password::hash(password.as_str().to_string()).await?;
    let new = NewUser {
        username: username.clone(),
        admin: true,
        virtual_clusters: vec![],
        groups: vec![],
        details: Details::default(),
        credential: None,
    };
    let ctx = command::Context {
        actor: command::actor::system("bootstrap"),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    };
    let written = app
        .write_password(
            &id,
            &password_hash,
            |credential| {
                UserCommand::Create(NewUser {
                    credential: Some(credential),
                    ..new
                })
            },
            &ctx,
        )
        .await;
    match written {
        Ok(_)
        | Err(api::PasswordWriteError::Command(command::CommandError::Domain(
            command::DomainError::AlreadyExists,
        ))) => {
            info!(%username, "bootstrap admin ready");
            Ok(())
        }
        Err(e) => Err(e).context("cannot create the bootstrap admin"),
    }
}
