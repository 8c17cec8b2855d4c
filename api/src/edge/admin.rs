//! `/v1/admin/user*`, an admin's: the users with paging, a sub-user (`UserCreated`), an
//! audit (`UserAudited`, through the admins roster), a delete (`UserDeleted`) and a password
//! reset (`PasswordChanged`, by the admin).

use std::sync::Arc;

use command::{
    user::{Audit, Details, NewUser, PasswordChange, UserCommand},
    values::{Comment, Username},
};
use events::user::{UserStatus, user_id};
use projection::users::{self, ListedUser, UserRow};
use serde_json::{Map, Value, json};
use warp::reply::Response;

use super::{
    authorization::role,
    errors::{EdgeError, success},
    params,
    users::taken,
};
use crate::{App, Principal, RequestContext, body::BodyError};

/// The caller, who must be an admin.
fn admin(app: &App, header: Option<String>) -> Result<Principal, EdgeError> {
    let who = app.authenticate(header.as_deref())?;
    if !who.admin {
        return Err(EdgeError::forbidden());
    }
    Ok(who)
}

/// A user's status as the edge platform numbers it (see the module docs).
fn status_number(status: UserStatus) -> u8 {
    match status {
        UserStatus::Approved => 0,
        UserStatus::Disabled => 1,
        UserStatus::Pending => 3,
    }
}

fn status_of(params: &Map<String, Value>) -> Result<UserStatus, EdgeError> {
    match params.get("status").and_then(Value::as_i64) {
        Some(0) => Ok(UserStatus::Approved),
        Some(1) => Ok(UserStatus::Disabled),
        Some(3) => Ok(UserStatus::Pending),
        _ if matches!(params.get("status"), None | Some(Value::Null)) => {
            Err(EdgeError::invalid("status is required"))
        }
        _ => Err(EdgeError::invalid(
            "status must be 0 (approved), 1 (disabled) or 3 (waiting for approval)",
        )),
    }
}

fn row_json(listed: &ListedUser) -> Value {
    let row = &listed.user;
    json!({
        "id": row.number,
        "user": row.username,
        "status": status_number(row.status),
        "realName": row.real_name,
        "phone": row.phone,
        "role": role(&row.username, row.admin),
        "createTime": row.created_at.timestamp(),
        "updateTime": listed.updated_at.timestamp(),
    })
}

/// The user of a path's id, or 404.
async fn user(app: &App, raw_id: &str) -> Result<UserRow, EdgeError> {
    let number = params::user_number(raw_id)?;
    users::by_number(&app.db.pool, number)
        .await
        .map_err(EdgeError::query)?
        .ok_or_else(|| EdgeError::no_user(number))
}

pub async fn list(
    ctx: RequestContext,
    app: Arc<App>,
    header: Option<String>,
    query: String,
) -> Response {
    ctx.answer(async {
        admin(&app, header)?;
        let (offset, limit) = params::paging(&query)?;
        let (rows, total) = users::page(&app.db.pool, offset, limit)
            .await
            .map_err(EdgeError::query)?;
        let data: Vec<Value> = rows.iter().map(row_json).collect();
        Ok::<_, EdgeError>(success("Success", json!({ "data": data, "total": total })))
    })
    .await
}

pub async fn create(
    ctx: RequestContext,
    app: Arc<App>,
    header: Option<String>,
    body: Result<bytes::Bytes, BodyError>,
) -> Response {
    ctx.answer(async {
        let who = admin(&app, header)?;
        let params = params::object(body)?;
        let username = params::username(&params)?;
        let password = params::password(&params, "password")?;
        let new = NewUser {
            username,
            admin: params::optional_bool(&params, "isAdmin")?,
            virtual_clusters: vec![],
            groups: vec![],
            details: Details {
                phone: params::phone(&params)?,
                real_name: params::real_name(&params)?,
                ..Default::default()
            },
            credential: None,
        };
        let name = new.username.to_string();
        let hash = command::password::hash(password.as_str().to_string()).await?;
        let id = user_id(&name);
        app.write_password(
            &id,
            &hash,
            |credential| {
                UserCommand::Create(NewUser {
                    credential: Some(credential),
                    ..new
                })
            },
            &ctx.command(&who.username, &id),
        )
        .await
        .map_err(|e| EdgeError::password_write(e, taken(&name)))?;
        let number = users::user_by_name(&app.db, &name)
            .await
            .map_err(EdgeError::query)?
            .map(|row| row.number);
        Ok::<_, EdgeError>(success("success", json!({ "data": { "id": number } })))
    })
    .await
}

pub async fn audit(
    raw_id: String,
    ctx: RequestContext,
    app: Arc<App>,
    header: Option<String>,
    body: Result<bytes::Bytes, BodyError>,
) -> Response {
    ctx.answer(async {
        let who = admin(&app, header)?;
        let params = params::object(body)?;
        let status = status_of(&params)?;
        let comment =
            Comment::parse(params::optional_string(&params, "comment")?.unwrap_or_default())
                .map_err(EdgeError::value)?;
        let row = user(&app, &raw_id).await?;
        let command = UserCommand::Audit(Audit {
            status,
            comment,
            release: None,
        });
        let username = Username::parse(row.username.as_str()).map_err(EdgeError::internal)?;
        app.write_guarded(
            &username,
            &command,
            &ctx.command(&who.username, &row.user_id),
        )
        .await
        .map_err(|e| {
            EdgeError::password_write(e, || EdgeError::internal("an audit met a new user"))
        })?;
        Ok::<_, EdgeError>(success("success", json!({})))
    })
    .await
}

pub async fn delete(
    raw_id: String,
    ctx: RequestContext,
    app: Arc<App>,
    header: Option<String>,
) -> Response {
    ctx.answer(async {
        let who = admin(&app, header)?;
        let row = user(&app, &raw_id).await?;
        app.write(
            &app.users,
            &row.user_id,
            &UserCommand::Delete,
            &ctx.command(&who.username, &row.user_id),
        )
        .await
        .map_err(|e| EdgeError::command(e, || EdgeError::internal("a delete met a new user")))?;
        Ok::<_, EdgeError>(success("success", json!({})))
    })
    .await
}

pub async fn reset_password(
    raw_id: String,
    ctx: RequestContext,
    app: Arc<App>,
    header: Option<String>,
    body: Result<bytes::Bytes, BodyError>,
) -> Response {
    ctx.answer(async {
        let who = admin(&app, header)?;
        let params = params::object(body)?;
        let password = params::password(&params, "password")?;
        let row = user(&app, &raw_id).await?;
        let hash = command::password::hash(password.as_str().to_string()).await?;
        let by = who.caller();
        app.write_password(
            &row.user_id,
            &hash,
            |credential| UserCommand::ChangePassword(PasswordChange { by, credential }),
            &ctx.command(&who.username, &row.user_id),
        )
        .await
        .map_err(|e| EdgeError::password_write(e, taken(&row.username)))?;
        Ok::<_, EdgeError>(success("success", json!({})))
    })
    .await
}
