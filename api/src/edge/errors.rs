//! The edge door's envelope: `{"code": 422, "message": …}`, where `code` is the HTTP status,
//! and how every failure of the domain, the store and the token check is said in it.
//! Successes carry `code` 200 with their `data` and, for lists, `total`.

use command::{CommandError, DomainError, StoreError, password::HashError, values::InvalidValue};
use events::user::UserStatus;
use projection::DbError;
use serde_json::{Value, json};
use tracing::{error, warn};
use warp::{
    Reply,
    http::{HeaderValue, StatusCode},
    reply::{Response, json, with_status},
};

use crate::{
    auth::{AuthError, Throttled},
    body::BodyError,
    input::InputError,
};

#[derive(Debug)]
pub struct EdgeError {
    status: StatusCode,
    message: String,
    /// Sent as `Retry-After`, in seconds.
    retry_after: Option<u64>,
}

impl EdgeError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A parameter the endpoint cannot take: the document's 422.
    pub fn invalid(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Parameter validation error: {detail}"),
        )
    }

    /// A value the domain refused, under the name the edge door gives its field.
    pub fn value(invalid: InvalidValue) -> Self {
        let field = match invalid.field {
            "username" => "user",
            other => other,
        };
        Self::invalid(format!("{field} {}", invalid.problem))
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, what)
    }

    pub fn no_route() -> Self {
        Self::not_found("The requested resource does not exist.")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "The method is not allowed on this resource.",
        )
    }

    pub fn no_user(id: i64) -> Self {
        Self::not_found(format!("User {id} is not found."))
    }

    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "Only an admin may do this.")
    }

    /// A user who may not log in (pending or disabled).
    pub fn not_approved(status: UserStatus) -> Self {
        let message = match status {
            UserStatus::Pending => "The user is waiting for an admin's approval.",
            UserStatus::Approved | UserStatus::Disabled => "The user is disabled.",
        };
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// A fault of Gantry's: logged with the request id, answered without details.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        error!(%error, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Unexpected internal errors.",
        )
    }

    pub fn unavailable(reason: impl std::fmt::Display) -> Self {
        warn!(%reason, "a backing service is unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is unavailable now. Please try again later.",
        )
    }

    pub fn query(error: DbError) -> Self {
        match error {
            DbError::Refused(reason) => {
                warn!(%reason, "the database refused a value of the request");
                Self::invalid("a parameter has a value that cannot be stored")
            }
            DbError::Unavailable(reason) => Self::unavailable(reason),
            other => Self::internal(other),
        }
    }

    /// A failed password write: of the command path, or of the credential store.
    pub fn password_write(
        error: crate::PasswordWriteError,
        conflict: impl FnOnce() -> EdgeError,
    ) -> Self {
        match error {
            crate::PasswordWriteError::Command(e) => Self::command(e, conflict),
            crate::PasswordWriteError::Store(e) => Self::query(e),
        }
    }

    /// A failure of the command path; `conflict` is what an existing aggregate means here.
    pub fn command(error: CommandError, conflict: impl FnOnce() -> EdgeError) -> Self {
        match error {
            CommandError::Domain(DomainError::AlreadyExists) => conflict(),
            CommandError::Domain(DomainError::NotFound) => {
                Self::not_found("The user is not found.")
            }
            CommandError::Domain(DomainError::Invalid(invalid)) => Self::value(invalid),
            CommandError::Domain(DomainError::Forbidden) => Self::forbidden(),
            CommandError::Domain(DomainError::AdminNotDeletable) => {
                Self::new(StatusCode::FORBIDDEN, "An admin cannot be deleted.")
            }
            CommandError::Domain(DomainError::NotApproved(status)) => Self::not_approved(status),
            CommandError::Domain(DomainError::LastAdmin) => Self::new(
                StatusCode::FORBIDDEN,
                "The last admin cannot be demoted or disabled.",
            ),
            // Only a caller that skipped the roster meets this: a fault of Gantry's.
            CommandError::Domain(e @ DomainError::ReleaseRequired) => Self::internal(e),
            CommandError::KeyReused => {
                Self::invalid("this Idempotency-Key was already used with another request")
            }
            CommandError::Conflict => Self::new(StatusCode::CONFLICT, error.to_string()),
            CommandError::Store(StoreError::Unavailable(reason)) => Self::unavailable(reason),
            CommandError::Store(e) => Self::internal(e),
        }
    }
}

impl From<InputError> for EdgeError {
    fn from(error: InputError) -> Self {
        match error {
            InputError::Syntax(e) => Self::invalid(format!("the body is not valid JSON: {e}")),
            InputError::Text { field, problem } => Self::invalid(format!("{field} {problem}")),
        }
    }
}

impl From<AuthError> for EdgeError {
    fn from(error: AuthError) -> Self {
        let message = match error {
            AuthError::Missing => "User need to log in first.",
            AuthError::Malformed => "The Authorization header does not hold a token.",
            AuthError::Invalid => "The token is invalid.",
            AuthError::Expired => "The token has expired.",
            AuthError::Revoked => "The token has been revoked.",
            AuthError::NotApproved(status) => return Self::not_approved(status),
        };
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
}

impl From<Throttled> for EdgeError {
    fn from(throttled: Throttled) -> Self {
        let seconds = throttled.retry_after_secs();
        Self {
            retry_after: Some(seconds),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many failed login attempts. Try again in {seconds} seconds."),
            )
        }
    }
}

impl From<HashError> for EdgeError {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Busy => Self {
                retry_after: Some(1),
                ..Self::unavailable(error.to_string())
            },
            HashError::Failed(_) => Self::internal(error.to_string()),
        }
    }
}

impl From<BodyError> for EdgeError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge => Self::new(StatusCode::PAYLOAD_TOO_LARGE, error.to_string()),
            BodyError::Read(_) => Self::invalid(error),
        }
    }
}

impl Reply for EdgeError {
    fn into_response(self) -> Response {
        let mut response = with_status(
            json(&json!({ "code": self.status.as_u16(), "message": self.message })),
            self.status,
        )
        .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(seconds));
        }
        response
    }
}

/// A success in the edge envelope: `code` 200, `message`, and the answer's own `fields`
/// (`data`, `total`, `token`).
pub fn success(message: &str, fields: Value) -> Response {
    let mut body = json!({ "code": 200, "message": message });
    if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), fields) {
        body.extend(fields);
    }
    json(&body).into_response()
}
