//! The credential store: each password's argon2id hash, under the id of its credential.
//!
//! It is not a read model. The events name a credential (`credential`) and never hold its
//! hash, so the log cannot rebuild this table: no projection writes it (except to move the
//! hash of a version 1 `UserCreated` here, once, see [`adopt_legacy`]) and no rebuild
//! clears it. It lives in the instance's schema beside the read models.
//!
//! **A write either produced its event or it did not.** A command that sets a password is
//! written in this order: the hash is stored under a fresh credential id ([`store`]), then
//! the event naming that id is appended. A login uses only the credential that the user
//! directory holds for the user ([`login_record`]), and the directory takes its credential
//! ids from the log alone, so a stored hash whose event never made it to the log is never
//! used. The writer forgets it when the command is refused or answered from an earlier
//! request; after an outage of the log (the append may have happened) it stays, unused,
//! without harm. Credentials the log retired (a password replaced, a user deleted) are
//! forgotten by the writer after its event ([`forget`]): the hash goes, the id stays.

use uuid::Uuid;

use crate::{DbError, Pool, registry::Tx, secret::Secret};

/// What a login needs to know of a user: their role and status in the user directory, and
/// the hash of their current password (`None`: they have none, or it was retired).
#[derive(Debug, Clone, PartialEq)]
pub struct LoginRecord {
    pub user_id: String,
    pub number: i64,
    pub username: String,
    pub admin: bool,
    pub status: events::user::UserStatus,
    pub tokens_revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The sequence of the user's last event the directory holds.
    pub last_seq: i64,
    pub password_hash: Option<String>,
}

/// Stores `password_hash` for user `user_id` under a fresh credential id, before the event
/// that names it is appended.
pub async fn store(pool: &Pool, user_id: &str, password_hash: &str) -> Result<Uuid, DbError> {
    let client = pool.get().await?;
    let credential = Uuid::new_v4();
    let statement = client
        .prepare_cached(
            "INSERT INTO credentials (credential_id, user_id, password_hash) VALUES ($1, $2, $3)",
        )
        .await?;
    client
        .execute(&statement, &[&credential, &user_id, &Secret(password_hash)])
        .await?;
    Ok(credential)
}

/// Forgets the hashes of `credentials` of user `user_id`: no event that names them will be
/// used to log in. The ids stay (also for ids this store never held), so the hash of an
/// old event is not adopted again.
pub async fn forget(pool: &Pool, user_id: &str, credentials: &[Uuid]) -> Result<(), DbError> {
    if credentials.is_empty() {
        return Ok(());
    }
    let client = pool.get().await?;
    let statement = client
        .prepare_cached(
            "INSERT INTO credentials (credential_id, user_id, password_hash, retired_at)
             SELECT id, $2, NULL, now() FROM UNNEST($1::uuid[]) AS id
             ON CONFLICT (credential_id) DO UPDATE SET password_hash = NULL,
                 retired_at = COALESCE(credentials.retired_at, now())",
        )
        .await?;
    client
        .execute(&statement, &[&credentials, &user_id])
        .await?;
    Ok(())
}

/// Moves the hash of a version 1 `UserCreated` into the store under `credential` (the id
/// its upcast names), inside the user directory's transaction. Only if the id is new: a
/// replay, or a credential retired since, keeps what it has.
pub(crate) async fn adopt_legacy(
    tx: &Tx<'_>,
    credential: Uuid,
    user_id: &str,
    password_hash: &str,
) -> Result<(), tokio_postgres::Error> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO credentials (credential_id, user_id, password_hash) VALUES ($1, $2, $3)
             ON CONFLICT (credential_id) DO NOTHING",
        )
        .await?;
    tx.execute(&statement, &[&credential, &user_id, &Secret(password_hash)])
        .await?;
    Ok(())
}

/// The user `username` as a login sees them. A status the directory does not know is read
/// as disabled, so a login fails closed.
pub async fn login_record(pool: &Pool, username: &str) -> Result<Option<LoginRecord>, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached(
            "SELECT u.user_id, u.number, u.username, u.admin, u.status, c.password_hash,
                    u.tokens_revoked_at, u.last_seq
             FROM users AS u LEFT JOIN credentials AS c ON c.credential_id = u.credential
             WHERE u.username = $1",
        )
        .await?;
    Ok(client
        .query_opt(&statement, &[&username])
        .await?
        .map(|row| LoginRecord {
            user_id: row.get(0),
            number: row.get(1),
            username: row.get(2),
            admin: row.get(3),
            status: events::user::UserStatus::parse(row.get(4))
                .unwrap_or(events::user::UserStatus::Disabled),
            password_hash: row.get(5),
            tokens_revoked_at: row.get(6),
            last_seq: row.get(7),
        }))
}
