//! The key that signs access tokens.
//!
//! Kept in the instance's schema so that every `serve` process of an instance signs and
//! checks tokens with the same key, and a restart logs nobody out. The first process to ask
//! creates it.

use rand::RngCore;

use crate::{DbError, Pool};

pub async fn signing_key(pool: &Pool) -> Result<Vec<u8>, DbError> {
    let client = pool.get().await?;
    let mut fresh = vec![0u8; 32];
    rand::rng().fill_bytes(&mut fresh);
    client
        .execute(
            "INSERT INTO token_signing_key (id, key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
            &[&fresh],
        )
        .await?;
    Ok(client
        .query_one("SELECT key FROM token_signing_key WHERE id = 1", &[])
        .await?
        .get(0))
}
