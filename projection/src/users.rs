//! The `users` read model: who can log in, and with which hash.

use events::{Envelope, UserEvent, user::UserCreated};

use crate::{DbError, Pool};

#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub username: String,
    pub password_hash: String,
    pub admin: bool,
    pub email: String,
}

const INSERT: &str =
    "INSERT INTO users (username, password_hash, admin, email, created_at, last_seq)
                      VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (username) DO NOTHING";

/// Writes a batch of user events, one statement each, sent together (users are few).
pub(crate) async fn apply_batch(
    tx: &deadpool_postgres::Transaction<'_>,
    events: Vec<(u64, &Envelope, &UserEvent)>,
) -> Result<(), tokio_postgres::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let insert = tx.prepare_cached(INSERT).await?;
    let writes = events.into_iter().map(|(seq, envelope, event)| {
        let insert = &insert;
        async move {
            let seq = seq as i64;
            match event {
                UserEvent::UserCreated(UserCreated {
                    username,
                    password_hash,
                    admin,
                    email,
                    ..
                }) => {
                    tx.execute(
                        insert,
                        &[
                            username,
                            password_hash,
                            admin,
                            email,
                            &envelope.meta.occurred_at,
                            &seq,
                        ],
                    )
                    .await
                }
            }
        }
    });
    futures::future::try_join_all(writes).await?;
    Ok(())
}

pub async fn user_by_name(pool: &Pool, username: &str) -> Result<Option<UserRow>, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached(
            "SELECT username, password_hash, admin, email FROM users WHERE username = $1",
        )
        .await?;
    Ok(client
        .query_opt(&statement, &[&username])
        .await?
        .map(|row| UserRow {
            username: row.get(0),
            password_hash: row.get(1),
            admin: row.get(2),
            email: row.get(3),
        }))
}
