//! The admin door's envelope: `{"error": "<Kind>", "message": …}`.

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
