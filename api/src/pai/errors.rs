//! OpenPAI's envelope: `{"code": "NoUserError", "message": …}`.

use command::{CommandError, DomainError, StoreError, password::HashError};
use projection::DbError;
use serde_json::json;
use warp::{
    Reply,
    http::{HeaderValue, StatusCode},
    reply::{Response, json, with_status},
};

use crate::{
    Principal, Tokens,
    auth::{AuthError, Throttled},
    body::BodyError,
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

    pub fn unknown(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "UnknownError", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "UnknownError", message)
    }

    pub fn query(error: DbError) -> Self {
        match error {
            DbError::Unavailable(_) => Self::unavailable(error.to_string()),
            _ => Self::unknown(error.to_string()),
        }
    }

    /// A failure of the command path; `conflict` is what an existing aggregate means here.
    pub fn command(error: CommandError, conflict: impl FnOnce() -> PaiError) -> Self {
        match error {
            CommandError::Domain(DomainError::AlreadyExists) => conflict(),
            CommandError::Domain(DomainError::NotFound) => Self::not_found(),
            CommandError::Domain(DomainError::Invalid(message)) => Self::invalid(message),
            CommandError::Conflict => {
                Self::new(StatusCode::CONFLICT, "ConflictError", error.to_string())
            }
            CommandError::Store(StoreError::Unavailable(message)) => Self::unavailable(message),
            CommandError::Store(e) => Self::unknown(e.to_string()),
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

/// The caller behind `Authorization: Bearer`, who must be an admin.
pub fn admin(tokens: &Tokens, header: Option<String>) -> Result<Principal, PaiError> {
    let caller = tokens.verify_bearer(header.as_deref())?;
    if !caller.admin {
        return Err(PaiError::new(
            StatusCode::FORBIDDEN,
            "ForbiddenUserError",
            "Non-admin is not allow to do this operation.",
        ));
    }
    Ok(caller)
}
