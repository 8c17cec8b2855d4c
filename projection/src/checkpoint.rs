//! Read your writes: how far each read model is, and waiting for a sequence.
//!
//! Each projection commits every batch with `pg_notify('<schema>_checkpoint',
//! '<projection>:<seq>')`. Every process that answers requests LISTENs on that channel and
//! keeps the newest sequence of each projection in a `tokio::sync::watch`, so a request
//! waiting for its write wakes as soon as the read models hold it, without polling. A
//! projector in the same process also feeds the watches directly.
//!
//! A write waits for the projections that read the aggregate it wrote: exactly the read
//! models its event changes. Waiting for all of them would make a course write wait for a
//! read model that never shows it (and for one that is rebuilding).

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::{Database, DbError, registry::Projection};

/// The newest checkpoint of each registered projection that this process knows of.
#[derive(Clone)]
pub struct Checkpoints {
    inner: Arc<Inner>,
}

struct Inner {
    by_name: HashMap<&'static str, watch::Sender<u64>>,
    /// For each aggregate, the projections that read it.
    readers: HashMap<&'static str, Vec<&'static str>>,
}

/// Something this process keeps current from a read model (such as
/// [`crate::access::AccessTable`]): its name, and the aggregates whose writes wait for it.
pub type Follower = (&'static str, &'static [&'static str]);

impl Checkpoints {
    pub fn new(projections: &[Arc<dyn Projection>]) -> Self {
        Self::with_followers(projections, &[])
    }

    /// Checkpoints of `projections` and of `followers`, which announce their progress with
    /// [`Checkpoints::advance`] like a projection.
    pub fn with_followers(projections: &[Arc<dyn Projection>], followers: &[Follower]) -> Self {
        let mut by_name = HashMap::new();
        let mut readers: HashMap<&'static str, Vec<&'static str>> = HashMap::new();
        let units = projections
            .iter()
            .map(|p| (p.name(), p.aggregates()))
            .chain(followers.iter().copied());
        for (name, aggregates) in units {
            by_name.insert(name, watch::channel(0).0);
            for aggregate in aggregates {
                readers.entry(*aggregate).or_default().push(name);
            }
        }
        Self {
            inner: Arc::new(Inner { by_name, readers }),
        }
    }

    /// Records that projection `name` reached `seq` (never moves backwards; names this
    /// process does not serve are ignored).
    pub fn advance(&self, name: &str, seq: u64) {
        if let Some(sender) = self.inner.by_name.get(name) {
            sender.send_if_modified(|current| {
                let newer = seq > *current;
                if newer {
                    *current = seq;
                }
                newer
            });
        }
    }

    /// A receiver that sees each move of `name`'s checkpoint.
    pub fn subscribe(&self, name: &str) -> Option<watch::Receiver<u64>> {
        self.inner
            .by_name
            .get(name)
            .map(|sender| sender.subscribe())
    }

    /// The checkpoint of projection `name` as this process knows it.
    pub fn current(&self, name: &str) -> u64 {
        self.inner
            .by_name
            .get(name)
            .map_or(0, |sender| *sender.borrow())
    }

    /// Waits until every projection that reads `aggregate` reached `seq`, at most
    /// `timeout` in all. Returns whether they did.
    pub async fn wait_for(&self, aggregate: &str, seq: u64, timeout: Duration) -> bool {
        let Some(names) = self.inner.readers.get(aggregate) else {
            return true;
        };
        let all = async {
            for name in names {
                if let Some(sender) = self.inner.by_name.get(name) {
                    let mut rx = sender.subscribe();
                    if rx.wait_for(|current| *current >= seq).await.is_err() {
                        return false;
                    }
                }
            }
            true
        };
        tokio::time::timeout(timeout, all).await.unwrap_or(false)
    }

    /// Keeps these watches up to date from the projectors' notifications until `stop`,
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
        for row in client
            .query("SELECT name, last_seq FROM projection_checkpoint", &[])
            .await?
        {
            self.advance(row.get(0), row.get::<_, i64>(1).max(0) as u64);
        }
        while let Some(payload) = rx.recv().await {
            if let Some((name, seq)) = parse_notification(&payload) {
                self.advance(name, seq);
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

/// The payload that announces projection `name` reached `seq`.
pub fn notification(name: &str, seq: u64) -> String {
    format!("{name}:{seq}")
}

fn parse_notification(payload: &str) -> Option<(&str, u64)> {
    let (name, seq) = payload.rsplit_once(':')?;
    Some((name, seq.parse().ok()?))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_name_their_projection() {
        assert_eq!(
            parse_notification(&notification("course_catalogue", 42)),
            Some(("course_catalogue", 42))
        );
        assert_eq!(parse_notification("42"), None);
    }

    #[tokio::test]
    async fn a_write_waits_for_the_projections_of_its_aggregate_only() {
        let checkpoints = Checkpoints::new(&crate::registry::registered());
        checkpoints.advance("course_catalogue", 10);
        assert!(
            checkpoints
                .wait_for("course", 10, Duration::from_millis(10))
                .await
        );
        assert!(
            !checkpoints
                .wait_for("user", 10, Duration::from_millis(10))
                .await,
            "the user directory is still at 0"
        );
        assert!(
            checkpoints
                .wait_for("unknown", 10, Duration::from_millis(10))
                .await,
            "nothing reads it"
        );
    }
}
