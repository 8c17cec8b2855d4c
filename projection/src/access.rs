//! Who may act right now: every serving process keeps each user's role, status, number and
//! last revocation in memory, so checking a token costs no query, and keeps it current from
//! the user directory.
//!
//! The user directory writes one `user_access` row per user after each of their events
//! (a deleted user's row stays, marked deleted, so every process learns of the deletion).
//! [`AccessTable::follow`] wakes whenever the directory's checkpoint moves and reads the rows
//! written since the newest it holds: one indexed query per batch of the projector, none
//! per request. It then announces the checkpoint it caught up to as [`FOLLOWER`], which a
//! user write waits for (see [`crate::checkpoint`]), so the caller's next request is judged
//! by the state that write left: an admin demoted now is no admin on the next request.
//! While the database is away the table keeps what it had and retries.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use chrono::{DateTime, Utc};
use events::user::UserStatus;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::{DbError, Pool, checkpoint::Checkpoints};

/// The name under which the access table announces how far it is, and the aggregate whose
/// writes wait for it.
pub const FOLLOWER: (&str, &[&str]) = ("user_access", &["user"]);

/// The projection the access table follows.
const SOURCE: &str = "user_directory";

/// What authorization needs to know of a user.
#[derive(Debug, Clone, PartialEq)]
pub struct UserAccess {
    pub user_id: String,
    pub number: i64,
    pub username: String,
    pub admin: bool,
    pub status: UserStatus,
    /// Tokens issued at or before this are void.
    pub tokens_revoked_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Default)]
pub struct AccessTable {
    inner: Arc<RwLock<State>>,
}

#[derive(Default)]
struct State {
    by_name: HashMap<String, UserAccess>,
    /// The newest `user_access.last_seq` read.
    seen: i64,
}

impl AccessTable {
    /// The user named `username` as the log last left them; `None` if there is none.
    pub fn get(&self, username: &str) -> Option<UserAccess> {
        let state = self.inner.read().unwrap_or_else(|e| e.into_inner());
        state.by_name.get(username).cloned()
    }

    /// Reads the rows written since the last refresh.
    pub async fn refresh(&self, pool: &Pool) -> Result<(), DbError> {
        let seen = self.inner.read().unwrap_or_else(|e| e.into_inner()).seen;
        let client = pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT user_id, number, username, admin, status, tokens_revoked_at, deleted,
                        last_seq
                 FROM user_access WHERE last_seq > $1 ORDER BY last_seq",
            )
            .await?;
        let rows = client.query(&statement, &[&seen]).await?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut state = self.inner.write().unwrap_or_else(|e| e.into_inner());
        for row in rows {
            let user_id: String = row.get(0);
            let username: String = row.get(2);
            state.seen = state.seen.max(row.get(7));
            // A row of another user id under a name (never: ids derive from names) or a
            // deletion removes the name.
            state.by_name.remove(&username);
            if row.get::<_, bool>(6) {
                continue;
            }
            state.by_name.insert(
                username.clone(),
                UserAccess {
                    user_id,
                    number: row.get(1),
                    username,
                    admin: row.get(3),
                    // A status this build does not know fails closed.
                    status: UserStatus::parse(row.get(4)).unwrap_or(UserStatus::Disabled),
                    tokens_revoked_at: row.get(5),
                },
            );
        }
        Ok(())
    }

    /// Keeps the table current until `stop`: after each move of the user directory's
    /// checkpoint, reads what changed and announces the checkpoint as [`FOLLOWER`].
    pub fn follow(
        &self,
        pool: Pool,
        checkpoints: Checkpoints,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let Some(mut moved) = checkpoints.subscribe(SOURCE) else {
                warn!("no user directory to follow; the access table stays empty");
                return;
            };
            loop {
                let target = *moved.borrow_and_update();
                match this.refresh(&pool).await {
                    Ok(()) => checkpoints.advance(FOLLOWER.0, target),
                    Err(e) => {
                        warn!(error = %e, "cannot refresh the access table; retrying");
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                        }
                    }
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    changed = moved.changed() => if changed.is_err() { return },
                }
            }
        })
    }
}
