//! A small OpenAPI v3 document per group-version. It lists every path with its
//! `x-kubernetes-group-version-kind` and the `fieldValidation` parameter, which is what
//! kubectl looks for to decide that the server validates fields itself (so it sends
//! `fieldValidation=Strict` rather than validating against full schemas).

use serde_json::{Map, Value, json};

use crate::resources::{RESOURCES, Resource};

fn gv_key(r: &Resource) -> String {
    r.gv_path().trim_start_matches('/').to_string()
}

pub fn root() -> Value {
    let mut paths = Map::new();
    for r in RESOURCES.iter() {
        let key = gv_key(r);
        paths.insert(
            key.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash=kubesim")}),
        );
    }
    json!({"paths": paths})
}

fn param(name: &str, place: &str) -> Value {
    json!({"name": name, "in": place, "schema": {"type": "string", "uniqueItems": true}})
}

fn operation(r: &Resource, id: &str, with_body: bool, kind: &str) -> Value {
    let mut params = vec![param("dryRun", "query"), param("fieldManager", "query")];
    if with_body {
        params.push(param("fieldValidation", "query"));
    }
    json!({
        "operationId": format!("{id}{kind}"),
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": id,
        "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": kind},
    })
}

/// The document for `api/v1` or `apis/apps/v1`; `None` for anything else.
pub fn group_version(key: &str) -> Option<Value> {
    let key = key.trim_end_matches('/');
    let members: Vec<&Resource> = RESOURCES.iter().filter(|r| gv_key(r) == key).collect();
    if members.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for r in members {
        let base = if r.namespaced {
            format!("{}/namespaces/{{namespace}}/{}", r.gv_path(), r.plural)
        } else {
            format!("{}/{}", r.gv_path(), r.plural)
        };
        let mut path_params = vec![];
        if r.namespaced {
            path_params.push(param("namespace", "path"));
        }
        paths.insert(
            base.clone(),
            json!({
                "parameters": path_params.clone(),
                "get": operation(r, "list", false, r.kind),
                "post": operation(r, "post", true, r.kind),
                "delete": operation(r, "deletecollection", false, r.kind),
            }),
        );
        let mut item_params = path_params.clone();
        item_params.push(param("name", "path"));
        paths.insert(
            format!("{base}/{{name}}"),
            json!({
                "parameters": item_params.clone(),
                "get": operation(r, "get", false, r.kind),
                "put": operation(r, "put", true, r.kind),
                "patch": operation(r, "patch", true, r.kind),
                "delete": operation(r, "delete", false, r.kind),
            }),
        );
        for sub in r.subresources.iter().filter(|s| **s != "log") {
            let kind = if *sub == "scale" { "Scale" } else { r.kind };
            let mut op_res = Resource { ..*r };
            if *sub == "scale" {
                op_res.group = "autoscaling";
            }
            paths.insert(
                format!("{base}/{{name}}/{sub}"),
                json!({
                    "parameters": item_params.clone(),
                    "get": operation(&op_res, "get", false, kind),
                    "put": operation(&op_res, "put", true, kind),
                    "patch": operation(&op_res, "patch", true, kind),
                }),
            );
        }
        let schema_name = format!(
            "io.k8s.api.{}.{}.{}",
            if r.group.is_empty() { "core" } else { r.group },
            r.version,
            r.kind
        );
        schemas.insert(
            schema_name,
            json!({
                "type": "object",
                "description": format!("{} (schema not detailed by kubesim)", r.kind),
                "x-kubernetes-preserve-unknown-fields": true,
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": super::discovery::GIT_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
