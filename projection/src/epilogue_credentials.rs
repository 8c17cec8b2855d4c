//! The credentials of Slurm epilogues: a token an admin issues for a named cluster, which
//! lets that cluster record jobs and set their amounts at the accounting door.
//!
//! Not a read model: a credential is a secret, so it is never in the log and the log cannot
//! rebuild this table. Only the SHA-256 of each token is kept (a token carries 256 bits of
//! randomness, so a fast hash is enough). A cluster may hold several credentials at once, so
//! that a new one can be rolled out to the nodes before the old one is revoked.

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{DbError, Pool};

/// What starts every epilogue token, so that a log or a config file shows what it is.
pub const PREFIX: &str = "gantry-epilogue-";

fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A fresh token for `cluster`, stored as its hash.
pub async fn issue(pool: &Pool, cluster: &str, issued_by: &str) -> Result<String, DbError> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token: String = PREFIX
        .chars()
        .chain(
            bytes
                .iter()
                .flat_map(|b| format!("{b:02x}").chars().collect::<Vec<_>>()),
        )
        .collect();
    let client = pool.get().await?;
    let insert = client
        .prepare_cached(
            "INSERT INTO epilogue_credentials (token_hash, cluster, issued_by) VALUES ($1, $2, $3)",
        )
        .await?;
    client
        .execute(&insert, &[&digest(&token), &cluster, &issued_by])
        .await?;
    Ok(token)
}

/// The cluster a token was issued for, if it is a live epilogue credential.
pub async fn cluster_of(pool: &Pool, token: &str) -> Result<Option<String>, DbError> {
    if !token.starts_with(PREFIX) {
        return Ok(None);
    }
    let client = pool.get().await?;
    let select = client
        .prepare_cached("SELECT cluster FROM epilogue_credentials WHERE token_hash = $1")
        .await?;
    Ok(client
        .query_opt(&select, &[&digest(token)])
        .await?
        .map(|r| r.get(0)))
}

/// Revokes every credential of `cluster`; answers how many there were.
pub async fn revoke(pool: &Pool, cluster: &str) -> Result<u64, DbError> {
    let client = pool.get().await?;
    let delete = client
        .prepare_cached("DELETE FROM epilogue_credentials WHERE cluster = $1")
        .await?;
    Ok(client.execute(&delete, &[&cluster]).await?)
}
