//! The state directory: a snapshot of every object and the resourceVersion counter,
//! written at most once a second while something changed (and at shutdown), atomically
//! through a temporary file and a rename, so a crash loses at most the last second.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::Error;
use crate::resources::{self, RESOURCES};
use crate::store::{State, Store};

const FILE: &str = "kubesim-state.json";

pub fn snapshot_path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// The state saved in `dir`, if any.
pub fn load(dir: &Path) -> Result<Option<State>, Error> {
    let path = snapshot_path(dir);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::StateDir { path, source }),
    };
    let doc: Value = serde_json::from_slice(&text).map_err(|e| Error::Snapshot {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let mut st = State::default();
    st.rv = doc
        .get("resourceVersion")
        .and_then(|v| v.as_str().and_then(|s| s.parse().ok()).or(v.as_u64()))
        .unwrap_or(1);
    if let Some(kinds) = doc.get("objects").and_then(Value::as_object) {
        for (plural, items) in kinds {
            let Some(res) = resources::by_plural(plural) else {
                continue;
            };
            for item in items.as_array().into_iter().flatten() {
                st.restore(res, item.clone());
            }
        }
    }
    Ok(Some(st))
}

/// Writes the snapshot if anything changed since the last one.
pub fn save(store: &Store, dir: &Path) -> Result<(), Error> {
    let Some((rv, objects)) = store.write(|st| {
        if !st.dirty {
            return None;
        }
        st.dirty = false;
        let objects: Vec<(usize, Arc<Value>)> =
            st.all_objects().map(|(r, o)| (r, o.clone())).collect();
        Some((st.rv, objects))
    }) else {
        return Ok(());
    };
    let mut kinds = Map::new();
    for r in RESOURCES.iter() {
        kinds.insert(r.plural.to_string(), json!([]));
    }
    for (res, obj) in objects {
        if let Some(Value::Array(list)) = kinds.get_mut(RESOURCES[res].plural) {
            list.push((*obj).clone());
        }
    }
    let doc = json!({"resourceVersion": rv.to_string(), "objects": kinds});
    let path = snapshot_path(dir);
    let tmp = dir.join(format!("{FILE}.tmp"));
    let io = |source| Error::StateDir {
        path: path.clone(),
        source,
    };
    let bytes = serde_json::to_vec(&doc).map_err(|e| Error::Snapshot {
        path: path.clone(),
        message: e.to_string(),
    })?;
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(())
}

/// Saves once a second while dirty, and a last time when `shutdown` turns true.
pub async fn run(store: Arc<Store>, dir: PathBuf, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = crate::stopped(&mut shutdown) => return,
        }
        let (store, dir2) = (store.clone(), dir.clone());
        match tokio::task::spawn_blocking(move || save(&store, &dir2)).await {
            Ok(Err(e)) => tracing::warn!(error = %e, "snapshot failed"),
            Err(e) => tracing::warn!(error = %e, "snapshot task failed"),
            Ok(Ok(())) => {}
        }
    }
}
