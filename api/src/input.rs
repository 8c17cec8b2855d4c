//! Reading a request body as JSON: the same rule for every door.
//!
//! Every string of the body, keys included, follows the domain's rule of all text
//! ([`command::values::check_text`]): no control characters other than tab and newline,
//! and never NUL. The check is here, on the whole document, so that a field added to any
//! door later is covered without a line of its own; the domain's values check again what
//! reaches a command.

use command::values::{Problem, check_text};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a body is not the JSON a door takes.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{0}")]
    Syntax(#[from] serde_json::Error),
    /// A string of the document breaks the rule of all text; `field` is its path
    /// (`name`, `datasets[1]`, `extension.key`).
    #[error("{field} {problem}")]
    Text { field: String, problem: Problem },
}

/// No single string of a body is longer than the body limit allows.
const MAX_STRING: usize = crate::body::LIMIT;

/// The body as `T`, once every string in it passed the rule of all text.
pub fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, InputError> {
    let value: Value = serde_json::from_slice(body)?;
    check_strings(&value)?;
    Ok(serde_json::from_value(value)?)
}

/// Checks every string of `value`, keys included.
pub fn check_strings(value: &Value) -> Result<(), InputError> {
    check_at(value, &mut String::new())
}

fn check_at(value: &Value, path: &mut String) -> Result<(), InputError> {
    match value {
        Value::String(s) => check(path, s),
        Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let checked = check_at(item, path);
            path.truncate(len);
            checked
        }),
        Value::Object(map) => map.iter().try_for_each(|(key, item)| {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
            let checked = check(path, key).and_then(|()| check_at(item, path));
            path.truncate(len);
            checked
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

fn check(path: &str, text: &str) -> Result<(), InputError> {
    check_text("value", text, MAX_STRING).map_err(|invalid| InputError::Text {
        field: if path.is_empty() {
            "value".into()
        } else {
            path.to_string()
        },
        problem: invalid.problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Named {
        #[allow(dead_code)]
        name: String,
    }

    #[test]
    fn every_string_of_a_body_is_checked_with_its_path() {
        assert!(json::<Named>(br#"{"name": "a\tb\nc"}"#).is_ok());
        let cases = [
            (r#"{"name": "a\u0000b"}"#, "name"),
            (
                r#"{"name": "x", "datasets": ["ok", "\u001b[31m"]}"#,
                "datasets[1]",
            ),
            (
                r#"{"name": "x", "extension": {"k\u0007": 1}}"#,
                "extension.k\u{7}",
            ),
            (r#"{"name": "x", "a": {"b": [{"c": "\r"}]}}"#, "a.b[0].c"),
        ];
        for (body, field) in cases {
            match json::<Named>(body.as_bytes()) {
                Err(InputError::Text { field: f, problem }) => {
                    assert_eq!((f.as_str(), problem), (field, Problem::ControlCharacter))
                }
                other => panic!("{body}: {other:?}"),
            }
        }
        assert!(matches!(
            json::<Named>(b"{\"name\": 5}"),
            Err(InputError::Syntax(_))
        ));
    }
}
