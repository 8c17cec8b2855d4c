//! The course door's OAuth2 provider store: authorization codes, and which client each token
//! issued through a code belongs to.
//!
//! Not a read model: codes and tokens are secrets, so they are never in the log and the log
//! cannot rebuild these tables. Both keep only the SHA-256 of the secret (a code and a token
//! carry 256 and more bits of randomness, so a fast hash is enough: nobody can guess back
//! from it). A code is single use across every `serve` process of an instance: the exchange
//! deletes its row and only the one `DELETE` that removed it wins. Expired rows are swept
//! whenever a new row goes in.

use std::time::Duration;

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{DbError, Pool};

/// What a code grants: who logged in, for which client, to which redirect URI, with which
/// scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub user_id: String,
    pub username: String,
}

/// The outcome of exchanging a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The code was live; it is gone now.
    Granted(Grant),
    /// The code was issued but its lifetime is over; it is gone now.
    Expired,
    /// No such code: never issued, or already exchanged.
    Unknown,
}

fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

/// A fresh random code (32 bytes, hex), stored as its hash with `grant` for `ttl`.
pub async fn issue(pool: &Pool, grant: &Grant, ttl: Duration) -> Result<String, DbError> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let code: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let client = pool.get().await?;
    let sweep = client
        .prepare_cached("DELETE FROM oauth_codes WHERE expires_at < now()")
        .await?;
    client.execute(&sweep, &[]).await?;
    let insert = client
        .prepare_cached(
            "INSERT INTO oauth_codes
                 (code_hash, client_id, redirect_uri, scope, user_id, username, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, now() + $7::bigint * interval '1 millisecond')",
        )
        .await?;
    client
        .execute(
            &insert,
            &[
                &digest(&code),
                &grant.client_id,
                &grant.redirect_uri,
                &grant.scope,
                &grant.user_id,
                &grant.username,
                &millis(ttl),
            ],
        )
        .await?;
    Ok(code)
}

/// Exchanges `code`, once: the row is deleted whether it was live or expired, and a second
/// exchange (here or in another process) finds nothing.
pub async fn redeem(pool: &Pool, code: &str) -> Result<Redeemed, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached(
            "DELETE FROM oauth_codes WHERE code_hash = $1
             RETURNING client_id, redirect_uri, scope, user_id, username,
                       expires_at > clock_timestamp()",
        )
        .await?;
    let Some(row) = client.query_opt(&statement, &[&digest(code)]).await? else {
        return Ok(Redeemed::Unknown);
    };
    if !row.get::<_, bool>(5) {
        return Ok(Redeemed::Expired);
    }
    Ok(Redeemed::Granted(Grant {
        client_id: row.get(0),
        redirect_uri: row.get(1),
        scope: row.get(2),
        user_id: row.get(3),
        username: row.get(4),
    }))
}

/// Remembers that `token` (valid until `expires_at`) belongs to `client_id` with `scope`.
pub async fn remember_token(
    pool: &Pool,
    token: &str,
    client_id: &str,
    scope: &str,
    expires_at: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbError> {
    let client = pool.get().await?;
    let sweep = client
        .prepare_cached("DELETE FROM oauth_grants WHERE expires_at < now()")
        .await?;
    client.execute(&sweep, &[]).await?;
    let insert = client
        .prepare_cached(
            "INSERT INTO oauth_grants (token_hash, client_id, scope, expires_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (token_hash) DO UPDATE SET client_id = EXCLUDED.client_id,
                 scope = EXCLUDED.scope, expires_at = EXCLUDED.expires_at",
        )
        .await?;
    client
        .execute(&insert, &[&digest(token), &client_id, &scope, &expires_at])
        .await?;
    Ok(())
}

/// The `(client_id, scope)` that `token` was issued to, if it came through a code.
pub async fn client_of(pool: &Pool, token: &str) -> Result<Option<(String, String)>, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached("SELECT client_id, scope FROM oauth_grants WHERE token_hash = $1")
        .await?;
    Ok(client
        .query_opt(&statement, &[&digest(token)])
        .await?
        .map(|row| (row.get(0), row.get(1))))
}
