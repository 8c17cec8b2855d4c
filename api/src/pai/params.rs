//! Reading the parameters of the door's JSON bodies and paths, said as OpenPAI's validation
//! (Joi) says a bad one: 400 `InvalidParametersError`.

use command::values::{GroupName, InvalidValue, Username};
use serde_json::{Map, Value};

use super::errors::PaiError;
use crate::{body::BodyError, input};

/// The body as a JSON object (every string of it checked by `crate::input`).
pub fn object(body: Result<bytes::Bytes, BodyError>) -> Result<Map<String, Value>, PaiError> {
    match input::json::<Value>(&body?)? {
        Value::Object(map) => Ok(map),
        _ => Err(PaiError::invalid("\"value\" must be an object")),
    }
}

/// Says an invalid value with the value itself, as Joi does for patterns.
pub fn said(raw: &str) -> impl FnOnce(InvalidValue) -> PaiError + '_ {
    move |invalid| PaiError::value(invalid, Some(raw))
}

fn required<'a>(params: &'a Map<String, Value>, name: &str) -> Result<&'a Value, PaiError> {
    match params.get(name) {
        None | Some(Value::Null) => Err(PaiError::invalid(format!("\"{name}\" is required"))),
        Some(value) => Ok(value),
    }
}

/// A string that may be empty.
pub fn string<'a>(params: &'a Map<String, Value>, name: &str) -> Result<&'a str, PaiError> {
    match required(params, name)? {
        Value::String(s) => Ok(s),
        _ => Err(PaiError::invalid(format!("\"{name}\" must be a string"))),
    }
}

pub fn boolean(params: &Map<String, Value>, name: &str) -> Result<bool, PaiError> {
    match required(params, name)? {
        Value::Bool(b) => Ok(*b),
        _ => Err(PaiError::invalid(format!("\"{name}\" must be a boolean"))),
    }
}

pub fn json_object(
    params: &Map<String, Value>,
    name: &str,
) -> Result<Map<String, Value>, PaiError> {
    match required(params, name)? {
        Value::Object(map) => Ok(map.clone()),
        _ => Err(PaiError::invalid(format!("\"{name}\" must be an object"))),
    }
}

/// An array of strings, each parsed by `parse`.
pub fn names<T>(
    params: &Map<String, Value>,
    name: &str,
    parse: impl Fn(&str) -> Result<T, InvalidValue>,
) -> Result<Vec<T>, PaiError> {
    match required(params, name)? {
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => parse(s).map_err(said(s)),
                _ => Err(PaiError::invalid(format!(
                    "\"{name}\" items must be strings"
                ))),
            })
            .collect(),
        _ => Err(PaiError::invalid(format!("\"{name}\" must be an array"))),
    }
}

/// A username of the path.
pub fn username(raw: &str) -> Result<Username, PaiError> {
    Username::parse(raw).map_err(said(raw))
}

/// A group's name of the path or the body.
pub fn group_name(raw: &str) -> Result<GroupName, PaiError> {
    GroupName::parse(raw).map_err(said(raw))
}

/// A path segment as sent, percent-decoded (`jimmy%40nchc` is `jimmy@nchc`).
pub fn decoded(segment: &str) -> Result<String, PaiError> {
    let bad = || PaiError::invalid(format!("\"{segment}\" is not a valid path segment"));
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_decoded() {
        assert_eq!(decoded("jimmy%40nchc").unwrap(), "jimmy@nchc");
        assert_eq!(decoded("a.b-c").unwrap(), "a.b-c");
        assert_eq!(decoded("%E7%8E%8B").unwrap(), "王");
        for bad in ["%", "%4", "%zz", "%FF", "%+1"] {
            assert!(decoded(bad).is_err(), "{bad}");
        }
    }
}
