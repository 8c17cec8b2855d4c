//! `/api/v2/group[...]`: groups (`GroupCreated`, `GroupUpdated`, `GroupDeleted`). Changes
//! are admin only; any signed-in user reads them.

use std::sync::Arc;

use command::{
    group::{ExtensionAttribute, GroupChanges, GroupCommand, NewGroup},
    values::{ExternalName, GroupDescription, GroupExtension, GroupName},
};
use events::group::group_id;
use projection::groups::GroupRow;
use serde_json::{Map, Value, json};
use warp::{
    Reply,
    http::StatusCode,
    path::Tail,
    reply::{Response, json, with_status},
};

use super::{
    errors::{PaiError, Target, admin, signed_in},
    params,
};
use crate::{App, RequestContext, body::BodyError};

type Body = Result<bytes::Bytes, BodyError>;

fn created(message: &str) -> Response {
    with_status(json(&json!({ "message": message })), StatusCode::CREATED).into_response()
}

/// The path's group name.
fn target(groupname: &str) -> Result<GroupName, PaiError> {
    params::group_name(&params::decoded(groupname)?)
}

/// Executes `command` on group `name`, waiting for the read models.
async fn write(
    app: &App,
    ctx: &RequestContext,
    actor: &str,
    name: &GroupName,
    command: &GroupCommand,
) -> Result<(), PaiError> {
    let id = group_id(name.as_str());
    app.write(&app.groups, &id, command, &ctx.command(actor, &id))
        .await
        .map_err(|e| PaiError::about(e, Target::Group(name.as_str())))?;
    Ok(())
}

fn description(raw: &str) -> Result<GroupDescription, PaiError> {
    GroupDescription::parse(raw).map_err(|e| PaiError::value(e, None))
}

/// An external name; empty means none.
fn external_name(raw: &str) -> Result<Option<ExternalName>, PaiError> {
    if raw.is_empty() {
        return Ok(None);
    }
    ExternalName::parse(raw)
        .map(Some)
        .map_err(|e| PaiError::value(e, None))
}

/// An optional string parameter (absent or null: `None`).
fn optional_string<'a>(
    params: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, PaiError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => params::string(params, name).map(Some),
    }
}

/// `POST /api/v2/group` (admin only): `{"groupname", "description"?, "externalName"?,
/// "extension"?}`.
pub async fn create(
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
) -> Response {
    ctx.answer(async {
        let caller = admin(&app, token)?;
        let params = params::object(body)?;
        let name = params::group_name(params::string(&params, "groupname")?)?;
        let description = description(optional_string(&params, "description")?.unwrap_or(""))?;
        let external_name = external_name(optional_string(&params, "externalName")?.unwrap_or(""))?;
        let extension = match params.get("extension") {
            None | Some(Value::Null) => Map::new(),
            Some(_) => params::json_object(&params, "extension")?,
        };
        let extension = GroupExtension::parse(extension).map_err(|e| PaiError::value(e, None))?;
        let command = GroupCommand::Create(NewGroup {
            name: name.clone(),
            description,
            external_name,
            extension,
        });
        write(&app, &ctx, &caller.username, &name, &command).await?;
        Ok::<_, PaiError>(created("group is created successfully"))
    })
    .await
}

/// `PUT /api/v2/group/:groupname/extension` (admin only): `{"extension": {...}}`, whose
/// keys are set and the others kept, as OpenPAI did.
pub async fn extension(
    groupname: String,
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
) -> Response {
    ctx.answer(async {
        let caller = admin(&app, token)?;
        let params = params::object(body)?;
        let keys = params::json_object(&params, "extension")?;
        let name = target(&groupname)?;
        write(
            &app,
            &ctx,
            &caller.username,
            &name,
            &GroupCommand::MergeExtension(keys),
        )
        .await?;
        // The document's words for this answer.
        Ok::<_, PaiError>(created("group is created successfully"))
    })
    .await
}

/// `PUT /api/v2/group/:groupname/extension/path/to/attr` (admin only): `{"data": …}` becomes
/// that attribute (`acls/virtualClusters`, `acls/admin`, …).
pub async fn extension_attribute(
    groupname: String,
    tail: Tail,
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
) -> Response {
    ctx.answer(async {
        let caller = admin(&app, token)?;
        let params = params::object(body)?;
        let data = match params.get("data") {
            None => return Err(PaiError::invalid("\"data\" is required")),
            Some(data) => data.clone(),
        };
        let name = target(&groupname)?;
        let path = tail
            .as_str()
            .trim_end_matches('/')
            .split('/')
            .map(params::decoded)
            .collect::<Result<Vec<_>, _>>()?;
        let attribute =
            ExtensionAttribute::parse(path, data).map_err(|e| PaiError::value(e, None))?;
        write(
            &app,
            &ctx,
            &caller.username,
            &name,
            &GroupCommand::SetExtensionAttribute(attribute),
        )
        .await?;
        Ok::<_, PaiError>(created("Update group extension data successfully"))
    })
    .await
}

/// `PUT /api/v2/group/:groupname/description` (admin only): `{"description"}`.
pub async fn set_description(
    groupname: String,
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
) -> Response {
    let change = |raw: &str| {
        Ok(GroupChanges {
            description: Some(description(raw)?),
            ..Default::default()
        })
    };
    let done = "update group description data successfully.";
    set_one(
        groupname,
        ctx,
        app,
        token,
        body,
        ("description", change, done),
    )
    .await
}

/// `PUT /api/v2/group/:groupname/externalname` (admin only): `{"externalName"}`; empty
/// removes it.
pub async fn set_external_name(
    groupname: String,
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
) -> Response {
    let change = |raw: &str| {
        Ok(GroupChanges {
            external_name: Some(external_name(raw)?),
            ..Default::default()
        })
    };
    let done = "update group externalNameData data successfully.";
    set_one(
        groupname,
        ctx,
        app,
        token,
        body,
        ("externalName", change, done),
    )
    .await
}

/// Sets one text attribute of a group: the body's `field`, made into changes by `change`,
/// answered with `done`.
async fn set_one(
    groupname: String,
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
    (field, change, done): (
        &str,
        impl FnOnce(&str) -> Result<GroupChanges, PaiError>,
        &'static str,
    ),
) -> Response {
    ctx.answer(async {
        let caller = admin(&app, token)?;
        let params = params::object(body)?;
        let changes = change(params::string(&params, field)?)?;
        let name = target(&groupname)?;
        write(
            &app,
            &ctx,
            &caller.username,
            &name,
            &GroupCommand::Update(changes),
        )
        .await?;
        Ok::<_, PaiError>(created(done))
    })
    .await
}

/// `DELETE /api/v2/group/:groupname` (admin only). The body the document shows is not
/// needed and not read.
pub async fn delete(
    groupname: String,
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
) -> Response {
    ctx.answer(async {
        let caller = admin(&app, token)?;
        let name = target(&groupname)?;
        write(&app, &ctx, &caller.username, &name, &GroupCommand::Delete).await?;
        Ok::<_, PaiError>(json(&json!({ "message": "group is removed successfully" })))
    })
    .await
}

/// `GET /api/v2/group`: every group, to anyone signed in.
pub async fn list(ctx: RequestContext, app: Arc<App>, token: Option<String>) -> Response {
    ctx.answer(async {
        signed_in(&app, token)?;
        let groups = projection::groups::group_list(&app.db.pool)
            .await
            .map_err(PaiError::query)?;
        Ok::<_, PaiError>(json(&groups.iter().map(view).collect::<Vec<_>>()))
    })
    .await
}

/// `GET /api/v2/group/:groupname`: one group, to anyone signed in.
pub async fn get(
    groupname: String,
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
) -> Response {
    ctx.answer(async {
        signed_in(&app, token)?;
        let name = target(&groupname)?;
        let group = projection::groups::group_by_name(&app.db.pool, name.as_str())
            .await
            .map_err(PaiError::query)?
            .ok_or_else(|| PaiError::no_group(name.as_str()))?;
        Ok::<_, PaiError>(json(&view(&group)))
    })
    .await
}

/// A group in OpenPAI's shape.
fn view(group: &GroupRow) -> Value {
    json!({
        "groupname": group.name,
        "description": group.description,
        "externalName": group.external_name,
        "extension": group.extension,
    })
}
