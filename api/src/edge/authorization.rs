//! `/v1/authorization`: log in (`POST`), refresh (`PUT`), log out (`DELETE`), and who the
//! token speaks for (`GET`).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use command::user::UserCommand;
use serde_json::json;
use warp::{http::StatusCode, reply::Response};

use super::{
    errors::{EdgeError, success},
    params,
};
use crate::{
    App, Principal, RequestContext,
    auth::{self, AuthError, LoginError},
    body::BodyError,
};

/// The edge platform's windows: an access token lasts an hour, a login may be refreshed
/// for five.
pub const ACCESS_TTL: Duration = Duration::from_secs(3_600);
pub const REFRESH_TTL: Duration = Duration::from_secs(18_000);

/// The role of the super admin, of another admin, of a user (see the module docs).
const SUPER_ADMIN: &str = "admin";

pub fn role(username: &str, admin: bool) -> u8 {
    match (admin, username == SUPER_ADMIN) {
        (true, true) => 1,
        (true, false) => 2,
        (false, _) => 4,
    }
}

pub async fn login(
    ctx: RequestContext,
    app: Arc<App>,
    peer: Option<SocketAddr>,
    body: Result<bytes::Bytes, BodyError>,
) -> Response {
    ctx.answer(async {
        let params = params::object(body)?;
        let username = params::required_string(&params, "user")?;
        let password = params::required_string(&params, "password")?;
        let client = peer.map(|p| p.ip());
        let who = auth::check_password(&app.db.pool, &app.logins, &username, password, client)
            .await
            .map_err(login_error)?;
        let session = app
            .sign_in(&who, ACCESS_TTL, Some(REFRESH_TTL))
            .map_err(EdgeError::internal)?;
        Ok::<_, EdgeError>(success(
            "success",
            json!({
                "token": session.access,
                "expireTime": session.access_expires_at.timestamp(),
                "refreshToken": session.refresh,
                "refreshExpireTime": session.refresh_expires_at.map(|t| t.timestamp()),
            }),
        ))
    })
    .await
}

/// A failed password check, in the edge door's words: unknown user and wrong password alike.
pub fn login_error(error: LoginError) -> EdgeError {
    match error {
        LoginError::Throttled(throttled) => EdgeError::from(throttled),
        LoginError::NoUser | LoginError::WrongPassword => {
            EdgeError::new(StatusCode::UNAUTHORIZED, "Incorrect user or password.")
        }
        LoginError::NotApproved(status) => EdgeError::not_approved(status),
        LoginError::Query(e) => EdgeError::query(e),
        LoginError::Hashing(e) => EdgeError::from(e),
    }
}

pub async fn refresh(ctx: RequestContext, app: Arc<App>, header: Option<String>) -> Response {
    ctx.answer(async {
        let token = auth::token_of(header.as_deref())?;
        let session = app.refresh(token, ACCESS_TTL)?;
        Ok::<_, EdgeError>(success(
            "success",
            json!({
                "token": session.access,
                "expireTime": session.access_expires_at.timestamp(),
                "refreshToken": session.refresh,
                "refreshExpireTime": session.refresh_expires_at.map(|t| t.timestamp()),
            }),
        ))
    })
    .await
}

pub async fn logout(ctx: RequestContext, app: Arc<App>, header: Option<String>) -> Response {
    ctx.answer(async {
        let who = app.authenticate(header.as_deref())?;
        app.write(
            &app.users,
            &who.user_id,
            &UserCommand::RevokeTokens(who.caller()),
            &ctx.command(&who.username, &who.user_id),
        )
        .await
        .map_err(|e| EdgeError::command(e, || EdgeError::internal("logout met a new user")))?;
        Ok::<_, EdgeError>(success("Success", json!({})))
    })
    .await
}

pub async fn info(ctx: RequestContext, app: Arc<App>, header: Option<String>) -> Response {
    ctx.answer(async {
        let who: Principal = app.authenticate(header.as_deref())?;
        let row = projection::users::user_by_name(&app.db, &who.username)
            .await
            .map_err(EdgeError::query)?
            .ok_or(AuthError::Invalid)?;
        let display_name = if row.real_name.is_empty() {
            row.username.clone()
        } else {
            row.real_name.clone()
        };
        Ok::<_, EdgeError>(success(
            "Success",
            json!({
                "data": {
                    "id": who.number,
                    "user": who.username,
                    "displayName": display_name,
                    "hasRepoAccount": false,
                    "role": role(&who.username, who.admin),
                    "privateProject": false,
                    "enableIngress": false,
                    "enableAlert": false,
                    "enableAdminAutoDeploy": false,
                }
            }),
        ))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_tell_the_super_admin_from_admins_and_users() {
        assert_eq!(role("admin", true), 1);
        assert_eq!(role("ops", true), 2);
        assert_eq!(role("jimmy", false), 4);
        assert_eq!(role("admin", false), 4);
    }
}
