//! Django REST framework's envelope: `{"detail": …}` for errors of the request as a whole
//! (authentication, permissions, throttling, methods), and field errors as
//! `{"field": ["message", …], "non_field_errors": [...]}`, with DRF's own words.

use command::{CommandError, DomainError, StoreError, password::HashError};
use projection::DbError;
use serde_json::{Map, Value, json};
use tracing::{error, warn};
use warp::{
    Reply,
    http::{HeaderValue, Method, StatusCode},
    reply::{Response, json, with_status},
};

use crate::{
    auth::{AuthError, Throttled},
    body::BodyError,
    input::InputError,
};

/// DRF's words for the common failures of a field.
pub const REQUIRED: &str = "This field is required.";
pub const NULL: &str = "This field may not be null.";
pub const BLANK: &str = "This field may not be blank.";
pub const NOT_A_STRING: &str = "Not a valid string.";
pub const INVALID_EMAIL: &str = "Enter a valid email address.";
pub const NON_FIELD: &str = "non_field_errors";

/// What `TokenAuthentication` answers when no token came.
pub const NOT_AUTHENTICATED: &str = "Authentication credentials were not provided.";

#[derive(Debug)]
pub struct StudioError {
    status: StatusCode,
    body: Value,
    /// Sent as `Retry-After`, in seconds.
    retry_after: Option<u64>,
    /// A 401 says how to authenticate (`WWW-Authenticate: Token`), as DRF's does.
    authenticate: bool,
    /// A 405 says which methods the path takes (`Allow`).
    allow: Option<&'static str>,
}

/// The errors of a request's fields, in the order the fields were checked.
#[derive(Debug, Default)]
pub struct FieldErrors(Map<String, Value>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        let message = Value::String(message.into());
        match self.0.get_mut(field) {
            Some(Value::Array(messages)) => messages.push(message),
            _ => {
                self.0
                    .insert(field.to_string(), Value::Array(vec![message]));
            }
        }
    }

    /// `Err` with every error so far, if there is one.
    pub fn check(self) -> Result<(), StudioError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(StudioError::fields(self))
        }
    }
}

impl StudioError {
    pub fn detail(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({ "detail": detail.into() }),
            retry_after: None,
            authenticate: false,
            allow: None,
        }
    }

    /// 400 with field errors.
    pub fn fields(errors: FieldErrors) -> Self {
        Self {
            body: Value::Object(errors.0),
            ..Self::detail(StatusCode::BAD_REQUEST, "")
        }
    }

    /// 400 with one error of one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::default();
        errors.add(field, message);
        Self::fields(errors)
    }

    /// 400 with an error of the request's fields together (`non_field_errors`).
    pub fn non_field(message: impl Into<String>) -> Self {
        Self::field(NON_FIELD, message)
    }

    /// 401 as `TokenAuthentication` says it.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self {
            authenticate: true,
            ..Self::detail(StatusCode::UNAUTHORIZED, detail)
        }
    }

    pub fn not_found() -> Self {
        Self::detail(StatusCode::NOT_FOUND, "Not found.")
    }

    pub fn forbidden() -> Self {
        Self::detail(
            StatusCode::FORBIDDEN,
            "You do not have permission to perform this action.",
        )
    }

    /// 405 for a method the path does not take; `allow` lists those it takes.
    pub fn method_not_allowed(method: &Method, allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::detail(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("Method \"{method}\" not allowed."),
            )
        }
    }

    /// A fault of Gantry's: logged with the request id, answered without details.
    pub fn unknown(error: impl std::fmt::Display) -> Self {
        error!(%error, "request failed");
        Self::detail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "A server error occurred.",
        )
    }

    /// DRF's `ServiceUnavailable`.
    pub fn unavailable(reason: impl std::fmt::Display) -> Self {
        warn!(%reason, "a backing service is unavailable");
        Self::detail(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service temporarily unavailable, try again later.",
        )
    }

    pub fn query(error: DbError) -> Self {
        match error {
            DbError::Refused(reason) => {
                warn!(%reason, "the database refused a value of the request");
                Self::non_field("A value of the request cannot be stored.")
            }
            DbError::Unavailable(reason) => Self::unavailable(reason),
            other => Self::unknown(other),
        }
    }

    /// A failure of the command path; `conflict` is what an existing aggregate means here.
    pub fn command(error: CommandError, conflict: impl FnOnce() -> StudioError) -> Self {
        match error {
            CommandError::Domain(DomainError::AlreadyExists) => conflict(),
            CommandError::Domain(DomainError::NotFound) => Self::not_found(),
            CommandError::Domain(DomainError::Invalid(invalid)) => {
                Self::field(invalid.field, format!("This field {}.", invalid.problem))
            }
            CommandError::Domain(DomainError::Forbidden) => Self::forbidden(),
            CommandError::Domain(DomainError::NotApproved(_)) => {
                Self::unauthenticated("User inactive or deleted.")
            }
            CommandError::Domain(
                e @ (DomainError::AdminNotDeletable
                | DomainError::LastAdmin
                | DomainError::ReleaseRequired),
            ) => Self::unknown(e),
            CommandError::KeyReused => Self::detail(
                StatusCode::UNPROCESSABLE_ENTITY,
                "This Idempotency-Key was already used with another request.",
            ),
            CommandError::Conflict => Self::detail(StatusCode::CONFLICT, error.to_string()),
            CommandError::Store(StoreError::Unavailable(reason)) => Self::unavailable(reason),
            CommandError::Store(e) => Self::unknown(e),
        }
    }

    /// A failed password write: of the command path, or of the credential store.
    pub fn password_write(
        error: crate::PasswordWriteError,
        conflict: impl FnOnce() -> StudioError,
    ) -> Self {
        match error {
            crate::PasswordWriteError::Command(e) => Self::command(e, conflict),
            crate::PasswordWriteError::Store(e) => Self::query(e),
        }
    }
}

impl From<AuthError> for StudioError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Missing => Self::unauthenticated(NOT_AUTHENTICATED),
            AuthError::Malformed => {
                Self::unauthenticated("Invalid token header. No credentials provided.")
            }
            AuthError::NotApproved(_) => Self::unauthenticated("User inactive or deleted."),
            AuthError::Invalid | AuthError::Expired | AuthError::Revoked => {
                Self::unauthenticated("Invalid token.")
            }
        }
    }
}

impl From<Throttled> for StudioError {
    /// DRF's `Throttled`.
    fn from(throttled: Throttled) -> Self {
        let seconds = throttled.retry_after_secs();
        let unit = if seconds == 1 { "second" } else { "seconds" };
        Self {
            retry_after: Some(seconds),
            ..Self::detail(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Request was throttled. Expected available in {seconds} {unit}."),
            )
        }
    }
}

impl From<HashError> for StudioError {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Busy => Self {
                retry_after: Some(1),
                ..Self::unavailable(error.to_string())
            },
            HashError::Failed(_) => Self::unknown(error.to_string()),
        }
    }
}

impl From<BodyError> for StudioError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge => Self::detail(StatusCode::PAYLOAD_TOO_LARGE, error.to_string()),
            BodyError::Read(_) => Self::detail(StatusCode::BAD_REQUEST, error.to_string()),
        }
    }
}

impl From<InputError> for StudioError {
    fn from(error: InputError) -> Self {
        match error {
            // DRF's `ParseError`.
            InputError::Syntax(e) => {
                Self::detail(StatusCode::BAD_REQUEST, format!("JSON parse error - {e}"))
            }
            InputError::Text { field, problem } => {
                Self::field(&field, format!("This field {problem}."))
            }
        }
    }
}

impl Reply for StudioError {
    fn into_response(self) -> Response {
        let mut response = with_status(json(&self.body), self.status).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert("retry-after", HeaderValue::from(seconds));
        }
        if self.authenticate {
            headers.insert("www-authenticate", HeaderValue::from_static("Token"));
        }
        if let Some(allow) = self.allow {
            headers.insert("allow", HeaderValue::from_static(allow));
        }
        response
    }
}
