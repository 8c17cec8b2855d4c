//! `PUT /api/v2/user/:username/<attribute>` and the user's groups: each request is one user
//! command, answered 201 with the document's message. Admin only, except a user's own
//! password, email and extension.

use std::{net::SocketAddr, sync::Arc};

use command::{
    Aggregate, CommandError,
    user::{AdminChange, ExtensionChange, PasswordChange, UserCommand},
    values::{Email, GroupName, InvalidValue, Password, Username, VirtualCluster},
};
use events::user::user_id;
use serde_json::json;
use uuid::Uuid;
use warp::{
    Reply,
    http::StatusCode,
    reply::{Response, json, with_status},
};

use super::{
    errors::{Missing, PaiError, Target, admin, signed_in},
    params, virtual_clusters,
};
use crate::{
    App, PasswordWriteError, Principal, RequestContext,
    auth::{self, LoginError},
    body::BodyError,
};

type Body = Result<bytes::Bytes, BodyError>;

/// 201 with OpenPAI's `{"message": …}`.
fn created(message: impl Into<String>) -> Response {
    with_status(
        json(&json!({ "message": message.into() })),
        StatusCode::CREATED,
    )
    .into_response()
}

/// The path's username.
fn target(username: &str) -> Result<Username, PaiError> {
    params::username(&params::decoded(username)?)
}

/// A user acts on their own email and extension; an admin on anyone's.
fn own_or_admin(caller: &Principal, username: &Username) -> Result<(), PaiError> {
    if caller.admin || caller.username == username.as_str() {
        Ok(())
    } else {
        Err(PaiError::forbidden())
    }
}

/// Writes `command` on `username`'s aggregate; a missing user is said as `missing`.
async fn write(
    app: &App,
    ctx: &RequestContext,
    caller: &Principal,
    username: &Username,
    command: &UserCommand,
) -> Result<(), PaiError> {
    let id = user_id(username.as_str());
    app.write(
        &app.users,
        &id,
        command,
        &ctx.command(&caller.username, &id),
    )
    .await
    .map_err(|e| PaiError::about(e, Target::User(username.as_str(), Missing::NotFound)))?;
    Ok(())
}

/// `PUT /api/v2/user/:username/password`: `{"oldPassword", "newPassword"}`. A user changes
/// only their own password, unless admin (the domain's rule, asked before anything is
/// hashed); a non-admin proves the old one, which counts as a login for the throttle.
pub async fn password(
    username: String,
    ctx: RequestContext,
    app: Arc<App>,
    peer: Option<SocketAddr>,
    token: Option<String>,
    body: Body,
) -> Response {
    ctx.answer(async {
        let principal = signed_in(&app, token)?;
        let params = params::object(body)?;
        let new_password = Password::parse(params::string(&params, "newPassword")?)
            .map_err(|e| PaiError::value(renamed(e, "newPassword"), None))?;
        let username = target(&username)?;
        let id = user_id(username.as_str());
        let by = principal.caller();
        let whose = Target::User(username.as_str(), Missing::IsNotFound);

        let user = app
            .users
            .load(&id)
            .await
            .map_err(|e| PaiError::about(e, whose))?;
        let probe = UserCommand::ChangePassword(PasswordChange {
            by: by.clone(),
            credential: Uuid::nil(),
        });
        user.decide(&probe)
            .map_err(|e| PaiError::about(CommandError::Domain(e), whose))?;
        if !principal.admin {
            let old = params::string(&params, "oldPassword")?.to_string();
            let client = peer.map(|p| p.ip());
            auth::check_password(&app.db.pool, &app.logins, username.as_str(), old, client)
                .await
                .map_err(|e| match e {
                    LoginError::WrongPassword => PaiError::new(
                        StatusCode::FORBIDDEN,
                        "ForbiddenUserError",
                        "Pls input the correct password.",
                    ),
                    LoginError::NoUser => PaiError::no_user(username.as_str(), Missing::IsNotFound),
                    LoginError::Throttled(throttled) => PaiError::from(throttled),
                    LoginError::NotApproved(status) => {
                        PaiError::not_approved(username.as_str(), status)
                    }
                    LoginError::Query(e) => PaiError::query(e),
                    LoginError::Hashing(e) => PaiError::from(e),
                })?;
        }
        let hash = command::password::hash(new_password.as_str().to_string()).await?;
        app.write_password(
            &id,
            &hash,
            |credential| UserCommand::ChangePassword(PasswordChange { by, credential }),
            &ctx.command(&principal.username, &id),
        )
        .await
        .map_err(|e| match e {
            PasswordWriteError::Command(e) => PaiError::about(e, whose),
            PasswordWriteError::Store(e) => PaiError::query(e),
        })?;
        Ok::<_, PaiError>(created("update user password successfully."))
    })
    .await
}

fn renamed(invalid: InvalidValue, field: &'static str) -> InvalidValue {
    InvalidValue { field, ..invalid }
}

/// `PUT /api/v2/user/:username/virtualcluster` (admin only): `{"virtualCluster": [...]}`,
/// each of which must exist.
pub async fn virtual_cluster(
    username: String,
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
) -> Response {
    ctx.answer(async {
        let caller = admin(&app, token)?;
        let params = params::object(body)?;
        let names = params::names(&params, "virtualCluster", |s| VirtualCluster::parse(s))?;
        let username = target(&username)?;
        virtual_clusters::check_exist(&names)?;
        write(
            &app,
            &ctx,
            &caller,
            &username,
            &UserCommand::SetVirtualClusters(names),
        )
        .await?;
        Ok::<_, PaiError>(created("Update user virtualCluster data successfully."))
    })
    .await
}

/// `PUT /api/v2/user/:username/email`: `{"email"}`; an empty string removes it.
pub async fn email(
    username: String,
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
) -> Response {
    ctx.answer(async {
        let caller = signed_in(&app, token)?;
        let params = params::object(body)?;
        let email = match params::string(&params, "email")? {
            "" => None,
            raw => Some(
                Email::parse_address(raw)
                    .map_err(|_| PaiError::invalid("\"email\" must be a valid email"))?,
            ),
        };
        let username = target(&username)?;
        own_or_admin(&caller, &username)?;
        write(
            &app,
            &ctx,
            &caller,
            &username,
            &UserCommand::ChangeEmail(email),
        )
        .await?;
        // The document's words for this answer, though they name another attribute.
        Ok::<_, PaiError>(created("Update user virtualCluster data successfully."))
    })
    .await
}

/// `PUT /api/v2/user/:username/admin` (admin only): `{"admin": bool}`. A demotion goes
/// through the admins roster, which keeps the last admin (`command::admins`).
pub async fn set_admin(
    username: String,
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
) -> Response {
    ctx.answer(async {
        let caller = admin(&app, token)?;
        let params = params::object(body)?;
        let admin = params::boolean(&params, "admin")?;
        let username = target(&username)?;
        let id = user_id(username.as_str());
        let command = UserCommand::SetAdmin(AdminChange {
            admin,
            release: None,
        });
        app.write_guarded(&username, &command, &ctx.command(&caller.username, &id))
            .await
            .map_err(|e| match e {
                crate::WriteError::Command(e) => {
                    PaiError::about(e, Target::User(username.as_str(), Missing::NotFound))
                }
                crate::WriteError::Store(e) => PaiError::query(e),
            })?;
        Ok::<_, PaiError>(created("Update user admin permission successfully."))
    })
    .await
}

/// `PUT /api/v2/user/:username/extension`: `{"extension": {...}}`, whose keys are set and
/// the others kept, as OpenPAI did.
pub async fn extension(
    username: String,
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
) -> Response {
    ctx.answer(async {
        let caller = signed_in(&app, token)?;
        let params = params::object(body)?;
        let extension = params::json_object(&params, "extension")?;
        let username = target(&username)?;
        own_or_admin(&caller, &username)?;
        let command = UserCommand::UpdateExtension(ExtensionChange {
            extension,
            merge: true,
        });
        write(&app, &ctx, &caller, &username, &command).await?;
        Ok::<_, PaiError>(created("Update user extension data successfully."))
    })
    .await
}

/// Each of `names` is an existing group; else 400 `NoGroupError` for the first that is not.
async fn check_groups_exist(app: &App, names: &[GroupName]) -> Result<(), PaiError> {
    let groups = projection::groups::group_list(&app.db.pool)
        .await
        .map_err(PaiError::query)?;
    match names
        .iter()
        .find(|name| !groups.iter().any(|g| g.name == name.as_str()))
    {
        Some(missing) => Err(PaiError::no_group_named(missing.as_str())),
        None => Ok(()),
    }
}

/// `PUT /api/v2/user/:username/grouplist` (admin only): `{"grouplist": [...]}`, each an
/// existing group.
pub async fn grouplist(
    username: String,
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
) -> Response {
    ctx.answer(async {
        let caller = admin(&app, token)?;
        let params = params::object(body)?;
        let groups = params::names(&params, "grouplist", |s| GroupName::parse(s))?;
        let username = target(&username)?;
        check_groups_exist(&app, &groups).await?;
        write(
            &app,
            &ctx,
            &caller,
            &username,
            &UserCommand::SetGroups(groups),
        )
        .await?;
        Ok::<_, PaiError>(created("update user grouplist successfully."))
    })
    .await
}

/// `PUT /api/v2/user/:username/group` (admin only): `{"groupname"}` joins the user's groups.
pub async fn add_group(
    username: String,
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
) -> Response {
    ctx.answer(async {
        let caller = admin(&app, token)?;
        let params = params::object(body)?;
        let group = params::group_name(params::string(&params, "groupname")?)?;
        let username = target(&username)?;
        check_groups_exist(&app, std::slice::from_ref(&group)).await?;
        write(
            &app,
            &ctx,
            &caller,
            &username,
            &UserCommand::JoinGroup(group.clone()),
        )
        .await?;
        Ok::<_, PaiError>(created(format!(
            "User {username} is added into group {group}"
        )))
    })
    .await
}

/// `DELETE /api/v2/user/:username/group` (admin only): `{"groupname"}` leaves the user's
/// groups (whether or not that group still exists).
pub async fn remove_group(
    username: String,
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
) -> Response {
    ctx.answer(async {
        let caller = admin(&app, token)?;
        let params = params::object(body)?;
        let group = params::group_name(params::string(&params, "groupname")?)?;
        let username = target(&username)?;
        write(
            &app,
            &ctx,
            &caller,
            &username,
            &UserCommand::LeaveGroup(group.clone()),
        )
        .await?;
        Ok::<_, PaiError>(created(format!(
            "User {username} is removed from group {group}"
        )))
    })
    .await
}
