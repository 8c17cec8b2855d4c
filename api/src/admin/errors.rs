//! The admin door's envelope: `{"error": "<Kind>", "message": …}`.

use command::{CommandError, DomainError, StoreError};
use projection::DbError;
use serde_json::json;
use tracing::{error, warn};
use warp::{
    Reply,
    http::StatusCode,
    reply::{Response, json, with_status},
};

use crate::{App, Principal};

#[derive(Debug)]
pub struct AdminError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl AdminError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    pub fn query(e: DbError) -> Self {
        match e {
            DbError::Unavailable(reason) => {
                warn!(%reason, "database unavailable");
                Self::unavailable()
            }
            other => {
                error!(error = %other, "admin query failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal",
                    "internal error",
                )
            }
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", "no such admin resource")
    }

    /// No user of that name (`None`: a name no user can have).
    pub fn no_such_user(username: Option<&str>) -> Self {
        let message = match username {
            Some(name) => format!("no user named {name}"),
            None => "no such user".to_string(),
        };
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    /// A refused or failed command on user `username`.
    pub fn command(e: CommandError, username: &str) -> Self {
        match e {
            CommandError::Domain(DomainError::NotFound) => Self::no_such_user(Some(username)),
            CommandError::KeyReused => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "KeyReused",
                "this Idempotency-Key was already used with another request",
            ),
            CommandError::Conflict => Self::new(StatusCode::CONFLICT, "Conflict", e.to_string()),
            CommandError::Store(StoreError::Unavailable(reason)) => {
                warn!(%reason, "event store unavailable");
                Self::unavailable()
            }
            other => {
                error!(error = %other, "admin command failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal",
                    "internal error",
                )
            }
        }
    }

    /// A client's mistake in the request (a filter, a time, a sequence).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "Conflict", message)
    }

    pub fn not_found_because(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    /// The event store failed: an outage is 503, an unreadable event Gantry's fault.
    pub fn store(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(reason) => {
                warn!(%reason, "event store unavailable");
                Self::unavailable()
            }
            other => {
                error!(error = %other, "reading the log failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal",
                    "internal error",
                )
            }
        }
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            "a backing service is unavailable; try again later",
        )
    }
}

impl Reply for AdminError {
    fn into_response(self) -> Response {
        with_status(
            json(&json!({ "error": self.kind, "message": self.message })),
            self.status,
        )
        .into_response()
    }
}

/// The caller behind the `Authorization` header, who must be an admin now.
pub fn admin(app: &App, header: Option<String>) -> Result<Principal, AdminError> {
    let caller = app
        .authenticate(header.as_deref())
        .map_err(|e| AdminError::new(StatusCode::UNAUTHORIZED, "Unauthorized", e.to_string()))?;
    if !caller.admin {
        return Err(AdminError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "only admins may use /admin",
        ));
    }
    Ok(caller)
}
