//! The object store: every object by kind, namespace and name, one resourceVersion
//! counter shared by all kinds (as etcd's revision is), and a bounded history of change
//! events that watches replay from.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use crate::api::errors::ApiError;
use crate::meta;
use crate::resources::{self, RESOURCES};

/// How many change events are kept for watches to replay; older resourceVersions get a
/// 410 `Expired`. Bounds memory whatever the rate of change.
pub const HISTORY_LIMIT: usize = 10_000;

/// One change, as a watch sends it.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub res: usize,
    pub event_type: &'static str,
    pub object: Arc<Value>,
    /// The object before a MODIFIED change, so a filtered watch can tell an object that
    /// enters or leaves its selection (sent as ADDED or DELETED).
    pub previous: Option<Arc<Value>>,
    /// The watch line (`{"type":..,"object":..}\n`), serialized once for every watcher.
    pub line: Bytes,
}

type Key = (String, String);

/// Everything the simulator knows, behind one lock.
#[derive(Debug)]
pub struct State {
    pub rv: u64,
    objects: Vec<BTreeMap<Key, Arc<Value>>>,
    history: VecDeque<Arc<Event>>,
    /// Changed since the last snapshot.
    pub dirty: bool,
}

impl Default for State {
    fn default() -> Self {
        State {
            rv: 1,
            objects: RESOURCES.iter().map(|_| BTreeMap::new()).collect(),
            history: VecDeque::new(),
            dirty: false,
        }
    }
}

impl State {
    pub fn get(&self, res: usize, ns: &str, name: &str) -> Option<&Arc<Value>> {
        self.objects[res].get(&(ns.to_string(), name.to_string()))
    }

    /// Objects of a kind, in namespace then name order; `ns` narrows to one namespace.
    pub fn list<'a>(
        &'a self,
        res: usize,
        ns: Option<&'a str>,
    ) -> Box<dyn Iterator<Item = (&'a Key, &'a Arc<Value>)> + 'a> {
        match ns {
            Some(ns) => Box::new(
                self.objects[res]
                    .range((ns.to_string(), String::new())..)
                    .take_while(move |((n, _), _)| n == ns),
            ),
            None => Box::new(self.objects[res].iter()),
        }
    }

    /// Objects after `after` (exclusive), for paged lists.
    pub fn list_after<'a>(
        &'a self,
        res: usize,
        ns: Option<&'a str>,
        after: Key,
    ) -> Box<dyn Iterator<Item = (&'a Key, &'a Arc<Value>)> + 'a> {
        use std::ops::Bound;
        let it = self.objects[res].range((Bound::Excluded(after), Bound::Unbounded));
        match ns {
            Some(ns) => Box::new(it.take_while(move |((n, _), _)| n == ns)),
            None => Box::new(it),
        }
    }

    pub fn count(&self, res: usize) -> usize {
        self.objects[res].len()
    }

    fn bump(&mut self, obj: &mut Value) -> u64 {
        self.rv += 1;
        self.dirty = true;
        meta::metadata_mut(obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.rv
    }

    fn record(
        &mut self,
        res: usize,
        event_type: &'static str,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
    ) {
        let mut line = serde_json::to_vec(&json!({"type": event_type, "object": &*object}))
            .unwrap_or_default();
        line.push(b'\n');
        self.history.push_back(Arc::new(Event {
            rv: self.rv,
            res,
            event_type,
            object,
            previous,
            line: Bytes::from(line),
        }));
        while self.history.len() > HISTORY_LIMIT {
            self.history.pop_front();
        }
    }

    /// Stores a new object as it is (metadata already filled in) under a fresh
    /// resourceVersion.
    pub fn insert(&mut self, res: usize, mut obj: Value) -> Arc<Value> {
        self.bump(&mut obj);
        let key = (
            meta::namespace(&obj).to_string(),
            meta::name(&obj).to_string(),
        );
        let obj = Arc::new(obj);
        self.objects[res].insert(key, obj.clone());
        self.record(res, "ADDED", obj.clone(), None);
        obj
    }

    /// Replaces an existing object under a fresh resourceVersion.
    pub fn replace(&mut self, res: usize, mut obj: Value) -> Arc<Value> {
        self.bump(&mut obj);
        let key = (
            meta::namespace(&obj).to_string(),
            meta::name(&obj).to_string(),
        );
        let obj = Arc::new(obj);
        let previous = self.objects[res].insert(key, obj.clone());
        self.record(res, "MODIFIED", obj.clone(), previous);
        obj
    }

    /// Removes an object; the DELETED event carries a fresh resourceVersion.
    pub fn remove(&mut self, res: usize, ns: &str, name: &str) -> Option<Arc<Value>> {
        let old = self.objects[res].remove(&(ns.to_string(), name.to_string()))?;
        let mut obj = (*old).clone();
        self.bump(&mut obj);
        let obj = Arc::new(obj);
        self.record(res, "DELETED", obj.clone(), None);
        Some(obj)
    }

    /// Events newer than `rv`, or `None` when the history no longer reaches back to it.
    pub fn events_since(&self, rv: u64) -> Option<Vec<Arc<Event>>> {
        match self.history.front() {
            // No history (just restored from a snapshot): only "now" can be served.
            None => (rv >= self.rv).then(Vec::new),
            Some(first) => {
                if rv + 1 < first.rv {
                    return None;
                }
                let start = self.history.partition_point(|e| e.rv <= rv);
                Some(self.history.range(start..).cloned().collect())
            }
        }
    }

    /// Every object, kind by kind, for a snapshot.
    pub fn all_objects(&self) -> impl Iterator<Item = (usize, &Arc<Value>)> {
        self.objects
            .iter()
            .enumerate()
            .flat_map(|(res, map)| map.values().map(move |v| (res, v)))
    }

    /// Puts back an object from a snapshot, without an event.
    pub fn restore(&mut self, res: usize, obj: Value) {
        let key = (
            meta::namespace(&obj).to_string(),
            meta::name(&obj).to_string(),
        );
        self.objects[res].insert(key, Arc::new(obj));
    }

    /// Does the namespace exist, and is it accepting new objects?
    pub fn check_namespace(&self, ns: &str) -> Result<(), ApiError> {
        match self.get(resources::NAMESPACES, "", ns) {
            None => Err(ApiError::not_found(&RESOURCES[resources::NAMESPACES], ns)),
            Some(obj) if meta::is_deleting(obj) => Err(ApiError::forbidden(format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ))),
            Some(_) => Ok(()),
        }
    }
}

/// The shared store: state behind a lock, plus wake-ups for watches and controllers.
#[derive(Debug)]
pub struct Store {
    state: Mutex<State>,
    /// Latest resourceVersion, for watches waiting on news.
    changed: watch::Sender<u64>,
    /// Wakes the controllers after any change.
    pub kick: Notify,
}

impl Store {
    pub fn new(state: State) -> Arc<Self> {
        let rv = state.rv;
        Arc::new(Store {
            state: Mutex::new(state),
            changed: watch::Sender::new(rv),
            kick: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change that matters
        // more than stopping the whole simulator would, so keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads under the lock.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.lock())
    }

    /// Changes under the lock, then wakes watches and controllers if anything changed.
    pub fn write<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let (r, before, after) = {
            let mut st = self.lock();
            let before = st.rv;
            let r = f(&mut st);
            (r, before, st.rv)
        };
        if after != before {
            self.changed.send_replace(after);
            self.kick.notify_one();
        }
        r
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}
