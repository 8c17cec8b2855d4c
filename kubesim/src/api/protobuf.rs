//! Kubernetes protobuf request bodies (the `k8s\0` envelope), as kubectl's imperative
//! commands send them (`kubectl create namespace|deployment|service`, `kubectl run`).
//! Only the messages and fields those commands fill in are known; the rest are skipped.
//! Bodies are turned into the JSON the rest of the server handles.

use serde_json::{Map, Value, json};

use super::errors::ApiError;

const MAGIC: &[u8] = b"k8s\0";

/// How a field is encoded and shown in JSON.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    /// A pointer integer, where an explicit 0 means 0.
    IntKeep,
    Bool,
    Msg(&'static [Field]),
    RepStr,
    RepMsg(&'static [Field]),
    /// `map<string, string>`.
    Map,
    /// `map<string, Quantity>`.
    QuantityMap,
    IntOrString,
}

type Field = (u64, &'static str, Kind);

const OBJECT_META: &[Field] = &[
    (1, "name", Kind::Str),
    (2, "generateName", Kind::Str),
    (3, "namespace", Kind::Str),
    (5, "uid", Kind::Str),
    (6, "resourceVersion", Kind::Str),
    (11, "labels", Kind::Map),
    (12, "annotations", Kind::Map),
    (14, "finalizers", Kind::RepStr),
];
const SELECTOR_REQUIREMENT: &[Field] = &[
    (1, "key", Kind::Str),
    (2, "operator", Kind::Str),
    (3, "values", Kind::RepStr),
];
const LABEL_SELECTOR: &[Field] = &[
    (1, "matchLabels", Kind::Map),
    (2, "matchExpressions", Kind::RepMsg(SELECTOR_REQUIREMENT)),
];
const CONTAINER_PORT: &[Field] = &[
    (1, "name", Kind::Str),
    (2, "hostPort", Kind::Int),
    (3, "containerPort", Kind::Int),
    (4, "protocol", Kind::Str),
    (5, "hostIP", Kind::Str),
];
const ENV_VAR: &[Field] = &[(1, "name", Kind::Str), (2, "value", Kind::Str)];
const RESOURCES: &[Field] = &[
    (1, "limits", Kind::QuantityMap),
    (2, "requests", Kind::QuantityMap),
];
const VOLUME_MOUNT: &[Field] = &[
    (1, "name", Kind::Str),
    (2, "readOnly", Kind::Bool),
    (3, "mountPath", Kind::Str),
    (4, "subPath", Kind::Str),
];
const CONTAINER: &[Field] = &[
    (1, "name", Kind::Str),
    (2, "image", Kind::Str),
    (3, "command", Kind::RepStr),
    (4, "args", Kind::RepStr),
    (5, "workingDir", Kind::Str),
    (6, "ports", Kind::RepMsg(CONTAINER_PORT)),
    (7, "env", Kind::RepMsg(ENV_VAR)),
    (8, "resources", Kind::Msg(RESOURCES)),
    (9, "volumeMounts", Kind::RepMsg(VOLUME_MOUNT)),
    (13, "terminationMessagePath", Kind::Str),
    (14, "imagePullPolicy", Kind::Str),
    (16, "stdin", Kind::Bool),
    (17, "stdinOnce", Kind::Bool),
    (18, "tty", Kind::Bool),
    (20, "terminationMessagePolicy", Kind::Str),
];
const POD_SPEC: &[Field] = &[
    (2, "containers", Kind::RepMsg(CONTAINER)),
    (3, "restartPolicy", Kind::Str),
    (4, "terminationGracePeriodSeconds", Kind::IntKeep),
    (5, "activeDeadlineSeconds", Kind::IntKeep),
    (6, "dnsPolicy", Kind::Str),
    (7, "nodeSelector", Kind::Map),
    (8, "serviceAccountName", Kind::Str),
    (10, "nodeName", Kind::Str),
    (11, "hostNetwork", Kind::Bool),
    (16, "hostname", Kind::Str),
    (17, "subdomain", Kind::Str),
    (19, "schedulerName", Kind::Str),
    (20, "initContainers", Kind::RepMsg(CONTAINER)),
];
const POD_TEMPLATE: &[Field] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (2, "spec", Kind::Msg(POD_SPEC)),
];
const ROLLING_UPDATE: &[Field] = &[
    (1, "maxUnavailable", Kind::IntOrString),
    (2, "maxSurge", Kind::IntOrString),
];
const STRATEGY: &[Field] = &[
    (1, "type", Kind::Str),
    (2, "rollingUpdate", Kind::Msg(ROLLING_UPDATE)),
];
const DEPLOYMENT_SPEC: &[Field] = &[
    (1, "replicas", Kind::IntKeep),
    (2, "selector", Kind::Msg(LABEL_SELECTOR)),
    (3, "template", Kind::Msg(POD_TEMPLATE)),
    (4, "strategy", Kind::Msg(STRATEGY)),
    (5, "minReadySeconds", Kind::Int),
    (6, "revisionHistoryLimit", Kind::IntKeep),
    (7, "paused", Kind::Bool),
    (9, "progressDeadlineSeconds", Kind::IntKeep),
];
const SERVICE_PORT: &[Field] = &[
    (1, "name", Kind::Str),
    (2, "protocol", Kind::Str),
    (3, "port", Kind::Int),
    (4, "targetPort", Kind::IntOrString),
    (5, "nodePort", Kind::Int),
];
const SERVICE_SPEC: &[Field] = &[
    (1, "ports", Kind::RepMsg(SERVICE_PORT)),
    (2, "selector", Kind::Map),
    (3, "clusterIP", Kind::Str),
    (4, "type", Kind::Str),
];
const NAMESPACE_SPEC: &[Field] = &[(1, "finalizers", Kind::RepStr)];

fn top_level(kind: &str) -> Option<&'static [Field]> {
    const NAMESPACE: &[Field] = &[
        (1, "metadata", Kind::Msg(OBJECT_META)),
        (2, "spec", Kind::Msg(NAMESPACE_SPEC)),
    ];
    const DEPLOYMENT: &[Field] = &[
        (1, "metadata", Kind::Msg(OBJECT_META)),
        (2, "spec", Kind::Msg(DEPLOYMENT_SPEC)),
    ];
    const SERVICE: &[Field] = &[
        (1, "metadata", Kind::Msg(OBJECT_META)),
        (2, "spec", Kind::Msg(SERVICE_SPEC)),
    ];
    const POD: &[Field] = &[
        (1, "metadata", Kind::Msg(OBJECT_META)),
        (2, "spec", Kind::Msg(POD_SPEC)),
    ];
    match kind {
        "Namespace" => Some(NAMESPACE),
        "Deployment" => Some(DEPLOYMENT),
        "Service" => Some(SERVICE),
        "Pod" => Some(POD),
        _ => None,
    }
}

fn bad() -> ApiError {
    ApiError::bad_request("malformed protobuf body")
}

/// One wire-format field: its number and either a varint or a length-delimited slice.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(b: &[u8], i: &mut usize) -> Result<u64, ApiError> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*i).ok_or_else(bad)?;
        *i += 1;
        out |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(out);
        }
    }
    Err(bad())
}

fn fields(b: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, ApiError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let key = varint(b, &mut i)?;
        let (num, wire) = (key >> 3, key & 7);
        match wire {
            0 => out.push((num, Wire::Varint(varint(b, &mut i)?))),
            1 => i += 8,
            2 => {
                let len = usize::try_from(varint(b, &mut i)?).map_err(|_| bad())?;
                let end = i
                    .checked_add(len)
                    .filter(|e| *e <= b.len())
                    .ok_or_else(bad)?;
                out.push((num, Wire::Bytes(&b[i..end])));
                i = end;
            }
            5 => i += 4,
            _ => return Err(bad()),
        }
    }
    if i > b.len() {
        return Err(bad());
    }
    Ok(out)
}

fn text(b: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec()).map_err(|_| bad())
}

fn map_entry(b: &[u8], quantity: bool) -> Result<(String, Value), ApiError> {
    let mut key = String::new();
    let mut value = Value::Null;
    for (num, w) in fields(b)? {
        match (num, w) {
            (1, Wire::Bytes(k)) => key = text(k)?,
            (2, Wire::Bytes(v)) if quantity => {
                for (n, q) in fields(v)? {
                    if let (1, Wire::Bytes(s)) = (n, q) {
                        value = json!(text(s)?);
                    }
                }
            }
            (2, Wire::Bytes(v)) => value = json!(text(v)?),
            _ => {}
        }
    }
    Ok((key, value))
}

fn message(b: &[u8], schema: &[Field]) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for (num, w) in fields(b)? {
        let Some((_, name, kind)) = schema.iter().find(|f| f.0 == num) else {
            continue;
        };
        let name = name.to_string();
        match (kind, w) {
            (Kind::Str, Wire::Bytes(s)) if !s.is_empty() => {
                out.insert(name, json!(text(s)?));
            }
            (Kind::Int, Wire::Varint(v)) if v != 0 => {
                out.insert(name, json!(v as i64));
            }
            (Kind::IntKeep, Wire::Varint(v)) => {
                out.insert(name, json!(v as i64));
            }
            (Kind::Bool, Wire::Varint(v)) if v != 0 => {
                out.insert(name, json!(true));
            }
            (Kind::Msg(inner), Wire::Bytes(s)) => {
                let m = message(s, inner)?;
                if !m.is_empty() {
                    out.insert(name, Value::Object(m));
                }
            }
            (Kind::RepStr, Wire::Bytes(s)) => {
                let list = out.entry(name).or_insert_with(|| json!([]));
                if let Value::Array(a) = list {
                    a.push(json!(text(s)?));
                }
            }
            (Kind::RepMsg(inner), Wire::Bytes(s)) => {
                let m = message(s, inner)?;
                let list = out.entry(name).or_insert_with(|| json!([]));
                if let Value::Array(a) = list {
                    a.push(Value::Object(m));
                }
            }
            (Kind::Map | Kind::QuantityMap, Wire::Bytes(s)) => {
                let (k, v) = map_entry(s, matches!(kind, Kind::QuantityMap))?;
                let map = out.entry(name).or_insert_with(|| json!({}));
                if let Value::Object(m) = map {
                    m.insert(k, v);
                }
            }
            (Kind::IntOrString, Wire::Bytes(s)) => {
                let (mut is_str, mut int, mut string) = (false, 0i64, String::new());
                for (n, w) in fields(s)? {
                    match (n, w) {
                        (1, Wire::Varint(t)) => is_str = t == 1,
                        (2, Wire::Varint(v)) => int = v as i32 as i64,
                        (3, Wire::Bytes(t)) => string = text(t)?,
                        _ => {}
                    }
                }
                out.insert(name, if is_str { json!(string) } else { json!(int) });
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Decodes a `k8s\0`-framed protobuf object into JSON.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let rest = body.strip_prefix(MAGIC).ok_or_else(bad)?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), None);
    for (num, w) in fields(rest)? {
        match (num, w) {
            (1, Wire::Bytes(tm)) => {
                for (n, w) in fields(tm)? {
                    match (n, w) {
                        (1, Wire::Bytes(s)) => api_version = text(s)?,
                        (2, Wire::Bytes(s)) => kind = text(s)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(r)) => raw = Some(r),
            _ => {}
        }
    }
    let schema = top_level(&kind).ok_or_else(|| {
        ApiError::unsupported_media_type(&format!(
            "application/vnd.kubernetes.protobuf (kind {kind:?} is only accepted as JSON or YAML)"
        ))
    })?;
    let mut obj = message(raw.ok_or_else(bad)?, schema)?;
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    Ok(Value::Object(obj))
}

/// The `propagationPolicy` of a protobuf `DeleteOptions` body, if it names one.
pub fn delete_policy(body: &[u8]) -> Result<Option<String>, ApiError> {
    let rest = body.strip_prefix(MAGIC).ok_or_else(bad)?;
    for (num, w) in fields(rest)? {
        if let (2, Wire::Bytes(raw)) = (num, w) {
            for (n, w) in fields(raw)? {
                if let (4, Wire::Bytes(p)) = (n, w) {
                    return Ok(Some(text(p)?).filter(|p| !p.is_empty()));
                }
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn field(num: u64, bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![(num << 3 | 2) as u8, bytes.len() as u8];
        v.extend_from_slice(bytes);
        v
    }

    #[test]
    fn decodes_a_namespace() -> TestResult {
        let type_meta = [field(1, b"v1"), field(2, b"Namespace")].concat();
        let meta = [field(1, b"team-a"), field(2, b"")].concat();
        let raw = field(1, &meta);
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &raw)].concat();
        let v = decode(&body)?;
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
        );
        Ok(())
    }

    fn hex(s: &str) -> Result<Vec<u8>, std::num::ParseIntError> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16))
            .collect()
    }

    /// The body kubectl 1.32 sends for `kubectl create deployment web --image=nginx:1.25
    /// --replicas=2 --port=80`.
    #[test]
    fn decodes_kubectl_create_deployment() -> TestResult {
        let body = hex(
            "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412bd010a1f0a0377656212001a0022002a003200380042005a0a0a036170701203776562128b010802120c0a0a0a0361707012037765621a710a1c0a0012001a0022002a003200380042005a0a0a036170701203776562125112330a056e67696e78120a6e67696e783a312e32352a00320a0a001000185022002a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a002200",
        )?;
        let v = decode(&body)?;
        assert_eq!(
            v,
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]},
                    },
                },
            })
        );
        Ok(())
    }

    /// `kubectl create service nodeport ns1 --tcp=80:8080`.
    #[test]
    fn decodes_kubectl_create_service() -> TestResult {
        let body = hex(
            "6b3873000a0d0a02763112075365727669636512680a1f0a036e733112001a0022002a003200380042005a0a0a0361707012036e733112410a1b0a0738302d38303830120354435018502207080010903f1a002800120a0a0361707012036e73311a0022084e6f6465506f72743a00420052005a00600068001a020a001a002200",
        )?;
        let v = decode(&body)?;
        assert_eq!(v["spec"]["type"], "NodePort");
        assert_eq!(
            v["spec"]["ports"],
            json!([{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}])
        );
        assert_eq!(v["spec"]["selector"], json!({"app": "ns1"}));
        Ok(())
    }

    #[test]
    fn rejects_garbage() {
        assert!(decode(b"k8s\0\xff\xff").is_err());
        assert!(decode(b"nope").is_err());
    }
}
