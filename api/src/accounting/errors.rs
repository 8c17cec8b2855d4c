//! The accounting service's envelope: `{"success": false, "error": "<one line>"}`, with
//! Django REST framework's field messages beside it (`"amount": ["A valid number is
//! required."]`) when fields were at fault, and DRF's own `{"detail": "Invalid page."}` for a
//! page out of range.

use command::{CommandError, DomainError, StoreError};
use projection::DbError;
use serde_json::{Map, Value, json};
use tracing::{error, warn};
use warp::{
    Reply,
    http::{HeaderValue, StatusCode},
    reply::{Response, json, with_status},
};

use crate::body::BodyError;

pub const NOT_AUTHORIZED: &str = "Not authorized.";

/// Field messages, in the order found.
pub type FieldErrors = Map<String, Value>;

/// Adds `message` under `field`.
pub fn add(errors: &mut FieldErrors, field: &str, message: impl Into<String>) {
    let entry = errors
        .entry(field.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(messages) = entry {
        messages.push(Value::String(message.into()));
    }
}

#[derive(Debug)]
pub struct AccountingError {
    status: StatusCode,
    body: Value,
    /// A 405 says which methods the path takes (`Allow`).
    allow: Option<&'static str>,
}

impl AccountingError {
    /// `{"success": false, "error": error}`.
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({ "success": false, "error": error.into() }),
            allow: None,
        }
    }

    /// 400 with the one-line error and each field's messages.
    pub fn fields(error: impl Into<String>, fields: FieldErrors) -> Self {
        let mut body = Map::new();
        body.insert("success".into(), Value::Bool(false));
        body.insert("error".into(), Value::String(error.into()));
        body.extend(fields);
        Self {
            status: StatusCode::BAD_REQUEST,
            body: Value::Object(body),
            allow: None,
        }
    }

    pub fn bad_request(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error)
    }

    /// 401: no credentials, or credentials that are not valid.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, NOT_AUTHORIZED)
    }

    /// 403: valid credentials that may not do this.
    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, NOT_AUTHORIZED)
    }

    /// DRF's answer to a page that is not there.
    pub fn invalid_page() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            body: json!({ "detail": "Invalid page." }),
            allow: None,
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found.")
    }

    pub fn method_not_allowed(method: &warp::http::Method, allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("Method \"{method}\" not allowed."),
            )
        }
    }

    /// A fault of Gantry's: logged with the request id, answered without details.
    pub fn unknown(error: impl std::fmt::Display) -> Self {
        error!(%error, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "A server error occurred.",
        )
    }

    pub fn unavailable(reason: impl std::fmt::Display) -> Self {
        warn!(%reason, "a backing service is unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service temporarily unavailable, try again later.",
        )
    }

    pub fn query(error: DbError) -> Self {
        match error {
            DbError::Refused(reason) => {
                warn!(%reason, "the database refused a value of the request");
                Self::bad_request("A value of the request cannot be stored.")
            }
            DbError::Unavailable(reason) => Self::unavailable(reason),
            other => Self::unknown(other),
        }
    }

    /// A failure of the command path; `invalid` is the resource's "Invalid … information."
    /// and `not_found` its "Invalid …/… not found.".
    pub fn command(error: CommandError, invalid: &str, not_found: &str) -> Self {
        match error {
            CommandError::Domain(DomainError::NotFound) => Self::bad_request(not_found),
            CommandError::Domain(DomainError::AlreadyExists) => Self::bad_request(format!(
                "{invalid} It conflicts with what is already recorded."
            )),
            CommandError::Domain(DomainError::Invalid(invalid_value)) => {
                let mut fields = FieldErrors::new();
                add(
                    &mut fields,
                    invalid_value.field,
                    format!("This field {}.", invalid_value.problem),
                );
                Self::fields(invalid, fields)
            }
            CommandError::Domain(DomainError::Forbidden) => Self::forbidden(),
            CommandError::Domain(e) => Self::unknown(e),
            CommandError::KeyReused => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "This Idempotency-Key was already used with another request.",
            ),
            CommandError::Conflict => Self::new(StatusCode::CONFLICT, error.to_string()),
            CommandError::Store(StoreError::Unavailable(reason)) => Self::unavailable(reason),
            CommandError::Store(e) => Self::unknown(e),
        }
    }
}

impl From<BodyError> for AccountingError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge => Self::new(StatusCode::PAYLOAD_TOO_LARGE, error.to_string()),
            BodyError::Read(_) => Self::bad_request(error.to_string()),
        }
    }
}

impl From<DbError> for AccountingError {
    fn from(error: DbError) -> Self {
        Self::query(error)
    }
}

impl Reply for AccountingError {
    fn into_response(self) -> Response {
        let mut response = with_status(json(&self.body), self.status).into_response();
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert("allow", HeaderValue::from_static(allow));
        }
        response
    }
}
