//! Users as a whole: create (`UserCreated`; the password's hash goes to the credential
//! store, the event names only its credential, `App::write_password`), delete
//! (`UserDeleted`), and the reads `GET /api/v2/user[/:username]`.

use std::sync::Arc;

use command::{
    user::{Details, NewUser, UserCommand},
    values::{Email, Password, Username, VirtualCluster},
};
use events::user::user_id;
use projection::users::UserRow;
use serde_json::{Map, Value, json};
use warp::{
    Reply,
    http::StatusCode,
    reply::{Response, json, with_status},
};

use super::{
    errors::{Missing, PaiError, Target, admin, signed_in},
    params::{self, said},
    token::required_string,
    virtual_clusters,
};
use crate::{App, Principal, RequestContext, body::BodyError};

pub async fn create(
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Result<bytes::Bytes, BodyError>,
) -> Response {
    ctx.answer(async {
        let caller = admin(&app, token)?;
        let params = params::object(body)?;
        let (new, password) = new_user(&params)?;
        virtual_clusters::check_exist(&new.virtual_clusters)?;
        let username = new.username.clone();
        let password_hash = command::password::hash(password.as_str().to_string()).await?;
        let id = user_id(username.as_str());
        app.write_password(
            &id,
            &password_hash,
            |credential| {
                UserCommand::Create(NewUser {
                    credential: Some(credential),
                    ..new
                })
            },
            &ctx.command(&caller.username, &id),
        )
        .await
        .map_err(|e| {
            PaiError::password_write(e, || PaiError::conflicting_user(username.as_str()))
        })?;
        Ok::<_, PaiError>(
            with_status(
                json(&json!({ "message": "User is created successfully" })),
                StatusCode::CREATED,
            )
            .into_response(),
        )
    })
    .await
}

/// The user described by the request, checked as OpenPAI's schema checks it, and the
/// password to hash.
fn new_user(params: &Map<String, Value>) -> Result<(NewUser, Password), PaiError> {
    let raw_username = required_string(params, "username")?;
    let username = Username::parse(raw_username.as_str()).map_err(said(&raw_username))?;
    let raw_password = required_string(params, "password")?;
    let password = Password::parse(raw_password).map_err(|e| PaiError::value(e, None))?;
    let admin = match params.get("admin") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(PaiError::invalid("\"admin\" must be a boolean")),
    };
    let email = match params.get("email") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(
            Email::parse_address(s.as_str())
                .map_err(|_| PaiError::invalid("\"email\" must be a valid email"))?,
        ),
        Some(_) => return Err(PaiError::invalid("\"email\" must be a valid email")),
    };
    let virtual_clusters = match params.get("virtualCluster") {
        None | Some(Value::Null) => Vec::new(),
        Some(_) => params::names(params, "virtualCluster", |s| VirtualCluster::parse(s))?,
    };
    let extension = match params.get("extension") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => return Err(PaiError::invalid("\"extension\" must be an object")),
    };
    let user = NewUser {
        username,
        admin,
        virtual_clusters,
        groups: vec![],
        details: Details {
            email,
            extension,
            ..Default::default()
        },
        credential: None,
    };
    Ok((user, password))
}

/// `DELETE /api/v2/user/:username` (admin only): an admin cannot be deleted
/// (`RemoveAdminError`). The deleted user's password hashes are forgotten.
pub async fn delete(
    username: String,
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
) -> Response {
    ctx.answer(async {
        let caller = admin(&app, token)?;
        let raw = params::decoded(&username)?;
        let username = params::username(&raw)?;
        let id = user_id(username.as_str());
        app.write(
            &app.users,
            &id,
            &UserCommand::Delete,
            &ctx.command(&caller.username, &id),
        )
        .await
        .map_err(|e| PaiError::about(e, Target::User(username.as_str(), Missing::IsNotFound)))?;
        forget_retired_credentials(&app, &id).await;
        Ok::<_, PaiError>(json(&json!({ "message": "user is removed successfully" })))
    })
    .await
}

/// Best effort: a hash left behind is never used to log in (`crate::passwords`).
async fn forget_retired_credentials(app: &App, id: &str) {
    match app.users.load(id).await {
        Ok(user) => {
            if let Err(e) =
                projection::credentials::forget(&app.db.pool, id, &user.retired_credentials).await
            {
                tracing::warn!(error = %e, "retired credentials not forgotten");
            }
        }
        Err(e) => tracing::warn!(error = %e, "retired credentials not forgotten"),
    }
}

/// `GET /api/v2/user`: every user, to anyone signed in.
pub async fn list(ctx: RequestContext, app: Arc<App>, token: Option<String>) -> Response {
    ctx.answer(async {
        let viewer = signed_in(&app, token)?;
        let users = projection::users::all(&app.db.pool)
            .await
            .map_err(PaiError::query)?;
        let users: Vec<UserView> = users.iter().map(|u| view(u, &viewer)).collect();
        Ok::<_, PaiError>(json(&users))
    })
    .await
}

/// `GET /api/v2/user/:username`: one user, to anyone signed in.
pub async fn get(
    username: String,
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
) -> Response {
    ctx.answer(async {
        let viewer = signed_in(&app, token)?;
        let raw = params::decoded(&username)?;
        let username = params::username(&raw)?;
        let user = projection::users::user_by_name(&app.db, username.as_str())
            .await
            .map_err(PaiError::query)?
            .ok_or_else(|| PaiError::no_user(username.as_str(), Missing::IsNotFound))?;
        Ok::<_, PaiError>(json(&view(&user, &viewer)))
    })
    .await
}

/// A user in OpenPAI's shape. The email is personal: only the user and admins see it;
/// others see it empty, as for a user who gave none.
/// Serialized straight from the row, without building a JSON value first.
fn view<'a>(user: &'a UserRow, viewer: &Principal) -> UserView<'a> {
    let email = if viewer.admin || viewer.username == user.username {
        user.email.as_str()
    } else {
        ""
    };
    UserView {
        username: &user.username,
        grouplist: &user.groups,
        email,
        virtual_cluster: &user.virtual_clusters,
        admin: user.admin,
        extension: &user.extension,
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct UserView<'a> {
    username: &'a str,
    grouplist: &'a [String],
    email: &'a str,
    virtual_cluster: &'a [String],
    admin: bool,
    extension: &'a Map<String, Value>,
}
