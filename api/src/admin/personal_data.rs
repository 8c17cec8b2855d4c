//! `DELETE /admin/users/{username}/personal-data`: forget a user's personal data.
//!
//! The command `UserCommand::Forget` appends `UserForgotten`; the user directory blanks the
//! personal columns and destroys the user's keys as it applies it. This door destroys them
//! too, at once after the append, so that no read of the log from now on opens them, even
//! before the directory got there. The account stays: username, credentials, roles, groups
//! and every event of its history.

use std::sync::Arc;

use chrono::Utc;
use command::{user::UserCommand, values::Username};
use events::user::user_id;
use warp::{Reply, http::StatusCode, reply::Response};

use super::errors::{AdminError, admin};
use crate::{App, RequestContext};

pub async fn forget(
    ctx: RequestContext,
    app: Arc<App>,
    username: String,
    token: Option<String>,
) -> Response {
    ctx.answer(async {
        let caller = admin(&app, token)?;
        // A name no user can have is nobody's: the same 404 as an unknown user.
        let username =
            Username::parse(username.as_str()).map_err(|_| AdminError::no_such_user(None))?;
        let id = user_id(username.as_str());
        // Keys made after this moment belong to data written after the forget; the user
        // directory destroys the ones made up to the event itself.
        let asked_at = Utc::now();
        app.write(
            &app.users,
            &id,
            &UserCommand::Forget,
            &ctx.command(&caller.username, &id),
        )
        .await
        .map_err(|e| AdminError::command(e, username.as_str()))?;
        projection::personal::destroy(&app.db.pool, &id, asked_at)
            .await
            .map_err(AdminError::query)?;
        Ok::<_, AdminError>(StatusCode::NO_CONTENT.into_response())
    })
    .await
}
