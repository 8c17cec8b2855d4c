//! OpenPAI's envelope: `{"code": "NoUserError", "message": …}`.

use command::{
    CommandError, DomainError, StoreError,
    password::HashError,
    values::{InvalidValue, Problem},
};
use events::user::UserStatus;
use projection::DbError;
use serde_json::json;
use tracing::{error, warn};
use warp::{
    Reply,
    http::{HeaderValue, StatusCode},
    reply::{Response, json, with_status},
};

use crate::{
    App, Principal,
    auth::{AuthError, Throttled},
    body::BodyError,
    input::InputError,
};

#[derive(Debug)]
pub struct PaiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Sent as `Retry-After`, in seconds.
    retry_after: Option<u64>,
}

impl PaiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidParametersError", message)
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFoundError",
            "The requested resource does not exist.",
        )
    }

    /// A fault of Gantry's: logged with the request id, answered without details.
    pub fn unknown(error: impl std::fmt::Display) -> Self {
        error!(%error, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UnknownError",
            "An internal error occurred.",
        )
    }

    pub fn unavailable(reason: impl std::fmt::Display) -> Self {
        warn!(%reason, "a backing service is unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UnknownError",
            "The service is unavailable now. Please try again later.",
        )
    }

    pub fn query(error: DbError) -> Self {
        match error {
            DbError::Refused(reason) => {
                warn!(%reason, "the database refused a value of the request");
                Self::invalid("A parameter has a value that cannot be stored.")
            }
            DbError::Unavailable(reason) => Self::unavailable(reason),
            other => Self::unknown(other),
        }
    }

    /// A value the domain cannot take, said as OpenPAI's validation (Joi) says it;
    /// `value` is quoted where Joi quotes it.
    pub fn value(invalid: InvalidValue, value: Option<&str>) -> Self {
        let field = invalid.field;
        let message = match invalid.problem {
            Problem::Empty => format!("\"{field}\" is not allowed to be empty"),
            Problem::TooLong { max } => {
                format!("\"{field}\" length must be less than or equal to {max} characters long")
            }
            Problem::TooShort { min } => {
                format!("\"{field}\" length must be at least {min} characters long")
            }
            Problem::ControlCharacter => format!("\"{field}\" contains a control character"),
            Problem::Pattern { pattern } => match value {
                Some(value) => format!(
                    "\"{field}\" with value \"{value}\" fails to match the required pattern: {pattern}"
                ),
                None => format!("\"{field}\" fails to match the required pattern: {pattern}"),
            },
            Problem::OutOfRange { min, max } => {
                format!("\"{field}\" must be between {min} and {max}")
            }
            Problem::TooMany { max } => {
                format!("\"{field}\" must contain less than or equal to {max} items")
            }
            Problem::WrongType { expected } => format!("\"{field}\" must be a {expected}"),
        };
        Self::invalid(message)
    }

    /// A user who may not log in (see the module's decisions).
    pub fn not_approved(username: &str, status: UserStatus) -> Self {
        let message = match status {
            UserStatus::Pending => format!("User {username} is waiting for approval."),
            UserStatus::Approved | UserStatus::Disabled => {
                format!("User {username} is disabled.")
            }
        };
        Self::new(StatusCode::FORBIDDEN, "ForbiddenUserError", message)
    }

    /// A failed password write: of the command path, or of the credential store.
    pub fn password_write(
        error: crate::PasswordWriteError,
        conflict: impl FnOnce() -> PaiError,
    ) -> Self {
        match error {
            crate::PasswordWriteError::Command(e) => Self::command(e, conflict),
            crate::PasswordWriteError::Store(e) => Self::query(e),
        }
    }

    /// A failure of the command path; `conflict` is what an existing aggregate means here.
    pub fn command(error: CommandError, conflict: impl FnOnce() -> PaiError) -> Self {
        match error {
            CommandError::Domain(DomainError::AlreadyExists) => conflict(),
            CommandError::Domain(DomainError::NotFound) => Self::not_found(),
            CommandError::Domain(DomainError::Invalid(invalid)) => Self::value(invalid, None),
            CommandError::Domain(DomainError::Forbidden) => Self::forbidden(),
            CommandError::Domain(DomainError::AdminNotDeletable) => Self::new(
                StatusCode::FORBIDDEN,
                "RemoveAdminError",
                "Admin is not allowed to remove.",
            ),
            CommandError::Domain(DomainError::NotApproved(status)) => Self::new(
                StatusCode::FORBIDDEN,
                "ForbiddenUserError",
                format!("The user is {}.", status.as_str()),
            ),
            CommandError::Domain(DomainError::LastAdmin) => Self::new(
                StatusCode::FORBIDDEN,
                "ForbiddenUserError",
                "The last admin cannot be demoted or disabled.",
            ),
            // Only a caller that skipped the roster meets this: a fault of Gantry's.
            CommandError::Domain(e @ DomainError::ReleaseRequired) => Self::unknown(e),
            CommandError::KeyReused => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "UnprocessableEntityError",
                "This Idempotency-Key was already used with another request.",
            ),
            CommandError::Conflict => {
                Self::new(StatusCode::CONFLICT, "ConflictError", error.to_string())
            }
            CommandError::Store(StoreError::Unavailable(reason)) => Self::unavailable(reason),
            CommandError::Store(e) => Self::unknown(e),
        }
    }
}

impl From<InputError> for PaiError {
    fn from(error: InputError) -> Self {
        match error {
            InputError::Syntax(e) => Self::invalid(format!("Request body is not valid JSON: {e}")),
            InputError::Text { field, problem } => Self::invalid(format!("\"{field}\" {problem}")),
        }
    }
}

impl From<AuthError> for PaiError {
    fn from(_: AuthError) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UnauthorizedUserError",
            "Guest is not allowed to do this operation.",
        )
    }
}

impl From<Throttled> for PaiError {
    fn from(throttled: Throttled) -> Self {
        let seconds = throttled.retry_after_secs();
        Self {
            retry_after: Some(seconds),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsError",
                format!("Too many failed login attempts. Try again in {seconds} seconds."),
            )
        }
    }
}

impl From<HashError> for PaiError {
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

impl From<BodyError> for PaiError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "EntityTooLargeError",
                error.to_string(),
            ),
            BodyError::Read(_) => Self::invalid(error.to_string()),
        }
    }
}

impl Reply for PaiError {
    fn into_response(self) -> Response {
        let mut response = with_status(
            json(&json!({ "code": self.code, "message": self.message })),
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

/// The signed-in caller behind `Authorization`, as they are now (`App::authenticate`).
pub fn signed_in(app: &App, header: Option<String>) -> Result<Principal, PaiError> {
    Ok(app.authenticate(header.as_deref())?)
}

/// The signed-in caller, who must be an admin now.
pub fn admin(app: &App, header: Option<String>) -> Result<Principal, PaiError> {
    let caller = signed_in(app, header)?;
    if !caller.admin {
        return Err(PaiError::forbidden());
    }
    Ok(caller)
}

/// How a missing user is said: the document words it two ways, per endpoint.
#[derive(Debug, Clone, Copy)]
pub enum Missing {
    /// "User NAME is not found." (delete, password, reads)
    IsNotFound,
    /// "User NAME not found." (the other updates)
    NotFound,
}

/// What a command was about, so that its refusals name it as OpenPAI does.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    User(&'a str, Missing),
    Group(&'a str),
}

impl PaiError {
    /// OpenPAI's answer to a non-admin on an admin's operation.
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "ForbiddenUserError",
            "Non-admin is not allow to do this operation.",
        )
    }

    pub fn no_user(username: &str, missing: Missing) -> Self {
        let message = match missing {
            Missing::IsNotFound => format!("User {username} is not found."),
            Missing::NotFound => format!("User {username} not found."),
        };
        Self::new(StatusCode::NOT_FOUND, "NoUserError", message)
    }

    pub fn no_group(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoGroupError",
            format!("Group {name} is not found."),
        )
    }

    /// A group named in a request's body that does not exist (a 400, as the document
    /// answers a virtual cluster of the body that does not exist).
    pub fn no_group_named(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "NoGroupError",
            format!("Group {name} is not found."),
        )
    }

    pub fn no_virtual_cluster(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "NoVirtualClusterError",
            format!("Virtual cluster {name} is not found."),
        )
    }

    /// A failure of the command path on `target`.
    pub fn about(error: CommandError, target: Target<'_>) -> Self {
        match (&error, target) {
            (CommandError::Domain(DomainError::NotFound), Target::User(name, missing)) => {
                Self::no_user(name, missing)
            }
            (CommandError::Domain(DomainError::NotFound), Target::Group(name)) => {
                Self::no_group(name)
            }
            (CommandError::Domain(DomainError::AdminNotDeletable), Target::User(name, _)) => {
                Self::new(
                    StatusCode::FORBIDDEN,
                    "RemoveAdminError",
                    format!("Admin {name} is not allowed to remove."),
                )
            }
            (_, Target::User(name, _)) => Self::command(error, || Self::conflicting_user(name)),
            (_, Target::Group(name)) => Self::command(error, || {
                Self::new(
                    StatusCode::CONFLICT,
                    "ConflictGroupError",
                    format!("Group name {name} already exists."),
                )
            }),
        }
    }

    pub fn conflicting_user(username: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "ConflictUserError",
            format!("User name {username} already exists."),
        )
    }
}
