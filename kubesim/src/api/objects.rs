//! The verbs on objects: list, watch, get, create, update, patch, delete, and the
//! `status`, `scale` and `log` subresources.

use std::sync::Arc;

use hyper::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::errors::ApiError;
use super::{Body, Ctx, Req, Target, decode_body, json, table};
use crate::meta;
use crate::ops::{self, Deleted, Part, Propagation};
use crate::patch;
use crate::resources::{DEPLOYMENTS, PODS, RESOURCES, Resource};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::watch;

pub async fn dispatch(ctx: &Ctx, req: &Req, t: Target) -> Result<Response<Body>, ApiError> {
    let r = &RESOURCES[t.res];
    let ns = t.ns.clone().unwrap_or_default();
    match (t.name.as_deref(), t.sub.as_deref(), &req.method) {
        (None, None, &Method::GET) if is_watch(req) => watch::serve(ctx, req, &t, None),
        (None, None, &Method::GET) => list(ctx, req, &t),
        (None, None, &Method::POST) if r.namespaced && t.ns.is_none() => {
            Err(ApiError::method_not_allowed("POST"))
        }
        (None, None, &Method::POST) => create(ctx, req, t.res, &ns),
        (None, None, &Method::DELETE) => delete_collection(ctx, req, &t),
        (Some(name), None, &Method::GET) if is_watch(req) => watch::serve(ctx, req, &t, Some(name)),
        (Some(name), None | Some("status"), &Method::GET) => get(ctx, req, t.res, &ns, name),
        (Some(name), None, &Method::PUT) => update(ctx, req, t.res, &ns, name, Part::Main),
        (Some(name), Some("status"), &Method::PUT) => {
            update(ctx, req, t.res, &ns, name, Part::Status)
        }
        (Some(name), None, &Method::PATCH) => patch(ctx, req, t.res, &ns, name, Part::Main),
        (Some(name), Some("status"), &Method::PATCH) => {
            patch(ctx, req, t.res, &ns, name, Part::Status)
        }
        (Some(name), None, &Method::DELETE) => delete(ctx, req, t.res, &ns, name),
        (Some(name), Some("log"), &Method::GET) => pod_log(ctx, req, &ns, name),
        (Some(name), Some("scale"), &Method::GET) if t.res == DEPLOYMENTS => {
            let dep = ctx.store.read(|st| st.get(t.res, &ns, name).cloned());
            let dep = dep.ok_or_else(|| ApiError::not_found(r, name))?;
            Ok(json(StatusCode::OK, &scale_of(&dep)))
        }
        (Some(name), Some("scale"), &Method::PUT | &Method::PATCH) if t.res == DEPLOYMENTS => {
            scale(ctx, req, &ns, name)
        }
        (_, _, m) => Err(ApiError::method_not_allowed(m.as_str())),
    }
}

fn is_watch(req: &Req) -> bool {
    matches!(req.param("watch"), Some("true" | "1"))
}

fn dry_run(req: &Req) -> bool {
    req.param("dryRun").is_some()
}

/// A continue token: the list's resourceVersion and the last key it returned.
fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    format!("{rv}/{ns}/{name}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_continue(token: &str) -> Result<(u64, String, String), ApiError> {
    let bad = || ApiError::bad_request("invalid continue token");
    if !token.len().is_multiple_of(2) || !token.is_ascii() {
        return Err(bad());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let mut parts = text.splitn(3, '/');
    let rv = parts.next().and_then(|r| r.parse().ok()).ok_or_else(bad)?;
    let ns = parts.next().ok_or_else(bad)?.to_string();
    let name = parts.next().ok_or_else(bad)?.to_string();
    Ok((rv, ns, name))
}

fn list(ctx: &Ctx, req: &Req, t: &Target) -> Result<Response<Body>, ApiError> {
    let r = &RESOURCES[t.res];
    let labels = LabelSelector::parse(req.param("labelSelector").unwrap_or(""))?;
    let fields = FieldSelector::parse(req.param("fieldSelector").unwrap_or(""))?;
    let limit = match req.param("limit") {
        None => None,
        Some(l) => Some(
            l.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
        )
        .filter(|l| *l > 0),
    };
    let cont = req.param("continue").map(decode_continue).transpose()?;
    let (rv, items, next) = ctx.store.read(|st| {
        let rv = cont.as_ref().map(|c| c.0).unwrap_or(st.rv);
        let iter = match &cont {
            Some((_, ns, name)) => {
                st.list_after(t.res, t.ns.as_deref(), (ns.clone(), name.clone()))
            }
            None => st.list(t.res, t.ns.as_deref()),
        };
        let mut items = Vec::new();
        let mut next = None;
        for (_, obj) in iter {
            if !labels.matches(meta::labels(obj)) || !fields.matches(obj) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                next = items.last().map(|last: &Arc<Value>| {
                    encode_continue(rv, meta::namespace(last), meta::name(last))
                });
                break;
            }
            items.push(obj.clone());
        }
        (rv, items, next)
    });
    if req.wants_table() {
        return Ok(json(StatusCode::OK, &table::table(t.res, &items, rv)));
    }
    Ok(list_response(r, rv, next, &items))
}

/// A `…List` body, serialized without copying the objects.
fn list_response(
    r: &Resource,
    rv: u64,
    next: Option<String>,
    items: &[Arc<Value>],
) -> Response<Body> {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let Some(next) = next {
        metadata["continue"] = json!(next);
    }
    let head = json!({"kind": format!("{}List", r.kind), "apiVersion": r.api_version(), "metadata": metadata});
    let mut out = serde_json::to_vec(&head).unwrap_or_default();
    out.pop(); // the closing brace
    out.extend_from_slice(b",\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if serde_json::to_writer(&mut out, &**item).is_err() {
            out.extend_from_slice(b"{}");
        }
    }
    out.extend_from_slice(b"]}");
    let mut resp = Response::new(http_body_util::BodyExt::boxed(http_body_util::Full::new(
        bytes::Bytes::from(out),
    )));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn get(ctx: &Ctx, req: &Req, res: usize, ns: &str, name: &str) -> Result<Response<Body>, ApiError> {
    let obj = ctx.store.read(|st| st.get(res, ns, name).cloned());
    let obj = obj.ok_or_else(|| ApiError::not_found(&RESOURCES[res], name))?;
    if req.wants_table() {
        let rv = meta::resource_version(&obj).parse().unwrap_or(0);
        return Ok(json(StatusCode::OK, &table::table(res, &[obj], rv)));
    }
    Ok(json(StatusCode::OK, &obj))
}

/// The body as an object of this kind: JSON or YAML, `kind` and `apiVersion` matching
/// when given.
fn object_body(req: &Req, r: &Resource) -> Result<Value, ApiError> {
    let obj = if req
        .content_type
        .starts_with("application/vnd.kubernetes.protobuf")
    {
        super::protobuf::decode(&req.body)?
    } else {
        decode_body(&req.content_type, &req.body)?
    };
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body must be a JSON or YAML object",
        ));
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or(r.kind);
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| r.api_version());
    if kind != r.kind || api_version != r.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) and kind ({kind}) do not match the {} endpoint",
            r.plural
        )));
    }
    Ok(obj)
}

/// Puts the path's namespace into the body; a different one in the body is refused.
fn with_namespace(mut obj: Value, r: &Resource, ns: &str) -> Result<Value, ApiError> {
    if r.namespaced {
        let body_ns = meta::namespace(&obj);
        if !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        meta::metadata_mut(&mut obj).insert("namespace".into(), json!(ns));
    }
    Ok(obj)
}

fn create(ctx: &Ctx, req: &Req, res: usize, ns: &str) -> Result<Response<Body>, ApiError> {
    let r = &RESOURCES[res];
    let obj = with_namespace(object_body(req, r)?, r, ns)?;
    let dry = dry_run(req);
    let created = ctx.store.write(|st| ops::create(st, res, obj, dry))?;
    Ok(json(StatusCode::CREATED, &created))
}

fn update(
    ctx: &Ctx,
    req: &Req,
    res: usize,
    ns: &str,
    name: &str,
    part: Part,
) -> Result<Response<Body>, ApiError> {
    let r = &RESOURCES[res];
    let obj = with_namespace(object_body(req, r)?, r, ns)?;
    let dry = dry_run(req);
    let updated = ctx
        .store
        .write(|st| ops::update(st, res, ns, name, obj, part, dry))?;
    Ok(json(StatusCode::OK, &updated))
}

/// The patch formats, by content type.
#[derive(Debug, Clone, Copy, PartialEq)]
enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

fn patch_type(content_type: &str) -> Result<PatchType, ApiError> {
    match content_type.split(';').next().unwrap_or("").trim() {
        "application/json-patch+json" => Ok(PatchType::Json),
        "application/merge-patch+json" => Ok(PatchType::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
        "application/apply-patch+yaml" => Ok(PatchType::Apply),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

fn apply_patch(kind: PatchType, target: &mut Value, body: &Value) -> Result<(), ApiError> {
    match kind {
        PatchType::Json => patch::json_patch(target, body),
        PatchType::Merge | PatchType::Apply => {
            if !body.is_object() {
                return Err(ApiError::bad_request("a merge patch must be an object"));
            }
            patch::merge(target, body);
            Ok(())
        }
        PatchType::Strategic => {
            if !body.is_object() {
                return Err(ApiError::bad_request(
                    "a strategic merge patch must be an object",
                ));
            }
            patch::strategic(target, body);
            Ok(())
        }
    }
}

/// Records what a server-side apply's field manager owns: the fields of its applied
/// configuration (lists whole).
fn record_manager(obj: &mut Value, manager: &str, api_version: &str, fields: Value) {
    let operation = "Apply";
    let entry = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": meta::now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    let m = meta::metadata_mut(obj);
    let mut list: Vec<Value> = m
        .get("managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    list.retain(|e| {
        e.get("manager").and_then(Value::as_str) != Some(manager)
            || e.get("operation").and_then(Value::as_str) != Some(operation)
    });
    list.push(entry);
    m.insert("managedFields".into(), Value::Array(list));
}

fn patch(
    ctx: &Ctx,
    req: &Req,
    res: usize,
    ns: &str,
    name: &str,
    part: Part,
) -> Result<Response<Body>, ApiError> {
    let r = &RESOURCES[res];
    let kind = patch_type(&req.content_type)?;
    let body = decode_body(&req.content_type, &req.body)?;
    let manager = req.param("fieldManager").map(String::from);
    if kind == PatchType::Apply && manager.is_none() {
        return Err(ApiError::bad_request(
            "PATCH requests with application/apply-patch+yaml require a fieldManager",
        ));
    }
    let dry = dry_run(req);
    let (status, obj) = ctx.store.write(|st| {
        let Some(old) = st.get(res, ns, name).cloned() else {
            if kind == PatchType::Apply && part == Part::Main {
                let mut obj = with_namespace(body.clone(), r, ns)?;
                if !obj.is_object() {
                    return Err(ApiError::bad_request("an apply patch must be an object"));
                }
                let body_name = meta::name(&obj);
                if !body_name.is_empty() && body_name != name {
                    return Err(ApiError::bad_request(
                        "the name in the body does not match the URL",
                    ));
                }
                meta::metadata_mut(&mut obj).insert("name".into(), json!(name));
                record_manager(
                    &mut obj,
                    manager.as_deref().unwrap_or(""),
                    &r.api_version(),
                    patch::field_set(&body),
                );
                return ops::create(st, res, obj, dry).map(|o| (StatusCode::CREATED, o));
            }
            return Err(ApiError::not_found(r, name));
        };
        let mut target = (*old).clone();
        if kind == PatchType::Apply
            && let Some(manager) = &manager
        {
            // Fields this manager applied before and left out now go away.
            let previous = old
                .pointer("/metadata/managedFields")
                .and_then(Value::as_array)
                .and_then(|list| {
                    list.iter().find(|e| {
                        e.get("manager").and_then(Value::as_str) == Some(manager.as_str())
                            && e.get("operation").and_then(Value::as_str) == Some("Apply")
                    })
                })
                .and_then(|e| e.get("fieldsV1"))
                .cloned();
            if let Some(previous) = previous {
                patch::drop_released(&mut target, &previous, &patch::field_set(&body));
            }
        }
        apply_patch(kind, &mut target, &body)?;
        if kind != PatchType::Json {
            // A resourceVersion in a merge patch is a precondition, not a change.
            let wanted = body
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str);
            let m = meta::metadata_mut(&mut target);
            match wanted {
                Some(rv) => m.insert("resourceVersion".into(), json!(rv)),
                None => m.remove("resourceVersion"),
            };
        }
        if kind == PatchType::Apply
            && let Some(manager) = &manager
        {
            record_manager(
                &mut target,
                manager,
                &r.api_version(),
                patch::field_set(&body),
            );
        }
        ops::update(st, res, ns, name, target, part, dry).map(|o| (StatusCode::OK, o))
    })?;
    Ok(json(status, &obj))
}

/// What a delete request asks: how dependents go, and preconditions on uid and
/// resourceVersion.
struct DeleteOptions {
    policy: Option<Propagation>,
    uid: Option<String>,
    rv: Option<String>,
}

fn delete_options(req: &Req) -> Result<DeleteOptions, ApiError> {
    let body: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else if req
        .content_type
        .starts_with("application/vnd.kubernetes.protobuf")
    {
        json!({"propagationPolicy": super::protobuf::delete_policy(&req.body)?})
    } else {
        decode_body(&req.content_type, &req.body)?
    };
    let policy = body
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .or(req.param("propagationPolicy"));
    let policy = match policy {
        Some(p) => Some(Propagation::parse(p)?),
        None if body.get("orphanDependents").and_then(Value::as_bool) == Some(true) => {
            Some(Propagation::Orphan)
        }
        None => None,
    };
    let uid = body
        .pointer("/preconditions/uid")
        .and_then(Value::as_str)
        .map(String::from);
    let rv = body
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
        .map(String::from);
    Ok(DeleteOptions { policy, uid, rv })
}

fn delete(
    ctx: &Ctx,
    req: &Req,
    res: usize,
    ns: &str,
    name: &str,
) -> Result<Response<Body>, ApiError> {
    let DeleteOptions { policy, uid, rv } = delete_options(req)?;
    if dry_run(req) {
        let obj = ctx.store.read(|st| st.get(res, ns, name).cloned());
        let obj = obj.ok_or_else(|| ApiError::not_found(&RESOURCES[res], name))?;
        return Ok(json(StatusCode::OK, &obj));
    }
    let deleted = ctx
        .store
        .write(|st| ops::delete(st, res, ns, name, policy, (uid.as_deref(), rv.as_deref())))?;
    Ok(match deleted {
        Deleted::Gone(obj) => json(StatusCode::OK, &obj),
        Deleted::Pending(obj) => json(
            if policy == Some(Propagation::Foreground) {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            },
            &obj,
        ),
    })
}

fn delete_collection(ctx: &Ctx, req: &Req, t: &Target) -> Result<Response<Body>, ApiError> {
    let r = &RESOURCES[t.res];
    let labels = LabelSelector::parse(req.param("labelSelector").unwrap_or(""))?;
    let fields = FieldSelector::parse(req.param("fieldSelector").unwrap_or(""))?;
    let policy = delete_options(req)?.policy;
    let (rv, items) = ctx.store.write(|st| {
        let keys: Vec<(String, String)> = st
            .list(t.res, t.ns.as_deref())
            .filter(|(_, o)| labels.matches(meta::labels(o)) && fields.matches(o))
            .map(|(k, _)| k.clone())
            .collect();
        let mut items = Vec::new();
        for (ns, name) in keys {
            match ops::delete(st, t.res, &ns, &name, policy, (None, None)) {
                Ok(Deleted::Gone(o) | Deleted::Pending(o)) => items.push(o),
                Err(e) => tracing::debug!(error = %e.message, "deletecollection skipped an object"),
            }
        }
        (st.rv, items)
    });
    Ok(list_response(r, rv, None, &items))
}

/// A deployment seen through its `scale` subresource (`autoscaling/v1` Scale).
fn scale_of(dep: &Value) -> Value {
    let selector = dep
        .pointer("/spec/selector")
        .map(LabelSelector::from_object)
        .map(|s| s.to_query())
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta::name(dep),
            "namespace": meta::namespace(dep),
            "uid": meta::uid(dep),
            "resourceVersion": meta::resource_version(dep),
            "creationTimestamp": dep.pointer("/metadata/creationTimestamp").cloned().unwrap_or(Value::Null),
        },
        "spec": {"replicas": dep.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": dep.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

fn scale(ctx: &Ctx, req: &Req, ns: &str, name: &str) -> Result<Response<Body>, ApiError> {
    let r = &RESOURCES[DEPLOYMENTS];
    let kind = if req.method == Method::PUT {
        None
    } else {
        Some(patch_type(&req.content_type)?)
    };
    let body = decode_body(&req.content_type, &req.body)?;
    let dry = dry_run(req);
    let dep = ctx.store.write(|st| {
        let old = st
            .get(DEPLOYMENTS, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(r, name))?;
        let mut scale = scale_of(&old);
        match kind {
            None => scale = body.clone(),
            Some(k) => apply_patch(k, &mut scale, &body)?,
        }
        let wanted_rv = meta::resource_version(&scale);
        if !wanted_rv.is_empty() && wanted_rv != meta::resource_version(&old) {
            return Err(ApiError::conflict(r, name));
        }
        let replicas = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                ApiError::invalid(
                    r,
                    name,
                    vec![super::errors::cause(
                        "spec.replicas",
                        "FieldValueInvalid",
                        "Invalid value: must be greater than or equal to 0",
                    )],
                )
            })?;
        let mut dep = (*old).clone();
        dep["spec"]["replicas"] = json!(replicas);
        meta::metadata_mut(&mut dep).remove("resourceVersion");
        ops::update(st, DEPLOYMENTS, ns, name, dep, Part::Main, dry)
    })?;
    Ok(json(StatusCode::OK, &scale_of(&dep)))
}

/// A pod's log: the simulator runs no containers, so a running container's log is one
/// line saying so; a container that has not started answers 400, as the kubelet does.
fn pod_log(ctx: &Ctx, req: &Req, ns: &str, name: &str) -> Result<Response<Body>, ApiError> {
    let pod = ctx.store.read(|st| st.get(PODS, ns, name).cloned());
    let pod = pod.ok_or_else(|| ApiError::not_found(&RESOURCES[PODS], name))?;
    let containers: Vec<&str> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let container = match (req.param("container"), containers.as_slice()) {
        (Some(c), _) if containers.contains(&c) => c,
        (Some(c), _) => {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            )));
        }
        (None, [only]) => only,
        (None, _) => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: {containers:?}"
            )));
        }
    };
    let running = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|s| s.get("name").and_then(Value::as_str) == Some(container))
        })
        .is_some_and(|s| s.pointer("/state/running").is_some());
    if !running {
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start"
        )));
    }
    let text = format!(
        "kubesim: container {container} of pod {ns}/{name} is running (the simulator runs no processes)\n"
    );
    let mut resp = Response::new(http_body_util::BodyExt::boxed(http_body_util::Full::new(
        bytes::Bytes::from(text),
    )));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    Ok(resp)
}
