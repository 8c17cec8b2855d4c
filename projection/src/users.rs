//! The `users` read model: who can log in, and with which hash.

use events::{Envelope, UserEvent, user::UserCreated};
use futures::{FutureExt, future::BoxFuture};
use tokio_postgres::Statement;

use crate::{DbError, Pool};

#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub username: String,
    pub password_hash: String,
    pub admin: bool,
    pub email: String,
}

pub(crate) struct Statements {
    create: Statement,
}

impl Statements {
    pub(crate) async fn prepare(
        tx: &deadpool_postgres::Transaction<'_>,
    ) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            create: tx
                .prepare_cached(
                    "INSERT INTO users (username, password_hash, admin, email, created_at, last_seq)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (username) DO NOTHING",
                )
                .await?,
        })
    }
}

pub(crate) fn apply<'a>(
    tx: &'a deadpool_postgres::Transaction<'_>,
    statements: &'a Statements,
    seq: u64,
    envelope: &'a Envelope,
    event: &'a UserEvent,
) -> BoxFuture<'a, Result<u64, tokio_postgres::Error>> {
    let seq = seq as i64;
    async move {
        match event {
            UserEvent::UserCreated(UserCreated {
                username,
                password_hash,
                admin,
                email,
                ..
            }) => {
                tx.execute(
                    &statements.create,
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
    .boxed()
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
