//! The fields of each resource, written once: they validate POST and PATCH bodies and they
//! are what `OPTIONS` answers (DRF's `SimpleMetadata`), so the two never disagree.
//!
//! Bodies are JSON, a form (`application/x-www-form-urlencoded`) or `multipart/form-data`,
//! as DRF's three parsers took them; form values are text and are read as DRF's fields read
//! text (`"12"` is an integer). Messages are DRF's.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use command::values::{INT_MAX, INT_MIN, Su};
use serde_json::{Map, Value, json};

use super::errors::{AccountingError, FieldErrors, add};
use crate::input;

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Integer {
        min: i64,
        max: i64,
    },
    /// An integer id, or (beyond the original service) a name that gets one: partitions
    /// and QOS.
    NameOrId {
        min: i64,
        max: i64,
    },
    /// Service units, exact to 0.01.
    Amount,
    Datetime,
    Text {
        max_length: Option<usize>,
    },
    /// A list of related ids (`users`, `accounts`).
    Related,
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    pub read_only: bool,
}

const fn field(name: &'static str, kind: Kind, required: bool, read_only: bool) -> Field {
    Field {
        name,
        kind,
        required,
        read_only,
    }
}

const INT: Kind = Kind::Integer {
    min: INT_MIN,
    max: INT_MAX,
};
const TEXT: Kind = Kind::Text { max_length: None };
const fn text(max: usize) -> Kind {
    Kind::Text {
        max_length: Some(max),
    }
}

pub const JOB: &[Field] = &[
    field("jobnumber", INT, false, true),
    field("jobslurmid", INT, true, false),
    field(
        "cluster",
        text(command::values::CLUSTER_NAME_MAX),
        false,
        false,
    ),
    field("submitdate", Kind::Datetime, true, false),
    field("startdate", Kind::Datetime, false, false),
    field("enddate", Kind::Datetime, false, false),
    field("userid", INT, true, false),
    field("accountid", INT, true, false),
    field("amount", Kind::Amount, true, false),
    field("jobstatus", INT, true, false),
    field(
        "partition",
        Kind::NameOrId {
            min: INT_MIN,
            max: INT_MAX,
        },
        true,
        false,
    ),
    field(
        "qos",
        Kind::NameOrId {
            min: i16::MIN as i64,
            max: i16::MAX as i64,
        },
        true,
        false,
    ),
    field("created", Kind::Datetime, false, true),
    field("updated", Kind::Datetime, false, true),
];

pub const USER: &[Field] = &[
    field("userid", INT, false, true),
    field("accounts", Kind::Related, false, true),
    field(
        "username",
        text(command::values::SLURM_USERNAME_MAX),
        true,
        false,
    ),
    field("usermetadata", TEXT, true, false),
    field(
        "email",
        text(command::values::ACCOUNTING_EMAIL_MAX),
        true,
        false,
    ),
    field("ldapuid", INT, true, false),
    field("created", Kind::Datetime, false, true),
    field("updated", Kind::Datetime, false, true),
];

pub const ACCOUNT: &[Field] = &[
    field("accountid", INT, false, true),
    // Writable by admins only: see `fields_for`.
    field("users", Kind::Related, false, true),
    field(
        "accountname",
        text(command::values::ACCOUNT_NAME_MAX),
        true,
        false,
    ),
    field("accountallocation", INT, true, false),
    // The balance is the allocation minus the charges: never set (see the door's docs).
    field("accountbalance", INT, false, true),
    field("type", text(command::values::ACCOUNT_TYPE_MAX), true, false),
    field(
        "description",
        text(command::values::ACCOUNT_DESCRIPTION_MAX),
        true,
        false,
    ),
    field("created", Kind::Datetime, false, true),
    field("updated", Kind::Datetime, false, true),
];

/// The fields as `caller_is_admin` may write them: an account's `users` is writable by
/// admins only.
pub fn fields_for(fields: &'static [Field], caller_is_admin: bool) -> Vec<Field> {
    fields
        .iter()
        .map(|f| {
            let mut f = *f;
            if caller_is_admin && f.name == "users" {
                f.read_only = false;
            }
            f
        })
        .collect()
}

/// DRF's label of a field: its name with a capital first letter.
fn label(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The metadata of one action (`POST`, or `PATCH` where nothing is required).
fn action(fields: &[Field], partial: bool) -> Value {
    let mut out = Map::new();
    for f in fields {
        let (kind, extra) = match f.kind {
            Kind::Integer { min, max } | Kind::NameOrId { min, max } => (
                "integer",
                (!f.read_only).then(|| json!({ "min_value": min, "max_value": max })),
            ),
            Kind::Amount => (
                "float",
                Some(json!({ "min_value": 0, "max_value": INT_MAX })),
            ),
            Kind::Datetime => ("datetime", None),
            Kind::Text { max_length } => ("string", max_length.map(|m| json!({ "max_length": m }))),
            Kind::Related => ("field", None),
        };
        let mut entry = json!({
            "type": kind,
            "required": f.required && !partial,
            "read_only": f.read_only,
            "label": label(f.name),
        });
        if let (Some(Value::Object(extra)), Value::Object(entry)) = (extra, &mut entry) {
            entry.extend(extra);
        }
        out.insert(f.name.to_string(), entry);
    }
    Value::Object(out)
}

/// What `OPTIONS` answers: `name` is `Job List` or `Job Instance`, `path` the resource's
/// collection (`jobs`).
pub fn metadata(name: &str, path: &str, fields: &[Field], item: bool) -> Value {
    let (verb, partial) = if item {
        ("PATCH", true)
    } else {
        ("POST", false)
    };
    json!({
        "name": name,
        "description": format!("ViewSet for /api/{path}/"),
        "renders": ["application/json"],
        "parses": [
            "application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data"
        ],
        "actions": { verb: action(fields, partial) },
    })
}

/// A value of a body as one of the fields read it.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Int(i64),
    /// A name (partitions, QOS), not an id.
    Name(String),
    Amount(Su),
    Time(DateTime<Utc>),
    /// `null` for a field that may be empty (dates).
    Null,
    Text(String),
    List(Vec<i64>),
}

/// A body's fields, read against the rules of a resource.
pub struct Read {
    pub values: Map<String, Value>,
    pub parsed: std::collections::HashMap<&'static str, Parsed>,
    pub errors: FieldErrors,
}

impl Read {
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.parsed.get(name) {
            Some(Parsed::Int(v)) => Some(*v),
            _ => None,
        }
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        match self.parsed.get(name) {
            Some(Parsed::Text(v)) => Some(v),
            _ => None,
        }
    }

    pub fn time(&self, name: &str) -> Option<DateTime<Utc>> {
        match self.parsed.get(name) {
            Some(Parsed::Time(v)) => Some(*v),
            _ => None,
        }
    }

    pub fn amount(&self) -> Option<Su> {
        match self.parsed.get("amount") {
            Some(Parsed::Amount(v)) => Some(*v),
            _ => None,
        }
    }

    pub fn list(&self, name: &str) -> Option<&[i64]> {
        match self.parsed.get(name) {
            Some(Parsed::List(v)) => Some(v),
            _ => None,
        }
    }

    pub fn error(&mut self, name: &str, message: impl Into<String>) {
        add(&mut self.errors, name, message);
    }
}

/// The fields of a body. An empty body has none.
pub fn body(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>, AccountingError> {
    let original = content_type.unwrap_or_default().trim();
    let content_type = original.to_ascii_lowercase();
    if body.trim_ascii().is_empty() {
        return Ok(Map::new());
    }
    let value = if content_type.starts_with("application/x-www-form-urlencoded") {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| AccountingError::bad_request(format!("Form parse error - {e}")))?;
        form(pairs)
    } else if content_type.starts_with("multipart/form-data") {
        // The boundary keeps its case.
        let boundary = original
            .split(';')
            .filter_map(|p| {
                let p = p.trim();
                p.get(..9)
                    .filter(|k| k.eq_ignore_ascii_case("boundary="))
                    .map(|_| &p[9..])
            })
            .next()
            .map(|b| b.trim_matches('"').to_string())
            .ok_or_else(|| {
                AccountingError::bad_request(
                    "Multipart form parse error - Invalid boundary in multipart: None",
                )
            })?;
        form(multipart(body, &boundary).ok_or_else(|| {
            AccountingError::bad_request("Multipart form parse error - the body is not multipart")
        })?)
    } else {
        serde_json::from_slice(body)
            .map_err(|e| AccountingError::bad_request(format!("JSON parse error - {e}")))?
    };
    input::check_strings(&value).map_err(|e| AccountingError::bad_request(e.to_string()))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(AccountingError::bad_request(
            "Invalid data. Expected a dictionary.",
        )),
    }
}

/// Form pairs as an object: a key given more than once is a list of its values.
fn form(pairs: Vec<(String, String)>) -> Value {
    let mut map = Map::new();
    for (key, value) in pairs {
        match map.get_mut(&key) {
            Some(Value::Array(values)) => values.push(Value::String(value)),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(value)]);
            }
            None => {
                map.insert(key, Value::String(value));
            }
        }
    }
    Value::Object(map)
}

/// The text parts of a `multipart/form-data` body (files are read as their text).
fn multipart(body: &[u8], boundary: &str) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    let delimiter = format!("--{}", boundary);
    let mut parts = Vec::new();
    let mut sections = text.split(delimiter.as_str());
    sections.next()?;
    for section in sections {
        if section.starts_with("--") {
            return Some(parts);
        }
        let section = section.strip_prefix("\r\n").unwrap_or(section);
        let (headers, value) = section.split_once("\r\n\r\n")?;
        let name = headers
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))?
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("name="))
            .next()?
            .trim_matches('"')
            .to_string();
        let value = value.strip_suffix("\r\n").unwrap_or(value);
        parts.push((name, value.to_string()));
    }
    None
}

/// Reads `values` against `fields`: every writable field present is checked, and with
/// `partial` false every required one must be present. Read-only fields are ignored, as
/// DRF ignores them.
pub fn read(fields: &[Field], values: Map<String, Value>, partial: bool) -> Read {
    let mut read = Read {
        values,
        parsed: Default::default(),
        errors: FieldErrors::new(),
    };
    for f in fields.iter().filter(|f| !f.read_only) {
        let Some(value) = read.values.get(f.name) else {
            if f.required && !partial {
                read.error(f.name, "This field is required.");
            }
            continue;
        };
        match parse(f, value) {
            Ok(parsed) => {
                read.parsed.insert(f.name, parsed);
            }
            Err(message) => read.error(f.name, message),
        }
    }
    read
}

/// The text of a scalar as DRF's fields take it: strings, and numbers as their text.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse(f: &Field, value: &Value) -> Result<Parsed, String> {
    if value.is_null() {
        return match f.kind {
            Kind::Datetime if !f.required => Ok(Parsed::Null),
            _ => Err("This field may not be null.".into()),
        };
    }
    match f.kind {
        Kind::Integer { min, max } => integer(value, min, max).map(Parsed::Int),
        Kind::NameOrId { min, max } => match value {
            Value::String(s) if !s.trim().is_empty() && s.trim().parse::<i64>().is_err() => {
                command::values::SlurmName::parse(s.trim())
                    .map(|n| Parsed::Name(n.into_string()))
                    .map_err(|e| format!("This field {}.", e.problem))
            }
            _ => integer(value, min, max).map(Parsed::Int),
        },
        Kind::Amount => {
            let text = scalar_text(value).ok_or("A valid number is required.")?;
            match text.parse::<f64>() {
                Ok(x) if x.is_finite() => {}
                _ => return Err("A valid number is required.".into()),
            }
            if text.starts_with('-') && text.trim_start_matches(['-', '0', '.']).is_empty() {
                return Ok(Parsed::Amount(Su::ZERO));
            }
            if text.starts_with('-') {
                return Err("Ensure this value is greater than or equal to 0.".into());
            }
            Su::parse_decimal(&text)
                .map(Parsed::Amount)
                .map_err(|_| format!("Ensure this value is less than or equal to {INT_MAX}."))
        }
        Kind::Datetime => {
            let text = value.as_str().map(str::trim).unwrap_or_default();
            datetime(text).map(Parsed::Time).ok_or_else(|| {
                "Datetime has wrong format. Use one of these formats instead: \
                 YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
                    .to_string()
            })
        }
        Kind::Text { max_length } => {
            let text = scalar_text(value).ok_or("Not a valid string.")?;
            if text.is_empty() {
                return Err("This field may not be blank.".into());
            }
            if let Some(max) = max_length
                && text.chars().count() > max
            {
                return Err(format!(
                    "Ensure this field has no more than {max} characters."
                ));
            }
            Ok(Parsed::Text(text))
        }
        Kind::Related => {
            let items: Vec<Value> = match value {
                Value::Array(items) => items.clone(),
                Value::String(s) if s.trim().is_empty() => Vec::new(),
                Value::String(s) => s.split(',').map(|p| Value::String(p.to_string())).collect(),
                other => vec![other.clone()],
            };
            let mut ids = Vec::new();
            for item in &items {
                match integer(item, 1, i64::MAX) {
                    Ok(id) => ids.push(id),
                    Err(_) => {
                        return Err(format!(
                            "Incorrect type. Expected pk value, received {}.",
                            type_name(item)
                        ));
                    }
                }
            }
            Ok(Parsed::List(ids))
        }
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "str",
        Value::Number(_) => "float",
        Value::Bool(_) => "bool",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
        Value::Null => "NoneType",
    }
}

/// DRF's `IntegerField`: an integer, or text of one (`"12"`, `"12.0"`), within range.
fn integer(value: &Value, min: i64, max: i64) -> Result<i64, String> {
    const INVALID: &str = "A valid integer is required.";
    let n = match value {
        Value::Number(n) => n.as_i64().ok_or(INVALID)?,
        Value::String(s) => {
            let s = s.trim();
            let s = s
                .split_once('.')
                .filter(|(_, frac)| frac.bytes().all(|b| b == b'0'))
                .map_or(s, |(int, _)| int);
            if s.len() > 20 {
                return Err("String value too large.".into());
            }
            s.parse::<i64>().map_err(|_| INVALID)?
        }
        _ => return Err(INVALID.into()),
    };
    if n < min {
        return Err(format!(
            "Ensure this value is greater than or equal to {min}."
        ));
    }
    if n > max {
        return Err(format!("Ensure this value is less than or equal to {max}."));
    }
    Ok(n)
}

/// An ISO 8601 date and time: with an offset, or without one (read as UTC).
pub fn datetime(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
    }
    None
}

/// A date filter: a whole UTC day for `YYYY-MM-DD`, else the second a date and time names.
pub fn date_range(text: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let from = day.and_hms_opt(0, 0, 0)?.and_utc();
        return Some((from, from + chrono::Duration::days(1)));
    }
    let t = datetime(text)?;
    let width = if t.timestamp_subsec_nanos() == 0 {
        chrono::Duration::seconds(1)
    } else {
        chrono::Duration::microseconds(1)
    };
    Some((t, t + width))
}

/// A time as DRF renders it: ISO 8601 in UTC with `Z`.
pub fn render_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_json_and_multipart_give_the_same_fields() {
        let json = body(
            Some("application/json"),
            br#"{"amount": 1337, "users": [1, 4]}"#,
        )
        .unwrap();
        let form = body(
            Some("application/x-www-form-urlencoded"),
            b"amount=1337&users=1&users=4",
        )
        .unwrap();
        let multi = body(
            Some("multipart/form-data; boundary=XyZ"),
            b"--XyZ\r\nContent-Disposition: form-data; name=\"amount\"\r\n\r\n1337\r\n--XyZ\r\nContent-Disposition: form-data; name=\"users\"\r\n\r\n1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"users\"\r\n\r\n4\r\n--XyZ--\r\n",
        )
        .unwrap();
        let fields = [
            field("amount", Kind::Amount, true, false),
            field("users", Kind::Related, false, false),
        ];
        for map in [json, form, multi] {
            let read = read(&fields, map, false);
            assert!(read.errors.is_empty(), "{:?}", read.errors);
            assert_eq!(read.amount().map(Su::hundredths), Some(133_700));
            assert_eq!(read.list("users"), Some(&[1, 4][..]));
        }
    }

    #[test]
    fn bad_values_get_drf_s_messages() {
        let fields = [
            field("amount", Kind::Amount, true, false),
            field(
                "qos",
                Kind::NameOrId {
                    min: -32768,
                    max: 32767,
                },
                true,
                false,
            ),
            field("submitdate", Kind::Datetime, true, false),
        ];
        let map = body(
            Some("application/json"),
            br#"{"amount": "NaN", "qos": 40000, "submitdate": "yesterday"}"#,
        )
        .unwrap();
        let read = read(&fields, map, false);
        assert_eq!(
            read.errors["amount"],
            json!(["A valid number is required."])
        );
        assert_eq!(
            read.errors["qos"],
            json!(["Ensure this value is less than or equal to 32767."])
        );
        assert!(
            read.errors["submitdate"][0]
                .as_str()
                .unwrap()
                .starts_with("Datetime has wrong format")
        );
    }

    #[test]
    fn date_filters_name_a_day_or_a_second() {
        let (from, to) = date_range("2017-07-18").unwrap();
        assert_eq!((to - from).num_hours(), 24);
        let (from, to) = date_range("2017-07-18T08:39:29Z").unwrap();
        assert_eq!(render_time(from), "2017-07-18T08:39:29Z");
        assert_eq!((to - from).num_seconds(), 1);
        assert!(date_range("July").is_none());
    }
}
