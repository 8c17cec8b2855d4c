//! Reading the edge door's parameters: a JSON object body, its fields, path ids and the
//! list's query. Every refusal is the document's 422.

use command::values::{InvalidValue, Password, Phone, RealName, Username};
use serde_json::{Map, Value};

use super::errors::EdgeError;
use crate::{body::BodyError, input};

/// The body as a JSON object (whatever its Content-Type says).
pub fn object(body: Result<bytes::Bytes, BodyError>) -> Result<Map<String, Value>, EdgeError> {
    match input::json::<Value>(&body?)? {
        Value::Object(map) => Ok(map),
        _ => Err(EdgeError::invalid("the body must be a JSON object")),
    }
}

pub fn required_string(params: &Map<String, Value>, name: &str) -> Result<String, EdgeError> {
    match params.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(EdgeError::invalid(format!("{name} is empty"))),
        None | Some(Value::Null) => Err(EdgeError::invalid(format!("{name} is required"))),
        Some(_) => Err(EdgeError::invalid(format!("{name} must be a string"))),
    }
}

/// A string that may be left out; an empty one is the same as none.
pub fn optional_string(
    params: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, EdgeError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(EdgeError::invalid(format!("{name} must be a string"))),
    }
}

pub fn optional_bool(params: &Map<String, Value>, name: &str) -> Result<bool, EdgeError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(EdgeError::invalid(format!("{name} must be a boolean"))),
    }
}

pub fn username(params: &Map<String, Value>) -> Result<Username, EdgeError> {
    Username::parse(required_string(params, "user")?).map_err(EdgeError::value)
}

/// A new password from field `name` (`password`, or `oldPassword`, whose name the message
/// keeps).
pub fn password(params: &Map<String, Value>, name: &'static str) -> Result<Password, EdgeError> {
    Password::parse(required_string(params, name)?).map_err(|invalid| {
        EdgeError::value(InvalidValue {
            field: name,
            ..invalid
        })
    })
}

pub fn phone(params: &Map<String, Value>) -> Result<Option<Phone>, EdgeError> {
    optional_string(params, "phone")?
        .map(|p| Phone::parse(p).map_err(EdgeError::value))
        .transpose()
}

pub fn real_name(params: &Map<String, Value>) -> Result<Option<RealName>, EdgeError> {
    optional_string(params, "realName")?
        .map(|n| RealName::parse(n).map_err(EdgeError::value))
        .transpose()
}

/// A user id of a path: the user's number, a positive integer.
pub fn user_number(raw: &str) -> Result<i64, EdgeError> {
    match raw.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(EdgeError::invalid(format!(
            "userId must be a positive integer, not \"{raw}\""
        ))),
    }
}

/// The most rows one page holds; `pageSize=0` (all rows) is the document's own choice.
pub const MAX_PAGE_SIZE: i64 = 1000;

/// `page` (from 1, default 1) and `pageSize` (default 10, 0 for all) of a list's query, as
/// the offset and the limit (`None`: no limit) of its rows.
pub fn paging(query: &str) -> Result<(i64, Option<i64>), EdgeError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query).map_err(EdgeError::invalid)?;
    let number = |name: &str, default: i64, min: i64, max: i64| match pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
    {
        None => Ok(default),
        Some((_, v)) => match v.trim().parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(EdgeError::invalid(format!(
                "{name} must be an integer from {min} to {max}"
            ))),
        },
    };
    let page = number("page", 1, 1, i64::from(i32::MAX))?;
    let size = number("pageSize", 10, 0, MAX_PAGE_SIZE)?;
    if size == 0 {
        return Ok((0, None));
    }
    Ok(((page - 1) * size, Some(size)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_count_from_one_and_zero_is_everything() {
        assert_eq!(paging("").unwrap(), (0, Some(10)));
        assert_eq!(paging("page=3&pageSize=5").unwrap(), (10, Some(5)));
        assert_eq!(paging("pageSize=0&page=7").unwrap(), (0, None));
        for bad in [
            "page=0",
            "page=x",
            "pageSize=-1",
            "pageSize=1001",
            "page=1.5",
        ] {
            assert!(paging(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn user_ids_are_positive_integers() {
        assert_eq!(user_number("12").unwrap(), 12);
        for bad in ["0", "-3", "abc", "1e3", ""] {
            assert!(user_number(bad).is_err(), "{bad}");
        }
    }
}
