//! The patch formats clients send: JSON merge patch (RFC 7386), JSON patch (RFC 6902),
//! and a strategic merge patch that merges the well-known lists by their key.

use serde_json::{Map, Value};

use crate::api::errors::ApiError;

/// RFC 7386: objects merge, `null` deletes, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in patch {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// The key that identifies an element of a list field in a strategic merge patch.
fn merge_key(field: &str, sample: &Value) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "volumeDevices" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "conditions" => Some("type"),
        "ports" if sample.get("containerPort").is_some() => Some("containerPort"),
        "ports" if sample.get("port").is_some() => Some("port"),
        "ownerReferences" => Some("uid"),
        _ => None,
    }
}

/// A strategic merge patch: a merge patch whose known lists merge element by element,
/// honouring `$patch: delete` and dropping the other `$` directives.
pub fn strategic(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut p = patch.clone();
        p.remove("$patch");
        *target = Value::Object(p);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in patch {
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        if let (Some(Value::Array(old)), Value::Array(new)) = (t.get_mut(k), v)
            && let Some(key) = new.first().and_then(|s| merge_key(k, s))
        {
            merge_list(old, new, key);
            continue;
        }
        strategic(t.entry(k.clone()).or_insert(Value::Null), v);
    }
}

fn merge_list(old: &mut Vec<Value>, new: &[Value], key: &str) {
    for item in new {
        let Some(id) = item.get(key).cloned() else {
            old.push(item.clone());
            continue;
        };
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match old.iter().position(|o| o.get(key) == Some(&id)) {
            Some(i) if delete => {
                old.remove(i);
            }
            Some(i) => strategic(&mut old[i], item),
            None if delete => {}
            None => {
                let mut fresh = Value::Null;
                strategic(&mut fresh, item);
                old.push(fresh);
            }
        }
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn tokens(path: &str) -> Result<Vec<String>, ApiError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| ApiError::bad_request(format!("invalid JSON pointer {path:?}")))?;
    Ok(rest.split('/').map(unescape).collect())
}

fn parent<'a>(doc: &'a mut Value, toks: &[String]) -> Result<&'a mut Value, ApiError> {
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| {
            ApiError::unprocessable_patch(format!("path not found: /{}", toks.join("/")))
        })?;
    }
    Ok(cur)
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), ApiError> {
    let toks = tokens(path)?;
    let Some((last, init)) = toks.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent(doc, init)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            let i = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>()
                    .ok()
                    .filter(|i| *i <= a.len())
                    .ok_or_else(|| ApiError::unprocessable_patch(format!("bad index in {path}")))?
            };
            a.insert(i, value);
            Ok(())
        }
        _ => Err(ApiError::unprocessable_patch(format!(
            "cannot add at {path}"
        ))),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, ApiError> {
    let toks = tokens(path)?;
    let Some((last, init)) = toks.split_last() else {
        return Err(ApiError::unprocessable_patch(
            "cannot remove the whole document",
        ));
    };
    let missing = || ApiError::unprocessable_patch(format!("path not found: {path}"));
    match parent(doc, init)? {
        Value::Object(m) => m.remove(last).ok_or_else(missing),
        Value::Array(a) => {
            let i = last
                .parse::<usize>()
                .ok()
                .filter(|i| *i < a.len())
                .ok_or_else(missing)?;
            Ok(a.remove(i))
        }
        _ => Err(missing()),
    }
}

fn get(doc: &Value, path: &str) -> Result<Value, ApiError> {
    doc.pointer(path)
        .cloned()
        .ok_or_else(|| ApiError::unprocessable_patch(format!("path not found: {path}")))
}

/// RFC 6902, all six operations; a failed `test` fails the whole patch.
pub fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), ApiError> {
    let ops = ops
        .as_array()
        .ok_or_else(|| ApiError::bad_request("a JSON patch must be an array of operations"))?;
    let mut work = doc.clone();
    for op in ops {
        let field = |k: &str| {
            op.get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::bad_request(format!("JSON patch operation without {k:?}")))
        };
        let path = field("path")?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| ApiError::bad_request("JSON patch operation without \"value\""))
        };
        match field("op")? {
            "add" => add(&mut work, path, value()?)?,
            "remove" => {
                remove(&mut work, path)?;
            }
            "replace" => {
                remove(&mut work, path)?;
                add(&mut work, path, value()?)?;
            }
            "move" => {
                let v = remove(&mut work, field("from")?)?;
                add(&mut work, path, v)?;
            }
            "copy" => {
                let v = get(&work, field("from")?)?;
                add(&mut work, path, v)?;
            }
            "test" => {
                if get(&work, path)? != value()? {
                    return Err(ApiError::unprocessable_patch(format!(
                        "testing value {path} failed"
                    )));
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown JSON patch operation {other:?}"
                )));
            }
        }
    }
    *doc = work;
    Ok(())
}

/// The fields an applied configuration sets, in the shape of managedFields' `FieldsV1`
/// (`f:` keys; a list is owned whole, as an atomic list would be).
pub fn field_set(applied: &Value) -> Value {
    match applied {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "apiVersion" | "kind"))
                .map(|(k, v)| (format!("f:{k}"), field_set(v)))
                .collect(),
        ),
        _ => Value::Object(Map::new()),
    }
}

/// Removes from `target` the fields a manager set before (`previous`) and no longer sets
/// (`current`), as server-side apply does when a field leaves an applied configuration.
pub fn drop_released(target: &mut Value, previous: &Value, current: &Value) {
    let (Some(prev), Some(t)) = (previous.as_object(), target.as_object_mut()) else {
        return;
    };
    for (fk, sub) in prev {
        let Some(key) = fk.strip_prefix("f:") else {
            continue;
        };
        match current.get(fk) {
            None => {
                t.remove(key);
            }
            Some(cur) => {
                if let Some(child) = t.get_mut(key) {
                    drop_released(child, sub, cur);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_deletes_with_null() {
        let mut d = json!({"a": 1, "b": {"c": 2}});
        merge(&mut d, &json!({"a": null, "b": {"d": 3}}));
        assert_eq!(d, json!({"b": {"c": 2, "d": 3}}));
    }

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut d =
            json!({"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80}]}]});
        strategic(
            &mut d,
            &json!({"$setElementOrder/containers": [{"name": "a"}], "containers": [{"name": "a", "image": "y"}]}),
        );
        assert_eq!(
            d,
            json!({"containers": [{"name": "a", "image": "y", "ports": [{"containerPort": 80}]}]})
        );
    }

    #[test]
    fn json_patch_test_op_guards() {
        let mut d = json!({"spec": {"replicas": 1}});
        json_patch(&mut d, &json!([{"op": "test", "path": "/spec/replicas", "value": 1}, {"op": "replace", "path": "/spec/replicas", "value": 3}])).unwrap();
        assert_eq!(d["spec"]["replicas"], 3);
        let err = json_patch(
            &mut d,
            &json!([{"op": "test", "path": "/spec/replicas", "value": 1}]),
        );
        assert!(err.is_err());
        assert_eq!(d["spec"]["replicas"], 3);
    }
}
