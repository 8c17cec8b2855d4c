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
//!
//! A login reads the user from the directory itself, and may see a user this table has not
//! caught up with yet (created a moment ago, or by another process): it offers what it read
//! ([`AccessTable::offer`]), and the newer of the two, by the sequence of the user's last
//! event, is kept. So a token is never refused for being younger than the table, and an
//! older read never undoes a newer one (a deletion is remembered by its sequence too).

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAccess {
    pub user_id: String,
    pub number: i64,
    pub username: String,
    pub admin: bool,
    pub status: UserStatus,
    /// Tokens issued at or before this are void.
    pub tokens_revoked_at: Option<DateTime<Utc>>,
    /// The sequence of the user's last event this state includes.
    pub seq: i64,
}

#[derive(Clone, Default)]
pub struct AccessTable {
    inner: Arc<RwLock<State>>,
}

#[derive(Default)]
struct State {
    /// Each user's sequence and state; `None` once deleted.
    by_name: HashMap<String, (i64, Option<UserAccess>)>,
    /// The newest `user_access.last_seq` read.
    seen: i64,
}

impl State {
    /// Keeps `user` (`None`: deleted) as of `seq` unless the table knows a newer state.
    fn keep(&mut self, username: String, seq: i64, user: Option<UserAccess>) {
        let newer = self
            .by_name
            .get(&username)
            .is_none_or(|(known, _)| seq > *known);
        if newer {
            self.by_name.insert(username, (seq, user));
        }
    }
}

impl AccessTable {
    /// The user named `username` as the log last left them; `None` if there is none.
    pub fn get(&self, username: &str) -> Option<UserAccess> {
        let state = self.inner.read().unwrap_or_else(|e| e.into_inner());
        state
            .by_name
            .get(username)
            .and_then(|(_, user)| user.clone())
    }

    /// Keeps `user` if it is newer than what the table holds of them.
    pub fn offer(&self, user: UserAccess) {
        let mut state = self.inner.write().unwrap_or_else(|e| e.into_inner());
        state.keep(user.username.clone(), user.seq, Some(user));
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
            let username: String = row.get(2);
            let seq: i64 = row.get(7);
            state.seen = state.seen.max(seq);
            let user = (!row.get::<_, bool>(6)).then(|| UserAccess {
                user_id: row.get(0),
                number: row.get(1),
                username: username.clone(),
                admin: row.get(3),
                // A status this build does not know fails closed.
                status: UserStatus::parse(row.get(4)).unwrap_or(UserStatus::Disabled),
                tokens_revoked_at: row.get(5),
                seq,
            });
            state.keep(username, seq, user);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn user(seq: i64, admin: bool) -> UserAccess {
        UserAccess {
            user_id: "u".into(),
            number: 1,
            username: "jimmy".into(),
            admin,
            status: UserStatus::Approved,
            tokens_revoked_at: None,
            seq,
        }
    }

    #[test]
    fn the_newer_state_of_a_user_wins() {
        let table = AccessTable::default();
        table.offer(user(5, true));
        table.offer(user(3, false));
        assert_eq!(
            table.get("jimmy"),
            Some(user(5, true)),
            "an older read is ignored"
        );
        table.offer(user(7, false));
        assert_eq!(table.get("jimmy"), Some(user(7, false)));
        {
            let mut state = table.inner.write().unwrap();
            state.keep("jimmy".into(), 8, None);
        }
        table.offer(user(7, true));
        assert_eq!(
            table.get("jimmy"),
            None,
            "a deletion is not undone by an older read"
        );
    }
}
