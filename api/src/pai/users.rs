//! `POST /api/v2/user`: an admin creates a user (`UserCreated`). The password's hash goes to
//! the credential store, the event names only its credential (`App::write_password`).

use std::sync::Arc;

use command::{
    user::{Details, NewUser, UserCommand},
    values::{Email, InvalidValue, Password, Username, VirtualCluster},
};
use events::user::user_id;
use serde_json::{Map, Value, json};
use warp::{
    Reply,
    http::StatusCode,
    reply::{Response, json, with_status},
};

use super::{
    errors::{PaiError, admin},
    token::required_string,
};
use crate::{App, RequestContext, body::BodyError, input};

pub async fn create(
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Result<bytes::Bytes, BodyError>,
) -> Response {
    ctx.answer(async {
        let caller = admin(&app, token)?;
        let params = match input::json::<Value>(&body?)? {
            Value::Object(map) => map,
            _ => return Err(PaiError::invalid("\"value\" must be an object")),
        };
        let (new, password) = new_user(&params)?;
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
            PaiError::password_write(e, || {
                PaiError::new(
                    StatusCode::CONFLICT,
                    "ConflictUserError",
                    format!("User name {username} already exists."),
                )
            })
        })?;
        Ok(with_status(
            json(&json!({ "message": "User is created successfully" })),
            StatusCode::CREATED,
        )
        .into_response())
    })
    .await
}

/// The user described by the request, checked as OpenPAI's schema checks it, and the
/// password to hash.
/// Says an invalid value with the value itself, as Joi does for patterns.
fn said(raw: &str) -> impl FnOnce(InvalidValue) -> PaiError + '_ {
    move |invalid| PaiError::value(invalid, Some(raw))
}

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
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => VirtualCluster::parse(s.as_str()).map_err(said(s)),
                _ => Err(PaiError::invalid(
                    "\"virtualCluster\" items must be strings",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(PaiError::invalid("\"virtualCluster\" must be an array")),
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
