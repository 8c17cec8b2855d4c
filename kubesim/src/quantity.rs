//! Resource quantities (`500m`, `2`, `128Gi`, `1e3`) as plain numbers.

use serde_json::Value;

/// The value of a quantity in base units (cores, bytes, devices); `None` when malformed.
pub fn parse(q: &str) -> Option<f64> {
    let q = q.trim();
    let suffixes: [(&str, f64); 13] = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    for (suffix, mult) in suffixes {
        if let Some(num) = q.strip_suffix(suffix) {
            return num.parse::<f64>().ok().map(|n| n * mult);
        }
    }
    for (suffix, mult) in [("P", 1e15), ("E", 1e18)] {
        if let Some(num) = q.strip_suffix(suffix) {
            return num.parse::<f64>().ok().map(|n| n * mult);
        }
    }
    q.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A quantity held as JSON (string or number).
pub fn of(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::String(s) => parse(s),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// What a pod asks of a node.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Request {
    pub cpu: f64,
    pub memory: f64,
    pub gpu: f64,
}

pub const GPU: &str = "nvidia.com/gpu";

/// The sum of a pod's container requests. A missing request defaults to the limit, and
/// GPUs (an extended resource) are counted from limits, as Kubernetes does.
pub fn pod_request(pod: &Value) -> Request {
    let mut r = Request::default();
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for c in containers {
        let req = c.pointer("/resources/requests");
        let lim = c.pointer("/resources/limits");
        let pick = |name: &str| {
            of(req.and_then(|r| r.get(name)))
                .or_else(|| of(lim.and_then(|l| l.get(name))))
                .unwrap_or(0.0)
        };
        r.cpu += pick("cpu");
        r.memory += pick("memory");
        r.gpu += of(lim.and_then(|l| l.get(GPU)))
            .or_else(|| of(req.and_then(|r| r.get(GPU))))
            .unwrap_or(0.0);
    }
    r
}

/// A node's allocatable resources.
pub fn node_allocatable(node: &Value) -> Request {
    let a = node.pointer("/status/allocatable");
    let get = |k: &str| of(a.and_then(|a| a.get(k))).unwrap_or(0.0);
    Request {
        cpu: get("cpu"),
        memory: get("memory"),
        gpu: get(GPU),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_suffixes() {
        assert_eq!(parse("500m"), Some(0.5));
        assert_eq!(parse("2"), Some(2.0));
        assert_eq!(parse("1Gi"), Some(1073741824.0));
        assert_eq!(parse("1e3"), Some(1000.0));
        assert_eq!(parse("x"), None);
    }
}
