//! The course door's envelope: `{"error": true, "message": …}`, and how every failure of
//! the domain, the store and the token check is said in it.

use std::fmt::Display;

use command::{CommandError, DomainError, StoreError, values::InvalidValue};
use projection::DbError;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::{error, warn};
use warp::{
    Reply,
    http::StatusCode,
    reply::{Response, json, with_status},
};

use crate::{
    App, Principal,
    auth::AuthError,
    body::BodyError,
    input::{self, InputError},
};

#[derive(Debug)]
pub struct CourseError {
    status: StatusCode,
    message: String,
}

impl CourseError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// A body that is not the JSON the endpoint expects, or a value the domain cannot take.
    /// ("spec request request" is the platform's own wording: keep it.)
    pub fn parse(reason: impl Display) -> Self {
        Self::bad_request(format!("Failed to parse spec request request: {reason}"))
    }

    pub fn course_not_found() -> Self {
        Self::bad_request("Course Id is not found")
    }

    /// A failure of the command path, said with `context` ("Failed to create course
    /// information") where the document has one. Store failures are logged (with the
    /// request id of the span) and answered without their details.
    pub fn command(error: CommandError, context: &str) -> Self {
        match error {
            CommandError::Domain(DomainError::NotFound) => Self::course_not_found(),
            CommandError::Domain(DomainError::AlreadyExists) => Self::new(
                StatusCode::CONFLICT,
                format!("{context}: course already exists"),
            ),
            CommandError::Domain(DomainError::Invalid(invalid)) => invalid.into(),
            // Another user's course: "update course {id} information fail: only the owner
            // of this course or an admin may do this" (the platform let any token do it,
            // so it had no words for it).
            CommandError::Domain(DomainError::Forbidden) => Self::new(
                StatusCode::FORBIDDEN,
                format!("{context}: only the owner of this course or an admin may do this"),
            ),
            CommandError::Domain(other) => {
                Self::new(StatusCode::FORBIDDEN, format!("{context}: {other}"))
            }
            CommandError::KeyReused => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{context}: this Idempotency-Key was already used with another request"),
            ),
            CommandError::Conflict => {
                Self::new(StatusCode::CONFLICT, format!("{context}: {error}"))
            }
            CommandError::Store(StoreError::Unavailable(reason)) => {
                warn!(%reason, "event store unavailable");
                Self::unavailable(context)
            }
            CommandError::Store(e) => {
                error!(error = %e, "event store failed");
                Self::internal(context)
            }
        }
    }

    /// A failed read-model query, said with `context` ("query all course fail").
    pub fn query(error: DbError, context: &str) -> Self {
        match error {
            DbError::Refused(reason) => {
                warn!(%reason, "the database refused a value of the request");
                Self::bad_request(format!("{context}: invalid value"))
            }
            DbError::Unavailable(reason) => {
                warn!(%reason, "database unavailable");
                Self::unavailable(context)
            }
            other => {
                error!(error = %other, "database query failed");
                Self::internal(context)
            }
        }
    }

    fn unavailable(context: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{context}: service unavailable, try again later"),
        )
    }

    fn internal(context: &str) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{context}: internal error"),
        )
    }
}

impl From<InvalidValue> for CourseError {
    fn from(invalid: InvalidValue) -> Self {
        Self::parse(invalid)
    }
}

impl From<InputError> for CourseError {
    fn from(error: InputError) -> Self {
        Self::parse(error)
    }
}

impl From<AuthError> for CourseError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Missing => {
                Self::new(StatusCode::UNAUTHORIZED, "Authorization header is missing")
            }
            AuthError::Malformed => Self::new(
                StatusCode::UNAUTHORIZED,
                "Authorization header is not Bearer Token format or token is missing",
            ),
            AuthError::Invalid | AuthError::Revoked | AuthError::NotApproved(_) => {
                Self::new(StatusCode::FORBIDDEN, "Invalid API token")
            }
            AuthError::Expired => Self::new(StatusCode::FORBIDDEN, "Access token expired"),
        }
    }
}

impl From<BodyError> for CourseError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Failed to parse spec request request: {error}"),
            ),
            BodyError::Read(_) => Self::parse(error),
        }
    }
}

impl Reply for CourseError {
    fn into_response(self) -> Response {
        with_status(
            json(&json!({ "error": true, "message": self.message })),
            self.status,
        )
        .into_response()
    }
}

/// The caller behind an `Authorization: Bearer` header, as they are now. The course door
/// takes only the `Bearer` spelling, as its document says; other doors take more.
pub fn authorize(app: &App, header: Option<String>) -> Result<Principal, CourseError> {
    if header.as_deref().is_some_and(|h| !h.starts_with("Bearer ")) {
        return Err(AuthError::Malformed.into());
    }
    Ok(app.authenticate(header.as_deref())?)
}

/// The request body as `T`.
pub fn parse<T: DeserializeOwned>(body: Result<bytes::Bytes, BodyError>) -> Result<T, CourseError> {
    Ok(input::json(&body?)?)
}
