//! Create, update and delete under the store's lock, with the bookkeeping the API server
//! does (uid, timestamps, generation, preconditions, finalizers). Shared by the HTTP
//! handlers and the controllers, so both follow the same rules.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::admission;
use crate::api::errors::ApiError;
use crate::meta;
use crate::resources::{DEPLOYMENTS, NAMESPACES, NODES, PODS, RESOURCES};
use crate::store::State;

/// Characters Kubernetes uses for generated name suffixes.
const SUFFIX_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A random 5-character suffix, as `generateName` and ReplicaSet pods use.
pub fn random_suffix() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5]
        .iter()
        .map(|b| SUFFIX_CHARS[*b as usize % SUFFIX_CHARS.len()] as char)
        .collect()
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The object itself; its status is kept as it was.
    Main,
    /// The `status` subresource; everything else is kept as it was.
    Status,
}

/// Stores a new object after defaulting and validation. `dry_run` checks without storing.
pub fn create(
    st: &mut State,
    res: usize,
    mut obj: Value,
    dry_run: bool,
) -> Result<Arc<Value>, ApiError> {
    let r = &RESOURCES[res];
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body must be an object"));
    }
    if r.namespaced {
        st.check_namespace(meta::namespace(&obj))?;
    } else {
        meta::metadata_mut(&mut obj).remove("namespace");
    }
    let ns = meta::namespace(&obj).to_string();
    let mut name = meta::name(&obj).to_string();
    let prefix = meta::str_at(&obj, "/metadata/generateName").to_string();
    if name.is_empty() && !prefix.is_empty() {
        for _ in 0..8 {
            name = format!("{prefix}{}", random_suffix());
            if st.get(res, &ns, &name).is_none() {
                break;
            }
        }
    }
    if !name.is_empty() && st.get(res, &ns, &name).is_some() {
        return Err(ApiError::already_exists(r, &name));
    }
    obj["kind"] = json!(r.kind);
    obj["apiVersion"] = json!(r.api_version());
    let m = meta::metadata_mut(&mut obj);
    m.insert("name".into(), json!(name));
    m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    m.insert("creationTimestamp".into(), json!(meta::now()));
    m.insert("generation".into(), json!(1));
    for k in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        m.remove(k);
    }
    if res != NODES
        && let Some(o) = obj.as_object_mut()
    {
        o.remove("status");
    }
    admission::admit(st, res, &mut obj, None)?;
    if dry_run {
        return Ok(Arc::new(obj));
    }
    Ok(st.insert(res, obj))
}

/// Top-level fields other than metadata and status: what `generation` counts changes of.
fn spec_of(obj: &Value) -> Vec<(&String, &Value)> {
    obj.as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| {
                    !["metadata", "status", "kind", "apiVersion"].contains(&k.as_str())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Replaces an object (or its status). A `resourceVersion` in the body must match the
/// stored one; a write that changes nothing keeps the old resourceVersion.
pub fn update(
    st: &mut State,
    res: usize,
    ns: &str,
    name: &str,
    mut new: Value,
    part: Part,
    dry_run: bool,
) -> Result<Arc<Value>, ApiError> {
    let r = &RESOURCES[res];
    let old = st
        .get(res, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(r, name))?;
    if !new.is_object() {
        return Err(ApiError::bad_request("the body must be an object"));
    }
    let body_name = meta::name(&new);
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let body_rv = meta::resource_version(&new);
    if !body_rv.is_empty() && body_rv != meta::resource_version(&old) {
        return Err(ApiError::conflict(r, name));
    }
    let body_uid = meta::uid(&new);
    if !body_uid.is_empty() && body_uid != meta::uid(&old) {
        return Err(ApiError::conflict(r, name));
    }
    let mut new = match part {
        Part::Main => {
            if let Some(status) = old.get("status") {
                new["status"] = status.clone();
            }
            new
        }
        Part::Status => {
            let mut kept = (*old).clone();
            match new.get("status") {
                Some(s) => kept["status"] = s.clone(),
                None => {
                    if let Some(o) = kept.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            kept
        }
    };
    new["kind"] = json!(r.kind);
    new["apiVersion"] = json!(r.api_version());
    let generation = old
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let changed_spec = spec_of(&new) != spec_of(&old);
    {
        let m = meta::metadata_mut(&mut new);
        m.insert("name".into(), json!(name));
        if r.namespaced {
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "resourceVersion",
        ] {
            match old.pointer(&format!("/metadata/{k}")) {
                Some(v) => m.insert(k.into(), v.clone()),
                None => m.remove(k),
            };
        }
        m.insert(
            "generation".into(),
            json!(if changed_spec {
                generation + 1
            } else {
                generation
            }),
        );
        if !m.contains_key("managedFields")
            && let Some(mf) = old.pointer("/metadata/managedFields")
        {
            m.insert("managedFields".into(), mf.clone());
        }
    }
    admission::admit(st, res, &mut new, Some(&old))?;
    if new == *old || dry_run {
        return Ok(if dry_run { Arc::new(new) } else { old });
    }
    if meta::is_deleting(&new) && finalizers(&new).is_empty() && res != NAMESPACES {
        return st
            .remove(res, ns, name)
            .ok_or_else(|| ApiError::not_found(r, name));
    }
    Ok(st.replace(res, new))
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// How dependents go when their owner is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

impl Propagation {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "Background" => Ok(Self::Background),
            "Foreground" => Ok(Self::Foreground),
            "Orphan" => Ok(Self::Orphan),
            other => Err(ApiError::bad_request(format!(
                "propagationPolicy {other:?} is not one of Background, Foreground, Orphan"
            ))),
        }
    }
}

/// What a delete left: the object gone, or the object marked and waiting.
pub enum Deleted {
    Gone(Arc<Value>),
    Pending(Arc<Value>),
}

/// Deletes an object. Namespaces turn `Terminating` and the namespace controller empties
/// them; a foreground delete or pending finalizers mark the object and leave it until its
/// dependents or finalizers are gone.
pub fn delete(
    st: &mut State,
    res: usize,
    ns: &str,
    name: &str,
    policy: Option<Propagation>,
    preconditions: (Option<&str>, Option<&str>),
) -> Result<Deleted, ApiError> {
    let r = &RESOURCES[res];
    let old = st
        .get(res, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(r, name))?;
    if preconditions.0.is_some_and(|uid| uid != meta::uid(&old))
        || preconditions
            .1
            .is_some_and(|rv| rv != meta::resource_version(&old))
    {
        return Err(ApiError::conflict(r, name));
    }
    if res == NAMESPACES {
        if ["default", "kube-system", "kube-public"].contains(&name) {
            return Err(ApiError::forbidden(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            )));
        }
        if meta::is_deleting(&old) {
            return Ok(Deleted::Pending(old));
        }
        let mut ns_obj = (*old).clone();
        meta::metadata_mut(&mut ns_obj).insert("deletionTimestamp".into(), json!(meta::now()));
        meta::object_at(&mut ns_obj, &["status"]).insert("phase".into(), json!("Terminating"));
        return Ok(Deleted::Pending(st.replace(res, ns_obj)));
    }
    let mut fins = finalizers(&old);
    if policy == Some(Propagation::Foreground)
        && res == DEPLOYMENTS
        && !fins.iter().any(|f| f == "foregroundDeletion")
    {
        fins.push("foregroundDeletion".into());
    }
    if policy == Some(Propagation::Orphan) && res == DEPLOYMENTS {
        orphan_pods(st, meta::uid(&old));
    }
    if fins.is_empty() {
        return st
            .remove(res, ns, name)
            .map(Deleted::Gone)
            .ok_or_else(|| ApiError::not_found(r, name));
    }
    if meta::is_deleting(&old) && finalizers(&old) == fins {
        return Ok(Deleted::Pending(old));
    }
    let mut marked = (*old).clone();
    let m = meta::metadata_mut(&mut marked);
    m.entry("deletionTimestamp")
        .or_insert_with(|| json!(meta::now()));
    m.insert("deletionGracePeriodSeconds".into(), json!(0));
    m.insert("finalizers".into(), json!(fins));
    Ok(Deleted::Pending(st.replace(res, marked)))
}

/// Drops the owner reference from a deployment's pods, so they outlive it.
fn orphan_pods(st: &mut State, owner_uid: &str) {
    let owned: Vec<Value> = st
        .list(PODS, None)
        .filter(|(_, p)| meta::controller_uid(p) == Some(owner_uid))
        .map(|(_, p)| (**p).clone())
        .collect();
    for mut pod in owned {
        meta::metadata_mut(&mut pod).remove("ownerReferences");
        st.replace(PODS, pod);
    }
}

/// Removes a finalizer and deletes the object if it was the last one.
pub fn drop_finalizer(st: &mut State, res: usize, obj: &Value, finalizer: &str) {
    let mut fins = finalizers(obj);
    fins.retain(|f| f != finalizer);
    let (ns, name) = (
        meta::namespace(obj).to_string(),
        meta::name(obj).to_string(),
    );
    if fins.is_empty() {
        st.remove(res, &ns, &name);
    } else {
        let mut o = obj.clone();
        meta::metadata_mut(&mut o).insert("finalizers".into(), json!(fins));
        st.replace(res, o);
    }
}
