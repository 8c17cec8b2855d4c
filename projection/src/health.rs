//! What the health endpoints report of the database.

use crate::{DbError, Pool};

/// The tables of the instance's schema, by name.
pub async fn tables(pool: &Pool, schema: &str) -> Result<Vec<String>, DbError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name",
            &[&schema],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
