//! The instance's PostgreSQL schema: connection pool, database creation, migrations.

use std::sync::{
    Arc, RwLock,
    atomic::{AtomicUsize, Ordering},
};

use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod};
use tokio_postgres::NoTls;
use tracing::info;

pub type Pool = deadpool_postgres::Pool;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// What went wrong with the database, by whose fault: a door answers a refused value as the
/// client's mistake (400), an outage as 503, anything else as its own error (500). The
/// driver's text is for the log only.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The server cannot be reached, or asked us to try again (connections, resources,
    /// serialization failures).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The server refused a value (a data exception or a violated constraint).
    #[error("the database refused a value: {0}")]
    Refused(String),
    /// A statement failed for another reason: a fault of Gantry's.
    #[error("database error: {0}")]
    Internal(String),
    #[error("bad database url: {0}")]
    Config(String),
    #[error("migration failed: {0}")]
    Migration(String),
}

/// Whether PostgreSQL refused a value of the statement: SQLSTATE classes 22 (data
/// exception: a NUL in text, a number out of range), 23 (integrity constraint) and 54
/// (program limit: an index row too large). Retrying the same value can never succeed.
pub fn refused_value(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| matches!(&c.code()[..2], "22" | "23" | "54"))
}

/// Whether the failure is the server's or the network's, and may pass: no SQLSTATE (the
/// connection broke), or classes 08 (connection), 40 (rollback: serialization, deadlock),
/// 53 (resources), 57 (operator intervention, shutdown), 58 (system error).
pub fn transient(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        None => true,
        Some(c) => matches!(&c.code()[..2], "08" | "40" | "53" | "57" | "58"),
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        if refused_value(&e) {
            DbError::Refused(e.to_string())
        } else if transient(&e) {
            DbError::Unavailable(e.to_string())
        } else {
            DbError::Internal(e.to_string())
        }
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => DbError::Unavailable(other.to_string()),
        }
    }
}

/// A pool whose connections all use the instance's schema as their search path, so that
/// queries name tables without a schema and several instances share one database.
#[derive(Clone)]
pub struct Database {
    pub pool: Pool,
    /// A few connections shared by point reads (see [`Readers`]).
    pub readers: Arc<Readers>,
    schema: String,
    config: tokio_postgres::Config,
}

/// Connections that many requests share at once for point reads (a GET of one row).
///
/// A tokio-postgres client takes concurrent queries and sends them back to back on its
/// connection; PostgreSQL then answers them with far less work per query than one query
/// per pooled connection at a time (measured: about 15 against 26 µs of its CPU per GET,
/// and 1.4 × the GETs per second). Lists, searches and transactions stay on the pool. A
/// connection that closed (the server restarted) is replaced from the pool on next use.
pub struct Readers {
    pool: Pool,
    slots: Vec<RwLock<Option<Arc<deadpool_postgres::Object>>>>,
    next: AtomicUsize,
}

impl Readers {
    /// Connections kept for point reads: two keep PostgreSQL's two cores busy here.
    const SHARED: usize = 2;

    fn new(pool: Pool) -> Self {
        Self {
            pool,
            slots: (0..Self::SHARED).map(|_| RwLock::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// One of the shared connections, in turn.
    pub async fn client(&self) -> Result<Arc<deadpool_postgres::Object>, DbError> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let held = slot
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        if let Some(client) = held.filter(|c| !c.is_closed()) {
            return Ok(client);
        }
        let fresh = Arc::new(self.pool.get().await?);
        *slot
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(fresh.clone());
        Ok(fresh)
    }
}

impl Database {
    /// Connects to `url` (creating the database if it is missing) for schema `schema`.
    pub async fn connect(url: &str, schema: &str) -> Result<Self, DbError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| DbError::Config(e.to_string()))?;
        ensure_database(&config).await?;
        config.options(format!("-c search_path={schema}"));
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            .wait_timeout(Some(std::time::Duration::from_secs(5)))
            .create_timeout(Some(std::time::Duration::from_secs(5)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| DbError::Config(e.to_string()))?;
        Ok(Self {
            readers: Arc::new(Readers::new(pool.clone())),
            pool,
            schema: schema.to_string(),
            config,
        })
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The connection settings, for a dedicated connection (LISTEN).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// Creates the schema and runs the embedded migrations. Safe to run from several
    /// processes at once: they take turns on an advisory lock.
    pub async fn migrate(&self) -> Result<(), DbError> {
        let mut client = self.pool.get().await?;
        let lock = format!("gantry-migrate-{}", self.schema);
        client
            .execute("SELECT pg_advisory_lock(hashtext($1))", &[&lock])
            .await?;
        let result = async {
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{}\"", self.schema))
                .await?;
            let report = embedded::migrations::runner()
                .run_async(&mut **client)
                .await
                .map_err(|e| DbError::Migration(e.to_string()))?;
            for m in report.applied_migrations() {
                info!(schema = %self.schema, migration = %m.name(), "applied migration");
            }
            Ok::<_, DbError>(())
        }
        .await;
        client
            .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&lock])
            .await?;
        result
    }

    /// Removes the schema and everything in it (tests clean up with this).
    pub async fn drop_schema(&self) -> Result<(), DbError> {
        let client = self.pool.get().await?;
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ))
            .await?;
        Ok(())
    }
}

async fn ensure_database(config: &tokio_postgres::Config) -> Result<(), DbError> {
    let Some(name) = config.get_dbname().map(str::to_string) else {
        return Ok(());
    };
    let mut admin = config.clone();
    admin.dbname("postgres");
    let (client, connection) = admin.connect(NoTls).await?;
    let driver = tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if !exists {
        let created = client
            .batch_execute(&format!(
                "CREATE DATABASE \"{}\"",
                name.replace('"', "\"\"")
            ))
            .await;
        if let Err(e) = created {
            // Another process may have created it at the same moment.
            if e.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE)
                && e.code() != Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
            {
                return Err(e.into());
            }
        }
        info!(database = %name, "created database");
    }
    drop(client);
    let _ = driver.await;
    Ok(())
}
