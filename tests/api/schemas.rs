//! Every event the suite writes, checked against `schemas/`: each test's log is read when
//! its instance is removed (`helpers::remove_instance`), and each envelope's `data` is
//! validated against `schemas/<type>.v<version>.json`. A test whose log holds an event its
//! schema refuses fails, naming the event and the refusal.
//!
//! What is not an envelope at all, or names a type or version no schema describes, is left
//! out: those are published on purpose by the tests of parking and halting (garbage, a
//! version from the future). That every type Gantry writes has a schema is the events
//! crate's own test.

use std::{collections::HashMap, path::PathBuf, sync::OnceLock};

use futures::StreamExt;
use serde_json::Value;

/// The compiled schemas, by file name (`UserCreated.v2.json`).
fn validators() -> &'static HashMap<String, jsonschema::Validator> {
    static VALIDATORS: OnceLock<HashMap<String, jsonschema::Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let mut validators = HashMap::new();
        for entry in std::fs::read_dir(&dir).expect("schemas/ is readable") {
            let path = entry.expect("an entry of schemas/").path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a schema file");
            let schema: Value = serde_json::from_str(&text).expect("a schema is JSON");
            let validator = jsonschema::validator_for(&schema)
                .unwrap_or_else(|e| panic!("{} is not a valid schema: {e}", path.display()));
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("a file name")
                .to_string();
            validators.insert(name, validator);
        }
        validators
    })
}

/// Why `payload` (one message of the log, at `seq`) breaks its schema, if it does.
pub fn violation(seq: u64, payload: &[u8]) -> Option<String> {
    let envelope: Value = serde_json::from_slice(payload).ok()?;
    let (Some(event_type), Some(version)) =
        (envelope["type"].as_str(), envelope["version"].as_u64())
    else {
        return None;
    };
    let file = format!("{event_type}.v{version}.json");
    let validator = validators().get(&file)?;
    let errors: Vec<String> = validator
        .iter_errors(&envelope["data"])
        .map(|e| format!("{e} (at {})", e.instance_path()))
        .collect();
    if errors.is_empty() {
        None
    } else {
        Some(format!(
            "seq {seq}: {event_type} v{version} does not match schemas/{file}: {}; data: {}",
            errors.join("; "),
            envelope["data"]
        ))
    }
}

/// Every violation in `stream`, in sequence order; a stream that cannot be read gives none
/// (the test that made it has already said why).
pub async fn violations(js: &async_nats::jetstream::Context, stream: &str) -> Vec<String> {
    let Ok(mut stream) = js.get_stream(stream).await else {
        return Vec::new();
    };
    let Ok(info) = stream.info().await else {
        return Vec::new();
    };
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    if info.state.messages == 0 {
        return Vec::new();
    }
    let stream = &stream;
    futures::stream::iter(first..=last)
        .map(|seq| async move { (seq, stream.direct_get(seq).await) })
        .buffered(64)
        .filter_map(|(seq, message)| async move { violation(seq, &message.ok()?.payload) })
        .collect()
        .await
}

#[test]
fn a_schema_refuses_data_of_the_wrong_shape() {
    let good = serde_json::json!({
        "type": "CourseDeleted", "version": 1, "data": {}
    });
    assert_eq!(violation(1, good.to_string().as_bytes()), None);
    let bad = serde_json::json!({
        "type": "UserCreated", "version": 2, "data": {"username": 7, "admin": false}
    });
    let why = violation(2, bad.to_string().as_bytes()).expect("refused");
    assert!(why.contains("seq 2: UserCreated v2"), "{why}");
    assert!(why.contains("username"), "{why}");
    let unknown = serde_json::json!({"type": "Launched", "version": 99, "data": 1});
    assert_eq!(violation(3, unknown.to_string().as_bytes()), None);
}
