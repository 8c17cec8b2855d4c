//! The `users` read model: who can log in, and with which hash.

use events::{DomainEvent, Event, UserEvent, user::UserCreated};
use futures::future::BoxFuture;

use crate::{
    DbError, Pool,
    registry::{Applied, Projection, Tx},
};

#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub username: String,
    pub password_hash: String,
    pub admin: bool,
    pub email: String,
}

/// The `users` table: who can log in.
pub struct UserDirectory;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS users (
        username      text PRIMARY KEY,
        password_hash text NOT NULL,
        admin         boolean NOT NULL,
        email         text NOT NULL,
        created_at    timestamptz NOT NULL,
        last_seq      bigint NOT NULL
    );";

const INSERT: &str =
    "INSERT INTO users (username, password_hash, admin, email, created_at, last_seq)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (username) DO NOTHING";

impl Projection for UserDirectory {
    fn name(&self) -> &'static str {
        "user_directory"
    }

    fn aggregates(&self) -> &'static [&'static str] {
        &[UserEvent::AGGREGATE]
    }

    fn schema(&self) -> &'static str {
        SCHEMA
    }

    fn apply<'a>(
        &'a self,
        tx: &'a Tx<'a>,
        events: &'a [Applied],
    ) -> BoxFuture<'a, Result<(), tokio_postgres::Error>> {
        Box::pin(apply_batch(tx, events))
    }
}

/// Writes a batch of user events, one statement each, sent together (users are few).
async fn apply_batch(tx: &Tx<'_>, events: &[Applied]) -> Result<(), tokio_postgres::Error> {
    let insert = tx.prepare_cached(INSERT).await?;
    let writes = events.iter().filter_map(|applied| {
        let Event::User(UserEvent::UserCreated(UserCreated {
            username,
            password_hash,
            admin,
            email,
            ..
        })) = &applied.event
        else {
            return None;
        };
        let insert = &insert;
        Some(async move {
            let seq = applied.seq as i64;
            tx.execute(
                insert,
                &[
                    username,
                    password_hash,
                    admin,
                    email,
                    &applied.envelope.meta.occurred_at,
                    &seq,
                ],
            )
            .await
        })
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
