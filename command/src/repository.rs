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
/// Idempotency keys remembered per aggregate (beyond JetStream's duplicate window, which
/// is stream-wide and time-bound).
const KEYS_PER_AGGREGATE: usize = 64;

/// Namespace of request digests.
const DIGEST_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x9f4c_1a7e_2b3d_4c5f_8e6a_7b0c_1d2e_3f40);

/// A digest of a command, stable across processes and builds that share its shape.
fn digest<C: serde::Serialize>(command: &C) -> String {
    let bytes = serde_json::to_vec(command).unwrap_or_default();
    uuid::Uuid::new_v5(&DIGEST_NAMESPACE, &bytes).to_string()
}

/// Who asks, and under which request: becomes the event's meta.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub actor: String,
    pub request_id: String,
    /// The client's idempotency key, already scoped by the door to the actor, the route and
    /// the aggregate, so the same key sent for another aggregate is another request.
    pub idempotency_key: Option<String>,
    /// The event that caused this command, when a worker reacts to one.
    pub causation_id: Option<uuid::Uuid>,
}

impl Context {
    /// The context of worker `worker` reacting to event `cause` (its `event_id`): the actor
    /// is `system:<worker>` and the request id the cause's, so that the log links the
    /// reaction to the request that started it.
    pub fn for_worker(worker: &str, cause: &events::Envelope) -> Self {
        Self {
            actor: crate::actor::system(worker),
            request_id: cause.meta.request_id.clone(),
            idempotency_key: None,
            causation_id: Some(cause.event_id),
        }
    }
}

/// The result of a command: the sequence the read models must reach for the caller to see
/// its write, and whether anything new was appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub seq: u64,
    pub appended: bool,
}

/// An idempotency key recorded on an aggregate: the event it produced and the digest of the
/// command that carried it.
struct Keyed {
    key: String,
    seq: u64,
    digest: Option<String>,
}

/// One aggregate in memory: its state, the sequence it was folded up to, and the
/// idempotency keys of its recent events. `current` is false whenever the state may be
/// behind the log (never read, or an append whose answer was not seen): the next command
/// catches up first.
struct Slot<A> {
    state: A,
    last_seq: u64,
    current: bool,
    /// Whether its history was ever read (or is known: it was empty when this process
    /// appended its first event).
    loaded: bool,
    keys: VecDeque<Keyed>,
}

impl<A: Aggregate> Slot<A> {
    fn new() -> Self {
        Self {
            state: A::default(),
            last_seq: 0,
            current: false,
            loaded: false,
            keys: VecDeque::new(),
        }
    }

    fn apply(&mut self, seq: u64, event: &A::Event, meta: &Meta) {
        self.state.evolve(event);
        self.last_seq = seq;
        if let Some(key) = &meta.idempotency_key {
            if self.keys.len() == KEYS_PER_AGGREGATE {
                self.keys.pop_front();
            }
            self.keys.push_back(Keyed {
                key: key.clone(),
                seq,
                digest: meta.request_digest.clone(),
            });
        }
    }

    fn seen(&self, key: &str) -> Option<&Keyed> {
        self.keys.iter().find(|k| k.key == key)
    }
}

/// Executes commands of one aggregate type against the event store.
///
/// Commands for one aggregate queue on its lock inside this process, so they do not
/// conflict with each other; commands for different aggregates run side by side. Writers in
/// other processes show up as a wrong expected sequence: catch up and decide again.
///
/// The cache saves reading an aggregate's history for each command, never correctness: a
/// decision to append meets the expected-sequence check of the log, and a decision to
/// append nothing (no change, or a refusal) is only given once the state has been caught up
/// with the log in this very command. So the first command on an aggregate this process
/// never read decides on the empty state without reading: a create costs one append.
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
    /// appends nothing and answers with the original event's sequence, or
    /// [`CommandError::KeyReused`] when the key came with another command.
    pub async fn execute(
        &self,
        id: &str,
        command: &A::Command,
        ctx: &Context,
    ) -> Result<Outcome, CommandError> {
        self.execute_decided(id, command, ctx)
            .await
            .map(|(outcome, _)| outcome)
    }

    /// As [`Repository::execute`], also answering the event this command appended (`None`
    /// when it appended nothing): what a caller reports of its own write, such as the units
    /// a charge moved, without reading the log again.
    #[tracing::instrument(skip_all, fields(aggregate = A::Event::AGGREGATE, aggregate_id = id, request_id = %ctx.request_id))]
    pub async fn execute_decided(
        &self,
        id: &str,
        command: &A::Command,
        ctx: &Context,
    ) -> Result<(Outcome, Option<A::Event>), CommandError> {
        let digest = ctx.idempotency_key.as_ref().map(|_| digest(command));
        let slot = self.slot(id);
        let mut slot = slot.lock().await;
        // Whether the state was read from the log during this command.
        let mut fresh = false;
        // An aggregate this process never read is taken as new: most are (a create), and
        // the append's expected sequence 0 says whether it was. One that was not is caught
        // up after the conflict, or before a refusal is answered. Not with an idempotency
        // key: its earlier use must be found in the history before anything is decided.
        let optimistic = !slot.loaded && ctx.idempotency_key.is_none();
        for attempt in 0..MAX_ATTEMPTS {
            if (!slot.current && !(optimistic && attempt == 0)) || attempt > 0 {
                self.catch_up(id, &mut slot).await?;
                fresh = true;
            }
            if let Some(seen) = ctx.idempotency_key.as_deref().and_then(|k| slot.seen(k)) {
                if seen.digest.is_some() && seen.digest != digest {
                    return Err(CommandError::KeyReused);
                }
                debug!(
                    seq = seen.seq,
                    "repeated request: answered from the original event"
                );
                return Ok((
                    Outcome {
                        seq: seen.seq,
                        appended: false,
                    },
                    None,
                ));
            }
            let event = match slot.state.decide(command) {
                Ok(Some(event)) => event,
                // Nothing to append: only say so on a state known to be current.
                Ok(None) | Err(_) if !fresh => {
                    self.catch_up(id, &mut slot).await?;
                    fresh = true;
                    match slot.state.decide(command)? {
                        Some(event) => event,
                        None => return Ok((self.unchanged(&slot), None)),
                    }
                }
                Ok(None) => return Ok((self.unchanged(&slot), None)),
                Err(e) => return Err(e.into()),
            };
            let meta = Meta {
                actor: ctx.actor.clone(),
                request_id: ctx.request_id.clone(),
                causation_id: ctx.causation_id,
                occurred_at: Utc::now(),
                idempotency_key: ctx.idempotency_key.clone(),
                request_digest: digest.clone(),
            };
            let envelope = Envelope::new(id, &event, meta).map_err(|e| StoreError::Corrupt {
                seq: 0,
                reason: e.to_string(),
            })?;
            // Until the append's answer is applied, the slot may be behind the log: were
            // this future dropped (the client went away), the next command catches up.
            slot.current = false;
            match self
                .store
                .append(&envelope, slot.last_seq, ctx.idempotency_key.as_deref())
                .await
            {
                Ok(appended) if appended.duplicate => {
                    // JetStream already holds this message id: the same request won a race
                    // elsewhere. Our state is behind; the next command catches up.
                    return Ok((
                        Outcome {
                            seq: appended.seq,
                            appended: false,
                        },
                        None,
                    ));
                }
                Ok(appended) => {
                    debug!(seq = appended.seq, event = %envelope.event_type, "appended");
                    metrics::counter!("gantry_events_appended_total", "type" => envelope.event_type.clone())
                        .increment(1);
                    slot.apply(appended.seq, &event, &envelope.meta);
                    slot.current = true;
                    slot.loaded = true;
                    return Ok((
                        Outcome {
                            seq: appended.seq,
                            appended: true,
                        },
                        Some(event),
                    ));
                }
                Err(StoreError::WrongLastSequence) => {
                    debug!(attempt, "another writer was first; deciding again");
                }
                Err(e) => return Err(e.into()),
            }
        }
        warn!("gave up after {MAX_ATTEMPTS} conflicting attempts");
        Err(CommandError::Conflict)
    }

    fn unchanged(&self, slot: &Slot<A>) -> Outcome {
        Outcome {
            seq: slot.last_seq,
            appended: false,
        }
    }

    /// Declares that aggregate `id` was just made up (a random UUID), so the next command
    /// on it decides on an empty state without reading the log. Were the id taken after
    /// all, the append would meet a wrong sequence and the command would be decided again
    /// on the real state.
    pub async fn assume_new(&self, id: &str) {
        let slot = self.slot(id);
        let mut slot = slot.lock().await;
        if !slot.current && slot.last_seq == 0 {
            slot.current = true;
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

    /// Folds the events appended after the slot's sequence into its state.
    async fn catch_up(&self, id: &str, slot: &mut Slot<A>) -> Result<(), StoreError> {
        slot.current = false;
        let recorded = self
            .store
            .read_after(A::Event::AGGREGATE, id, slot.last_seq)
            .await?;
        for r in recorded {
            let event: A::Event = r.envelope.decode().map_err(|e| StoreError::Corrupt {
                seq: r.seq,
                reason: e.to_string(),
            })?;
            slot.apply(r.seq, &event, &r.envelope.meta);
        }
        slot.current = true;
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
