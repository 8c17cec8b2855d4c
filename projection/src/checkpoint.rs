//! Read your writes: how far the read models are, and waiting for a sequence.
//!
//! The projector commits each batch with `pg_notify('<schema>_checkpoint', seq)`. Every
//! process that answers requests LISTENs on that channel and keeps the newest sequence in a
//! `tokio::sync::watch`, so a request waiting for its write wakes as soon as the read models
//! hold it, without polling. A projector in the same process also feeds the watch directly.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::{Database, DbError};

/// The name of the one projection that maintains every read model.
pub const READ_MODELS: &str = "course_catalogue";

/// The newest checkpoint this process knows of.
#[derive(Clone)]
pub struct Checkpoints {
    sender: Arc<watch::Sender<u64>>,
}

impl Default for Checkpoints {
    fn default() -> Self {
        Self {
            sender: Arc::new(watch::channel(0).0),
        }
    }
}

impl Checkpoints {
    /// Records that the read models reached `seq` (never moves backwards).
    pub fn advance(&self, seq: u64) {
        self.sender.send_if_modified(|current| {
            let newer = seq > *current;
            if newer {
                *current = seq;
            }
            newer
        });
    }

    pub fn current(&self) -> u64 {
        *self.sender.borrow()
    }

    /// Waits until the read models reached `seq`, at most `timeout`. Returns whether they did.
    pub async fn wait_for(&self, seq: u64, timeout: Duration) -> bool {
        let mut rx = self.sender.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|current| *current >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Keeps this watch up to date from the projector's notifications until `stop`,
    /// reconnecting after an outage.
    pub fn follow(&self, db: Database, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    result = this.listen_once(&db) => {
                        if let Err(e) = result {
                            warn!(error = %e, "checkpoint listener lost its connection; reconnecting");
                        }
                    }
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        })
    }

    async fn listen_once(&self, db: &Database) -> Result<(), DbError> {
        let (client, mut connection) = db.config().connect(NoTls).await?;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if tx.send(n.payload().to_string()).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        debug!(error = %e, "listener connection closed");
                        return;
                    }
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN \"{}\"", channel(db.schema())))
            .await?;
        // Whatever was committed before LISTEN took effect.
        self.advance(load(&client, READ_MODELS).await?);
        while let Some(payload) = rx.recv().await {
            if let Ok(seq) = payload.parse::<u64>() {
                self.advance(seq);
            }
        }
        driver.abort();
        Err(DbError::Unavailable(
            "notification connection closed".into(),
        ))
    }
}

/// The NOTIFY channel of a schema's checkpoints.
pub fn channel(schema: &str) -> String {
    format!("{schema}_checkpoint")
}

/// The last sequence applied by projection `name` (0 before the first batch).
pub async fn load(client: &tokio_postgres::Client, name: &str) -> Result<u64, DbError> {
    let row = client
        .query_opt(
            "SELECT last_seq FROM projection_checkpoint WHERE name = $1",
            &[&name],
        )
        .await?;
    Ok(row.map(|r| r.get::<_, i64>(0).max(0) as u64).unwrap_or(0))
}
