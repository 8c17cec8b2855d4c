//! Handling a command against one aggregate: load, decide, append, retry on conflict.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use chrono::Utc;
use events::{DomainEvent, Envelope, Meta};
use tracing::{debug, warn};

use crate::{Aggregate, CommandError, EventStore, StoreError};

/// How often a command is decided again after another process wrote first.
const MAX_ATTEMPTS: usize = 10;
/// Aggregates kept in memory; past this, the idle ones are dropped (they reload on use).
const CACHE_CAPACITY: usize = 100_000;
/// Idempotency keys remembered per aggregate.
const KEYS_PER_AGGREGATE: usize = 64;

/// Who asks, and under which request: becomes the event's meta.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub actor: String,
    pub request_id: String,
    /// The client's idempotency key, already scoped to actor and route by the door.
    pub idempotency_key: Option<String>,
}

/// The result of a command: the sequence the read models must reach for the caller to see
/// its write, and whether anything new was appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub seq: u64,
    pub appended: bool,
}

/// One aggregate in memory: its state, the sequence it was folded up to, and the
/// idempotency keys of its recent events.
struct Slot<A> {
    state: A,
    last_seq: u64,
    loaded: bool,
    keys: VecDeque<(String, u64)>,
}

impl<A: Aggregate> Slot<A> {
    fn new() -> Self {
        Self {
            state: A::default(),
            last_seq: 0,
            loaded: false,
            keys: VecDeque::new(),
        }
    }

    fn apply(&mut self, seq: u64, event: &A::Event, key: Option<&str>) {
        self.state.evolve(event);
        self.last_seq = seq;
        if let Some(key) = key {
            if self.keys.len() == KEYS_PER_AGGREGATE {
                self.keys.pop_front();
            }
            self.keys.push_back((key.to_string(), seq));
        }
    }

    fn seen(&self, key: &str) -> Option<u64> {
        self.keys
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, seq)| *seq)
    }
}

/// Executes commands of one aggregate type against the event store.
///
/// Commands for one aggregate queue on its lock inside this process, so they do not
/// conflict with each other; commands for different aggregates run side by side. Writers in
/// other processes show up as a wrong expected sequence: catch up and decide again.
pub struct Repository<A: Aggregate, S: EventStore> {
    store: S,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot<A>>>>>,
}

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    pub fn new(store: S) -> Self {
        Self {
            store,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Decides `command` on aggregate `id` and appends its event.
    ///
    /// A command that carries an idempotency key already recorded on this aggregate
    /// appends nothing and answers with the original event's sequence.
    #[tracing::instrument(skip_all, fields(aggregate = A::Event::AGGREGATE, aggregate_id = id, request_id = %ctx.request_id))]
    pub async fn execute(
        &self,
        id: &str,
        command: &A::Command,
        ctx: &Context,
    ) -> Result<Outcome, CommandError> {
        let slot = self.slot(id);
        let mut slot = slot.lock().await;
        for attempt in 0..MAX_ATTEMPTS {
            if !slot.loaded || attempt > 0 {
                if let Err(e) = self.catch_up(id, &mut slot).await {
                    slot.loaded = false;
                    return Err(e.into());
                }
            }
            if let Some(seq) = ctx.idempotency_key.as_deref().and_then(|k| slot.seen(k)) {
                debug!(seq, "repeated request: answered from the original event");
                return Ok(Outcome {
                    seq,
                    appended: false,
                });
            }
            let Some(event) = slot.state.decide(command)? else {
                return Ok(Outcome {
                    seq: slot.last_seq,
                    appended: false,
                });
            };
            let meta = Meta {
                actor: ctx.actor.clone(),
                request_id: ctx.request_id.clone(),
                causation_id: None,
                occurred_at: Utc::now(),
                idempotency_key: ctx.idempotency_key.clone(),
            };
            let envelope = Envelope::new(id, &event, meta).map_err(|e| StoreError::Corrupt {
                seq: 0,
                reason: e.to_string(),
            })?;
            match self
                .store
                .append(&envelope, slot.last_seq, ctx.idempotency_key.as_deref())
                .await
            {
                Ok(appended) if appended.duplicate => {
                    // JetStream already holds this message id: the same request won a race
                    // elsewhere. Our state may be behind; reload on next use.
                    slot.loaded = false;
                    return Ok(Outcome {
                        seq: appended.seq,
                        appended: false,
                    });
                }
                Ok(appended) => {
                    debug!(seq = appended.seq, event = %envelope.event_type, "appended");
                    slot.apply(appended.seq, &event, ctx.idempotency_key.as_deref());
                    return Ok(Outcome {
                        seq: appended.seq,
                        appended: true,
                    });
                }
                Err(StoreError::WrongLastSequence) => {
                    debug!(attempt, "another writer was first; deciding again");
                }
                Err(e) => {
                    slot.loaded = false;
                    return Err(e.into());
                }
            }
        }
        warn!("gave up after {MAX_ATTEMPTS} conflicting attempts");
        Err(CommandError::Conflict)
    }

    /// Declares that aggregate `id` was just made up (a random UUID), so the next command
    /// on it decides on an empty state without reading the log. Were the id taken after
    /// all, the append would meet a wrong sequence and the command would be decided again
    /// on the real state.
    pub async fn assume_new(&self, id: &str) {
        let slot = self.slot(id);
        let mut slot = slot.lock().await;
        if !slot.loaded && slot.last_seq == 0 {
            slot.loaded = true;
        }
    }

    /// The current state of aggregate `id`, caught up with the log.
    pub async fn load(&self, id: &str) -> Result<A, CommandError>
    where
        A: Clone,
    {
        let slot = self.slot(id);
        let mut slot = slot.lock().await;
        self.catch_up(id, &mut slot).await?;
        Ok(slot.state.clone())
    }

    async fn catch_up(&self, id: &str, slot: &mut Slot<A>) -> Result<(), StoreError> {
        let recorded = self
            .store
            .read_after(A::Event::AGGREGATE, id, slot.last_seq)
            .await?;
        for r in recorded {
            let event: A::Event = r.envelope.decode().map_err(|e| StoreError::Corrupt {
                seq: r.seq,
                reason: e.to_string(),
            })?;
            slot.apply(r.seq, &event, r.envelope.meta.idempotency_key.as_deref());
        }
        slot.loaded = true;
        Ok(())
    }

    fn slot(&self, id: &str) -> Arc<tokio::sync::Mutex<Slot<A>>> {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if slots.len() >= CACHE_CAPACITY && !slots.contains_key(id) {
            slots.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
        slots
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(Slot::new())))
            .clone()
    }
}
