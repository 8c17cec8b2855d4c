//! The course door's envelope: `{"error": true, "message": …}`, and how every failure of
//! the domain, the store and the token check is said in it.

use std::fmt::Display;

use command::{CommandError, DomainError, StoreError};
use projection::DbError;
use serde::de::DeserializeOwned;
use serde_json::json;
use warp::{
    Reply,
    http::StatusCode,
    reply::{Response, json, with_status},
};

use crate::{Principal, Tokens, auth::AuthError, body::BodyError};

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

    /// A body that is not the JSON the endpoint expects.
    pub fn parse(reason: impl Display) -> Self {
        Self::bad_request(format!("Failed to parse spec request request: {reason}"))
    }

    pub fn course_not_found() -> Self {
        Self::bad_request("Course Id is not found")
    }

    /// A failure of the command path, said with `context` ("Failed to create course
    /// information") where the document has one.
    pub fn command(error: CommandError, context: &str) -> Self {
        match error {
            CommandError::Domain(DomainError::NotFound) => Self::course_not_found(),
            CommandError::Domain(DomainError::AlreadyExists) => Self::new(
                StatusCode::CONFLICT,
                format!("{context}: course already exists"),
            ),
            CommandError::Domain(DomainError::Invalid(reason)) => Self::bad_request(reason),
            CommandError::Conflict => {
                Self::new(StatusCode::CONFLICT, format!("{context}: {error}"))
            }
            CommandError::Store(StoreError::Unavailable(reason)) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{context}: {reason}"),
            ),
            CommandError::Store(e) => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{context}: {e}"))
            }
        }
    }

    /// A failed read-model query, said with `context` ("query all course fail").
    pub fn query(error: DbError, context: &str) -> Self {
        let status = match error {
            DbError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, format!("{context}: {error}"))
    }
}

impl From<AuthError> for CourseError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Missing => {
                Self::new(StatusCode::UNAUTHORIZED, "Authorization header is missing")
            }
            AuthError::NotBearer => Self::new(
                StatusCode::UNAUTHORIZED,
                "Authorization header is not Bearer Token format or token is missing",
            ),
            AuthError::Invalid => Self::new(StatusCode::FORBIDDEN, "Invalid API token"),
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

/// The caller behind an `Authorization: Bearer` header.
pub fn authorize(tokens: &Tokens, header: Option<String>) -> Result<Principal, CourseError> {
    Ok(tokens.verify_bearer(header.as_deref())?)
}

/// The request body as `T`.
pub fn parse<T: DeserializeOwned>(body: Result<bytes::Bytes, BodyError>) -> Result<T, CourseError> {
    serde_json::from_slice(&body?).map_err(CourseError::parse)
}
