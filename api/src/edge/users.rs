//! `/v1/user`: register oneself (`POST`, a pending user, `UserRegistered`) and change one's
//! own password (`PUT`, `PasswordChanged`).

use std::{net::SocketAddr, sync::Arc};

use command::user::{Details, PasswordChange, Registration, UserCommand};
use events::user::user_id;
use serde_json::json;
use warp::{http::StatusCode, reply::Response};

use super::{
    authorization::login_error,
    errors::{EdgeError, success},
    params,
};
use crate::{App, RequestContext, auth, body::BodyError};

pub fn taken(username: &str) -> impl FnOnce() -> EdgeError + '_ {
    move || {
        EdgeError::new(
            StatusCode::CONFLICT,
            format!("User {username} already exists."),
        )
    }
}

pub async fn register(
    ctx: RequestContext,
    app: Arc<App>,
    body: Result<bytes::Bytes, BodyError>,
) -> Response {
    ctx.answer(async {
        let params = params::object(body)?;
        let username = params::username(&params)?;
        let password = params::password(&params, "password")?;
        let details = Details {
            phone: params::phone(&params)?,
            real_name: params::real_name(&params)?,
            ..Default::default()
        };
        // Read so that a wrong type is refused, then ignored: see the module docs.
        params::optional_bool(&params, "isAdmin")?;
        let hash = command::password::hash(password.as_str().to_string()).await?;
        let id = user_id(username.as_str());
        let name = username.to_string();
        app.write_password(
            &id,
            &hash,
            |credential| {
                UserCommand::Register(Registration {
                    username,
                    details,
                    credential: Some(credential),
                })
            },
            // Who registers is the new user themself.
            &ctx.command(&name, &id),
        )
        .await
        .map_err(|e| EdgeError::password_write(e, taken(&name)))?;
        Ok::<_, EdgeError>(success("success", json!({})))
    })
    .await
}

pub async fn change_password(
    ctx: RequestContext,
    app: Arc<App>,
    header: Option<String>,
    peer: Option<SocketAddr>,
    body: Result<bytes::Bytes, BodyError>,
) -> Response {
    ctx.answer(async {
        let who = app.authenticate(header.as_deref())?;
        let params = params::object(body)?;
        let old = params::required_string(&params, "oldPassword")?;
        let new = params::password(&params, "password")?;
        let client = peer.map(|p| p.ip());
        auth::check_password(&app.db.pool, &app.logins, &who.username, old, client)
            .await
            .map_err(|e| match e {
                auth::LoginError::WrongPassword => {
                    EdgeError::new(StatusCode::BAD_REQUEST, "The old password is incorrect.")
                }
                other => login_error(other),
            })?;
        let hash = command::password::hash(new.as_str().to_string()).await?;
        let by = who.caller();
        app.write_password(
            &who.user_id,
            &hash,
            |credential| UserCommand::ChangePassword(PasswordChange { by, credential }),
            &ctx.command(&who.username, &who.user_id),
        )
        .await
        .map_err(|e| EdgeError::password_write(e, taken(&who.username)))?;
        Ok::<_, EdgeError>(success("success", json!({})))
    })
    .await
}
