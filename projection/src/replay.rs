//! Replaying the log into a schema of its own: what a rebuild and an audit share.
//!
//! A [`Scratch`] is one projection's tables created afresh (by its own
//! [`Projection::schema`]) in a schema beside the instance's, fed the log from sequence 1
//! through its own [`Projection::apply`], with the instance's schema still on the search
//! path behind it, so stores that are not read models (credentials, personal keys) are the
//! live ones. Nothing of the projection needs to know: a new read model is rebuilt and
//! audited as soon as it is registered.
//!
//! Catching up with the live read model ends under the live checkpoint's row lock
//! ([`Scratch::settle`]): the live projector's next batch waits on that row, so inside that
//! transaction the scratch tables and the live ones describe the same sequence, and the
//! caller swaps them or compares them there.
//!
//! Decisions:
//! - The scratch schema is `<schema>_<purpose>_<projection>` (cut to PostgreSQL's 63
//!   bytes); one left by a crash is dropped when the next one starts.
//! - A batch whose value the database refuses is applied again event by event in
//!   savepoints, as the projector does; a refused event is parked again under the
//!   projection's name when rebuilding (the live run parked it too), and only logged when
//!   auditing, which writes nothing but its scratch schema.
//! - Scratch tables fill `UNLOGGED` and are made logged before a swap: a crash loses only
//!   what the next replay would drop anyway, and the rows skip the write-ahead log.
//! - An event this build does not know stops the replay ([`ReplayError::Halted`]): tables
//!   that stop before it must not replace ones that may have gone past it.

use std::sync::Arc;

use async_nats::jetstream::{self, stream::DirectGetErrorKind};
use events::PersonalKeys;
use tracing::{debug, warn};

use crate::{
    Database, DbError,
    db::{refused_value, transient},
    feed::{BATCH, ReadAhead, read_ahead},
    parked::{self, ParkedEvent},
    projector::{Delivered, ProjectionError, database_error, subject_filter},
    registry::{Applied, Projection, Tx},
};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error("the log holds event {seq} that this build does not know ({reason})")]
    Halted { seq: u64, reason: String },
}

impl From<DbError> for ReplayError {
    fn from(e: DbError) -> Self {
        ReplayError::Projection(e.into())
    }
}

impl From<tokio_postgres::Error> for ReplayError {
    fn from(e: tokio_postgres::Error) -> Self {
        ReplayError::Projection(e.into())
    }
}

impl From<deadpool_postgres::PoolError> for ReplayError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ReplayError::Projection(e.into())
    }
}

/// What a replay reads from and writes to.
#[derive(Clone)]
pub struct Source {
    pub db: Database,
    pub stream: jetstream::stream::Stream,
    pub instance: String,
    pub keys: Arc<dyn PersonalKeys>,
}

impl Source {
    pub fn new(db: Database, stream: jetstream::stream::Stream, instance: &str) -> Self {
        let keys = Arc::new(crate::personal::KeyStore::new(db.pool.clone()));
        Self {
            db,
            stream,
            instance: instance.to_string(),
            keys,
        }
    }

    /// The log's last sequence.
    pub async fn last_sequence(&self) -> Result<u64, ReplayError> {
        Ok(self
            .stream
            .get_info()
            .await
            .map_err(|e| ProjectionError::Stream(e.to_string()))?
            .state
            .last_sequence)
    }
}

/// `"name"`, quoted as an SQL identifier.
pub(crate) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What is done with scratch tables that reached the live checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// They replace the live tables.
    Swap,
    /// They are compared with the live tables, row by row.
    Compare,
}

/// One projection replayed into a scratch schema.
pub struct Scratch {
    source: Source,
    projection: Arc<dyn Projection>,
    /// The scratch schema.
    pub schema: String,
    filter: String,
    /// Every event up to here is in the scratch tables.
    pub applied: u64,
    park: bool,
    /// Events written so far, and at how many the tables' statistics are refreshed next.
    written: u64,
    analyze_at: u64,
    /// The secondary indexes, dropped while the tables fill and built again before a swap.
    deferred: Vec<String>,
}

/// Events written before a scratch's statistics are first refreshed; then at each doubling.
const FIRST_ANALYZE: u64 = 1_000;

impl Scratch {
    /// Drops what a crashed replay of the same purpose left, and creates the projection's
    /// tables afresh in `<schema>_<purpose>_<projection>`.
    pub async fn create(
        source: &Source,
        projection: Arc<dyn Projection>,
        purpose: &str,
        park: bool,
    ) -> Result<Self, ReplayError> {
        let mut schema = format!("{}_{purpose}_{}", source.db.schema(), projection.name());
        schema.truncate(63);
        let mut scratch = Self {
            filter: subject_filter(&source.instance, projection.as_ref()),
            source: source.clone(),
            projection,
            schema,
            applied: 0,
            park,
            written: 0,
            analyze_at: FIRST_ANALYZE,
            deferred: Vec::new(),
        };
        let mut client = scratch.source.db.pool.get().await?;
        let tx = client.transaction().await?;
        tx.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {s} CASCADE; CREATE SCHEMA {s};",
            s = quoted(&scratch.schema)
        ))
        .await?;
        scratch.search_path(&tx).await?;
        tx.batch_execute(scratch.projection.schema()).await?;
        scratch.persistence(&tx, "UNLOGGED").await?;
        scratch.deferred = scratch.defer_indexes(&tx).await?;
        tx.commit().await?;
        Ok(scratch)
    }

    /// Drops the indexes that no rule needs (not unique, backing no constraint) and answers
    /// the statements that create them again: one index built over full tables costs a
    /// fraction of keeping it up to date row by row, and no write of a replay reads by one.
    async fn defer_indexes(&self, tx: &Tx<'_>) -> Result<Vec<String>, ReplayError> {
        let rows = tx
            .query(
                "SELECT c.relname::text, pg_get_indexdef(c.oid) FROM pg_index x
                 JOIN pg_class c ON c.oid = x.indexrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND NOT x.indisunique
                   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid)",
                &[&self.schema],
            )
            .await?;
        let mut deferred = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.get(0);
            tx.batch_execute(&format!(
                "DROP INDEX {}.{}",
                quoted(&self.schema),
                quoted(&name)
            ))
            .await?;
            deferred.push(row.get(1));
        }
        Ok(deferred)
    }

    /// Sets every scratch table `UNLOGGED` or `LOGGED`. A scratch table fills unlogged:
    /// the write-ahead log is half of what PostgreSQL does per row, and a crash losing a
    /// scratch table loses nothing (the next replay starts afresh anyway). It is made
    /// logged, one rewrite per table, before it replaces a live one.
    async fn persistence(&self, tx: &Tx<'_>, persistence: &str) -> Result<(), ReplayError> {
        for table in self.tables(tx).await? {
            tx.batch_execute(&format!(
                "ALTER TABLE {}.{} SET {persistence}",
                quoted(&self.schema),
                quoted(&table)
            ))
            .await?;
        }
        Ok(())
    }

    pub fn projection(&self) -> &dyn Projection {
        self.projection.as_ref()
    }

    /// Makes the unqualified tables of `tx` the scratch ones.
    pub fn live_schema(&self) -> &str {
        self.source.db.schema()
    }

    pub(crate) async fn search_path(&self, tx: &Tx<'_>) -> Result<(), DbError> {
        tx.batch_execute(&format!(
            "SET LOCAL search_path TO {}, {}",
            quoted(&self.schema),
            quoted(self.source.db.schema())
        ))
        .await?;
        Ok(())
    }

    /// Drops the scratch schema.
    pub async fn drop(self) -> Result<(), ReplayError> {
        let client = self.source.db.pool.get().await?;
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                quoted(&self.schema)
            ))
            .await?;
        Ok(())
    }

    /// The live checkpoint of the projection (0 when it never ran).
    pub async fn live_checkpoint(&self) -> Result<u64, ReplayError> {
        let client = self.source.db.pool.get().await?;
        Ok(crate::checkpoint::load(&client, self.projection.name()).await?)
    }

    /// Replays the events after `applied` up to `target`, a batch per transaction, calling
    /// `progress` with the sequence reached after each.
    pub async fn replay_until(
        &mut self,
        target: u64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), ReplayError> {
        self.replay(target, None, progress).await
    }

    /// Catches up with the live read model and, inside the transaction that holds the live
    /// checkpoint's row lock, once the scratch tables reached that checkpoint, swaps them in
    /// (committed) or compares them with the live ones (rolled back). Returns the
    /// checkpoint and the differences found.
    pub async fn settle(
        &mut self,
        progress: &(dyn Fn(u64) + Send + Sync),
        then: Settle,
    ) -> Result<(u64, Vec<crate::audit::Difference>), ReplayError> {
        // Most of the way without the lock, so that the live projector waits only for the
        // last few events.
        for _ in 0..3 {
            let live = self.live_checkpoint().await?;
            if live <= self.applied + BATCH as u64 {
                break;
            }
            self.replay_until(live, progress).await?;
        }
        let mut client = self.source.db.pool.get().await?;
        if then == Settle::Swap {
            // Before the lock, so that the live projector does not wait for the rewrite.
            let tx = client.transaction().await?;
            self.persistence(&tx, "LOGGED").await?;
            for index in &self.deferred {
                tx.batch_execute(index).await?;
            }
            tx.commit().await?;
        }
        let tx = client.transaction().await?;
        let live = tx
            .query_opt(
                "SELECT last_seq FROM projection_checkpoint WHERE name = $1 FOR UPDATE",
                &[&self.projection.name()],
            )
            .await?
            .map(|r| r.get::<_, i64>(0).max(0) as u64);
        self.search_path(&tx).await?;
        let live = match live {
            Some(live) => live,
            None => {
                // A read model that never ran: the scratch tables become it as they are.
                let target = self.applied.max(self.source.last_sequence().await?);
                tx.execute(
                    "INSERT INTO projection_checkpoint (name, last_seq) VALUES ($1, $2)
                     ON CONFLICT (name) DO NOTHING",
                    &[&self.projection.name(), &(target as i64)],
                )
                .await?;
                target
            }
        };
        self.replay(live, Some(&tx), progress).await?;
        let mut live = live;
        let differences = match then {
            Settle::Swap => {
                crate::rebuild::swap(&tx, self).await?;
                if self.applied > live {
                    // The fresh tables went past a live projector that lags (or does not
                    // run): the checkpoint says where they are, and the live projector,
                    // finding its checkpoint moved, goes on from there.
                    tx.execute(
                        "UPDATE projection_checkpoint SET last_seq = $2 WHERE name = $1",
                        &[&self.projection.name(), &(self.applied as i64)],
                    )
                    .await?;
                    live = self.applied;
                }
                tx.commit().await?;
                Vec::new()
            }
            Settle::Compare => {
                let differences = crate::audit::compare(&tx, self).await?;
                tx.rollback().await?;
                differences
            }
        };
        Ok((live, differences))
    }

    /// The tables of the scratch schema.
    pub(crate) async fn tables(&self, tx: &Tx<'_>) -> Result<Vec<String>, ReplayError> {
        Ok(tx
            .query(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY tablename",
                &[&self.schema],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// Refreshes the planner's statistics of the scratch tables. They start empty, and a
    /// statement's cached plan made while they were small would go on scanning them whole
    /// as they grow (ANALYZE makes every connection plan it again): without this, a rebuild
    /// slows down with the square of the log. Run at each doubling, it costs little.
    async fn analyze(&self) -> Result<(), ReplayError> {
        let mut client = self.source.db.pool.get().await?;
        let tx = client.transaction().await?;
        let tables = self.tables(&tx).await?;
        if !tables.is_empty() {
            let names: Vec<String> = tables
                .iter()
                .map(|t| format!("{}.{}", quoted(&self.schema), quoted(t)))
                .collect();
            tx.batch_execute(&format!("ANALYZE {}", names.join(", ")))
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replays up to `target`: into `within` when given (every batch in it), else a
    /// transaction per batch.
    async fn replay(
        &mut self,
        target: u64,
        within: Option<&Tx<'_>>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), ReplayError> {
        if self.applied >= target {
            return Ok(());
        }
        // Nothing of ours up to the target: the ordered consumer would wait for ever.
        match self
            .source
            .stream
            .direct_get_next_for_subject(self.filter.as_str(), Some(self.applied + 1))
            .await
        {
            Ok(message) if message.sequence <= target => {}
            Ok(_) => {
                self.applied = target;
                return Ok(());
            }
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => {
                self.applied = target;
                return Ok(());
            }
            Err(e) => return Err(ProjectionError::Stream(e.to_string()).into()),
        }
        let incoming = read_ahead(
            &self.source.stream,
            self.filter.clone(),
            self.applied,
            self.projection.clone(),
            self.source.keys.clone(),
            None,
        )
        .await?;
        self.apply_fed(incoming, target, within, progress).await
    }

    /// Replays from sequence 1 to `target` what `incoming` delivers (a share of one read of
    /// the log that feeds several replays, [`crate::feed::fan_out`]), a batch per
    /// transaction.
    pub(crate) async fn replay_fed(
        &mut self,
        incoming: ReadAhead,
        target: u64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), ReplayError> {
        if self.applied >= target {
            return Ok(());
        }
        self.apply_fed(incoming, target, None, progress).await
    }

    /// Writes what `incoming` delivers up to `target`: into `within` when given, else a
    /// transaction per batch.
    async fn apply_fed(
        &mut self,
        mut incoming: ReadAhead,
        target: u64,
        within: Option<&Tx<'_>>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), ReplayError> {
        let mut done = false;
        // One buffer for every batch: a batch of events is large, and allocating one afresh
        // each time makes the allocator gather up its small free blocks each time.
        let mut events = Vec::with_capacity(BATCH);
        while !done {
            events.clear();
            let mut unreadable = Vec::new();
            let mut reached = self.applied;
            let mut next = incoming.receiver.recv().await;
            loop {
                let (delivered, pending) = match next {
                    None => {
                        return Err(ProjectionError::Stream("event stream closed".into()).into());
                    }
                    Some(Err(e)) => return Err(e.into()),
                    Some(Ok(one)) => one,
                };
                let seq = delivered.seq();
                if seq > target {
                    done = true;
                    break;
                }
                match delivered {
                    Delivered::Event(applied) => events.push(*applied),
                    Delivered::Park(parked) => unreadable.push(parked),
                    Delivered::Skip(_) => {}
                    Delivered::Unknown { seq, reason } => {
                        return Err(ReplayError::Halted { seq, reason });
                    }
                }
                reached = seq;
                if seq == target || pending == 0 {
                    done = true;
                    break;
                }
                if events.len() >= BATCH {
                    break;
                }
                match incoming.receiver.try_recv() {
                    Ok(more) => next = Some(more),
                    Err(_) => break,
                }
            }
            match within {
                Some(tx) => self.write(tx, &events, unreadable).await?,
                None => {
                    let mut client = self.source.db.pool.get().await?;
                    let tx = client.transaction().await?;
                    self.search_path(&tx).await?;
                    self.write(&tx, &events, unreadable).await?;
                    tx.commit().await?;
                    self.written += events.len() as u64;
                    if self.written >= self.analyze_at {
                        self.analyze().await?;
                        self.analyze_at = self.written * 2;
                    }
                }
            }
            self.applied = reached;
            progress(reached);
        }
        self.applied = target;
        progress(target);
        Ok(())
    }

    /// Applies `events` inside `tx` in a savepoint; after a refused value, event by event.
    async fn write(
        &self,
        tx: &Tx<'_>,
        events: &[Applied],
        mut unreadable: Vec<ParkedEvent>,
    ) -> Result<(), ReplayError> {
        if !events.is_empty() {
            tx.batch_execute("SAVEPOINT replay_batch").await?;
            match self.projection.apply(tx, events).await {
                Ok(()) => tx.batch_execute("RELEASE SAVEPOINT replay_batch").await?,
                Err(e) if !transient(&e) => {
                    debug!(error = %e, "a value was refused; replaying the batch event by event");
                    tx.batch_execute("ROLLBACK TO SAVEPOINT replay_batch")
                        .await?;
                    self.write_one_by_one(tx, events, &mut unreadable).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        for event in &unreadable {
            if self.park {
                parked::park(tx, event).await?;
            } else {
                warn!(seq = event.seq, error = %event.error, "event left out of the replay");
            }
        }
        Ok(())
    }

    async fn write_one_by_one(
        &self,
        tx: &Tx<'_>,
        events: &[Applied],
        unreadable: &mut Vec<ParkedEvent>,
    ) -> Result<(), ReplayError> {
        for event in events {
            tx.batch_execute("SAVEPOINT replay_event").await?;
            match self.projection.apply(tx, std::slice::from_ref(event)).await {
                Ok(()) => tx.batch_execute("RELEASE SAVEPOINT replay_event").await?,
                Err(e) if refused_value(&e) => {
                    tx.batch_execute("ROLLBACK TO SAVEPOINT replay_event")
                        .await?;
                    let envelope = &event.envelope;
                    unreadable.push(ParkedEvent {
                        consumer: self.projection.name().to_string(),
                        seq: event.seq,
                        aggregate: Some(envelope.aggregate.clone()),
                        aggregate_id: Some(envelope.aggregate_id.clone()),
                        event_type: Some(envelope.event_type.clone()),
                        error: database_error(&e),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
