//! The keys that sign access tokens, in the secret store (`token_keys`, beside the
//! credentials: not a read model, no rebuild touches it).
//!
//! Each key has an id (`kid`) that every token names in its header, so a key can be
//! replaced without voiding the tokens signed by the one before: [`rotate`] adds a key, and
//! every key stays good for checking. A process signs with the newest key that is at least
//! [`PUBLISHED_FOR`] old, so every other process (which reloads the keys more often than
//! that) knows a key before any token signed by it reaches them. The first process of an
//! instance creates its first key, usable at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngCore;
use uuid::Uuid;

use crate::{DbError, Pool, secret::Secret};

/// How long a new key is known before it signs.
pub const PUBLISHED_FOR: Duration = Duration::from_secs(120);

/// A key that checks tokens, and signs them once published.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenKey {
    pub kid: String,
    pub key: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for TokenKey {
    /// Never prints the key itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Every key of the instance, oldest first; creates the first one if there is none.
pub async fn load(pool: &Pool) -> Result<Vec<TokenKey>, DbError> {
    let client = pool.get().await?;
    // The first key is dated long ago, so it signs at once.
    client
        .execute(
            "INSERT INTO token_keys (kid, key, created_at)
             SELECT $1, $2, '-infinity' WHERE NOT EXISTS (SELECT 1 FROM token_keys)
             ON CONFLICT DO NOTHING",
            &[&fresh_kid(), &Secret(fresh_key())],
        )
        .await?;
    let rows = client
        .query(
            "SELECT kid, key, created_at FROM token_keys ORDER BY created_at, kid",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| TokenKey {
            kid: row.get(0),
            key: row.get(1),
            created_at: row
                .try_get::<_, DateTime<Utc>>(2)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        })
        .collect())
}

/// Adds a new key, which signs once [`PUBLISHED_FOR`] has passed. Returns its id.
pub async fn rotate(pool: &Pool) -> Result<String, DbError> {
    let client = pool.get().await?;
    let kid = fresh_kid();
    client
        .execute(
            "INSERT INTO token_keys (kid, key) VALUES ($1, $2)",
            &[&kid, &Secret(fresh_key())],
        )
        .await?;
    Ok(kid)
}

fn fresh_key() -> Vec<u8> {
    let mut key = vec![0u8; 32];
    rand::rng().fill_bytes(&mut key);
    key
}

fn fresh_kid() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_string()
}
