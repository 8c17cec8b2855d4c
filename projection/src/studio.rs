//! The studio door's secrets and mail: one-time codes (password-reset codes, e-mail
//! confirmation keys) and the outbox.
//!
//! Like [`crate::credentials`], this is not a read model: a code is a secret, so it is never
//! part of an event, and the log cannot rebuild it. Only each code's SHA-256 is stored
//! (computed by PostgreSQL, `sha256`), so a copy of the table opens no account; the code
//! itself exists only in the mail that carries it. A code works until it expires or is used,
//! once ([`consume`]). Codes and mail bodies are passed to PostgreSQL as parameters that
//! print as `<secret>`, so the driver's debug log shows neither.
//!
//! No mail server is configured, so mail goes to the `outbox` table: a code and the mail
//! that carries it are written in one transaction ([`issue`]), so neither exists without
//! the other.

use chrono::{DateTime, Utc};
use events::user::UserStatus;
use rand::RngCore;

use crate::{DbError, Pool, secret::Secret};

/// What a code is for; a code of one purpose never works for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    PasswordReset,
    EmailConfirmation,
}

impl CodePurpose {
    fn as_str(self) -> &'static str {
        match self {
            CodePurpose::PasswordReset => "password_reset",
            CodePurpose::EmailConfirmation => "email_confirmation",
        }
    }
}

/// A mail for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub recipient: String,
    pub subject: String,
    pub body: String,
}

/// A code that was valid when it was used: whose it was, and the address it was sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedCode {
    pub user_id: String,
    pub email: String,
}

/// A fresh code: 32 random bytes as 64 hex digits.
fn fresh_code() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Issues a code of `purpose` for user `user_id` at `email`, valid for `lifetime`, and puts
/// the mail `compose` makes of it into the outbox, in one transaction (which also drops the
/// codes that expired unused).
pub async fn issue(
    pool: &Pool,
    purpose: CodePurpose,
    user_id: &str,
    email: &str,
    lifetime: chrono::Duration,
    compose: impl FnOnce(&str) -> Mail,
) -> Result<(), DbError> {
    let code = fresh_code();
    let mail = compose(&code);
    let expires_at = Utc::now() + lifetime;
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    // Codes that expired unused can never be used: they go (a used e-mail key stays, it
    // records the confirmation).
    tx.execute(
        "DELETE FROM studio_codes WHERE used_at IS NULL AND expires_at < now()",
        &[],
    )
    .await?;
    tx.execute(
        "INSERT INTO studio_codes (code_hash, purpose, user_id, email, expires_at)
         VALUES (sha256(convert_to($1::text, 'UTF8')), $2, $3, $4, $5)",
        &[
            &Secret(&code),
            &purpose.as_str(),
            &user_id,
            &email,
            &expires_at,
        ],
    )
    .await?;
    tx.execute(
        "INSERT INTO outbox (recipient, subject, body) VALUES ($1, $2, $3)",
        &[&mail.recipient, &mail.subject, &Secret(&mail.body)],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Uses `code` of `purpose`, once: the code if it was issued, has not expired and was not
/// used yet (and, with `user_id`, was issued for that user), else `None`. Using a
/// password-reset code also voids every other open reset code of its user: the password
/// they were asked for is set.
pub async fn consume(
    pool: &Pool,
    purpose: CodePurpose,
    code: &str,
    user_id: Option<&str>,
) -> Result<Option<UsedCode>, DbError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let used = tx
        .query_opt(
            "UPDATE studio_codes SET used_at = now()
             WHERE code_hash = sha256(convert_to($1::text, 'UTF8')) AND purpose = $2
               AND used_at IS NULL
               AND expires_at > now() AND ($3::text IS NULL OR user_id = $3)
             RETURNING user_id, email",
            &[&Secret(code), &purpose.as_str(), &user_id],
        )
        .await?
        .map(|row| UsedCode {
            user_id: row.get(0),
            email: row.get(1),
        });
    if let Some(used) = &used
        && purpose == CodePurpose::PasswordReset
    {
        tx.execute(
            "UPDATE studio_codes SET used_at = now()
             WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
            &[&used.user_id, &purpose.as_str()],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(used)
}

/// When the address `email` of user `user_id` was last confirmed, if ever (an e-mail
/// confirmation key for it was used).
pub async fn email_confirmed_at(
    pool: &Pool,
    user_id: &str,
    email: &str,
) -> Result<Option<DateTime<Utc>>, DbError> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT max(used_at) FROM studio_codes
             WHERE user_id = $1 AND lower(email) = lower($2) AND purpose = $3",
            &[&user_id, &email, &CodePurpose::EmailConfirmation.as_str()],
        )
        .await?;
    Ok(row.get(0))
}

/// A user who holds an e-mail address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressHolder {
    pub user_id: String,
    pub username: String,
    pub status: UserStatus,
}

/// The users whose address is `email`, compared without case (as Django compares them),
/// by username.
pub async fn users_with_email(pool: &Pool, email: &str) -> Result<Vec<AddressHolder>, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached(
            "SELECT user_id, username, status FROM users
             WHERE email <> '' AND lower(email) = lower($1) ORDER BY username",
        )
        .await?;
    Ok(client
        .query(&statement, &[&email])
        .await?
        .iter()
        .map(|row| AddressHolder {
            user_id: row.get(0),
            username: row.get(1),
            status: UserStatus::parse(row.get(2)).unwrap_or(UserStatus::Disabled),
        })
        .collect())
}

/// The mail in the outbox, oldest first (what a mailer would send).
pub async fn outbox(pool: &Pool) -> Result<Vec<Mail>, DbError> {
    let client = pool.get().await?;
    Ok(client
        .query(
            "SELECT recipient, subject, body FROM outbox ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(|row| Mail {
            recipient: row.get(0),
            subject: row.get(1),
            body: row.get(2),
        })
        .collect())
}

/// The user whose number is `number` (`UserRow::number`, the `uid` of a reset mail).
pub async fn user_by_number(pool: &Pool, number: i64) -> Result<Option<AddressHolder>, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached("SELECT user_id, username, status FROM users WHERE number = $1")
        .await?;
    Ok(client
        .query_opt(&statement, &[&number])
        .await?
        .map(|row| AddressHolder {
            user_id: row.get(0),
            username: row.get(1),
            status: UserStatus::parse(row.get(2)).unwrap_or(UserStatus::Disabled),
        }))
}
