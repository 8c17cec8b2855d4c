//! The front doors: one warp filter tree per platform, each speaking its own language.
//!
//! A door parses and validates a request, maps it to one command (through [`App::write`]) or
//! one query of the `projection` crate, and answers in its own envelope. Doors share only
//! what is here: the request context, body reading, token checking, CORS and metrics.

pub mod accounting;
pub mod admin;
pub mod auth;
mod body;
mod context;
mod cors;
pub mod courses;
pub mod edge;
mod fallback;
mod input;
pub mod metrics;
pub mod oauth;
pub mod pai;
mod passwords;
pub mod studio;

use std::{convert::Infallible, sync::Arc, time::Duration};

use command::{
    Aggregate, CommandError, JetStreamStore, Outcome, Repository,
    admins::{Admins, SeenAdmin},
    course::Course,
    group::Group,
    images::Images,
    job::Job,
    user::User,
};
use events::DomainEvent;
use projection::{Database, checkpoint::Checkpoints};
use warp::{Filter, Reply};

pub use auth::{AuthError, LoginThrottle, Principal, Session, ThrottlePolicy, Tokens};
pub use context::RequestContext;
pub use passwords::PasswordWriteError;

/// Everything a door needs, shared by every request.
pub struct App {
    pub store: JetStreamStore,
    pub courses: Repository<Course, JetStreamStore>,
    pub jobs: Repository<Job, JetStreamStore>,
    /// The one catalogue of images (`events::images::CATALOGUE`).
    pub images: Repository<Images, JetStreamStore>,
    pub users: Repository<User, JetStreamStore>,
    pub groups: Repository<Group, JetStreamStore>,
    /// The roster that keeps the last admin (`command::admins`).
    pub admins: Repository<Admins, JetStreamStore>,
    pub db: Database,
    pub checkpoints: Checkpoints,
    pub tokens: Tokens,
    /// Every user's role, status and revocation, kept current by the user directory.
    pub access: projection::access::AccessTable,
    /// Failed-login counters, shared by every door that takes a password.
    pub logins: LoginThrottle,
    /// How long a write waits for the read models to show it before answering anyway.
    pub read_your_writes: Duration,
    /// The course door's OAuth2 provider: its clients and code lifetime.
    pub oauth: oauth::OAuth,
    /// The accounting door's aggregates and overdraft policy.
    pub accounting: accounting::Ledger,
}

/// Why a write that also reads or stores something beside the log failed: the command
/// path, or PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Store(#[from] projection::DbError),
}

impl App {
    /// Executes `command` on aggregate `id`, then waits (bounded) until the read models
    /// of that aggregate hold its event, so the caller's next read sees its write.
    pub async fn write<A: Aggregate>(
        &self,
        repository: &Repository<A, JetStreamStore>,
        id: &str,
        command: &A::Command,
        ctx: &command::Context,
    ) -> Result<Outcome, CommandError> {
        let outcome = repository.execute(id, command, ctx).await?;
        self.wait_for_read_models(A::Event::AGGREGATE, outcome.seq)
            .await;
        Ok(outcome)
    }

    /// Executes a user command that may take an admin out of the admins (a demotion, a
    /// disabling audit) through the admins roster, which keeps the last admin
    /// (`command::admins`), then waits for the read models as [`App::write`] does.
    pub async fn write_guarded(
        &self,
        username: &command::values::Username,
        command: &command::user::UserCommand,
        ctx: &command::Context,
    ) -> Result<Outcome, WriteError> {
        let seen: Vec<SeenAdmin> = projection::users::effective_admins(&self.db.pool)
            .await?
            .into_iter()
            .map(|a| SeenAdmin {
                username: a.username,
                release: a.admin_release,
            })
            .collect();
        let id = events::user::user_id(username.as_str());
        let outcome = command::admins::execute_guarded(
            &self.users,
            &self.admins,
            &id,
            username,
            command,
            &seen,
            ctx,
        )
        .await?;
        self.wait_for_read_models(events::UserEvent::AGGREGATE, outcome.seq)
            .await;
        Ok(outcome)
    }

    /// Waits (bounded by `read_your_writes`) until the read models of `aggregate` hold
    /// `seq`; answers anyway after that, with a warning.
    async fn wait_for_read_models(&self, aggregate: &str, seq: u64) {
        if !self
            .checkpoints
            .wait_for(aggregate, seq, self.read_your_writes)
            .await
        {
            tracing::warn!(
                seq,
                "read models did not catch up in time; answering anyway"
            );
        }
    }
}

/// Every door, with `GET /metrics`, CORS and the fallback for unknown paths.
pub fn routes(app: Arc<App>) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    // The accounting door answers OPTIONS itself (DRF's metadata) and lets CORS preflights
    // through, so it comes before them.
    let doors = metrics::route()
        .or(accounting::routes(app.clone()))
        .unify()
        .or(cors::preflight().map(|r| metrics::unrouted(r, "preflight")))
        .unify()
        .or(admin::routes(app.clone()))
        .unify()
        .or(courses::routes(app.clone()))
        .unify()
        .or(oauth::routes(app.clone()))
        .unify()
        .or(pai::routes(app.clone()))
        .unify()
        .or(studio::routes(app.clone()))
        .unify()
        .or(edge::routes(app))
        .unify()
        .recover(|rejection| async move {
            fallback::recover(rejection)
                .await
                .map(|r| metrics::unrouted(r, "unmatched"))
        });
    metrics::count_unrouted(doors)
        .with(warp::reply::with::header(
            "access-control-allow-origin",
            "*",
        ))
        .with(warp::reply::with::header(
            "access-control-expose-headers",
            "X-Request-Id",
        ))
}
