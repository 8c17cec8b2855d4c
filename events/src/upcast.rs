//! Upcasting: reading an event written in another schema version as the current one.
//!
//! Each aggregate's event enum knows its own older versions ([`DomainEvent::upcast_one`],
//! one step at a time: v1 → v2 → … → current). An event of a version newer than this build
//! knows cannot be read: its consumers stop there until a build that knows it takes over,
//! which is what happens during a rolling upgrade when a newer `serve` writes before an
//! older `project` is replaced.
//!
//! [`register`] adds an upcaster at run time. It stands for "a build that knows this
//! version": tests use it to play the newer build, and an operator's plug-in could use it to
//! read events of a version whose Rust type has not shipped yet.

use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{OnceLock, RwLock},
};

use serde_json::Value;

use crate::{DecodeError, DomainEvent};

/// Turns the `data` of one version of an event type into the current version's shape.
pub type Upcaster = fn(Value) -> Result<Value, String>;

type Registry = RwLock<HashMap<(String, u32), Upcaster>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// Registers `upcaster` for `version` of `event_type`: from now on, such events are read as
/// the current version.
pub fn register(event_type: &str, version: u32, upcaster: Upcaster) {
    registry()
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert((event_type.to_string(), version), upcaster);
}

/// The `data` of `version` of `event_type` in the current version's shape (borrowed when
/// it is the current version already).
pub fn to_current<'a, E: DomainEvent>(
    event_type: &str,
    version: u32,
    data: &'a Value,
) -> Result<Cow<'a, Value>, DecodeError> {
    let current = E::current_version(event_type);
    if version == current {
        return Ok(Cow::Borrowed(data));
    }
    let registered = registry()
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(&(event_type.to_string(), version))
        .copied();
    if let Some(upcaster) = registered {
        return upcaster(data.clone())
            .map(Cow::Owned)
            .map_err(|reason| DecodeError::Upcast {
                event_type: event_type.to_string(),
                version,
                reason,
            });
    }
    if version == 0 || version > current {
        return Err(DecodeError::UnknownVersion {
            event_type: event_type.to_string(),
            version,
        });
    }
    let mut data = data.clone();
    for from in version..current {
        data = E::upcast_one(event_type, from, data)?;
    }
    Ok(Cow::Owned(data))
}
