//! `POST /api/v2/user`: an admin creates a user (`UserCreated`).

use std::sync::Arc;

use command::user::UserCommand;
use events::user::{UserCreated, user_id};
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
use crate::{App, RequestContext, body::BodyError};

pub async fn create(
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Result<bytes::Bytes, BodyError>,
) -> Response {
    ctx.answer(async {
        let caller = admin(&app.tokens, token)?;
        let params = match serde_json::from_slice(&body?) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(PaiError::invalid("\"value\" must be an object")),
            Err(e) => {
                return Err(PaiError::invalid(format!(
                    "Request body is not valid JSON: {e}"
                )));
            }
        };
        let new = new_user(&params)?;
        let password = required_string(&params, "password")?;
        let username = new.username.clone();
        let password_hash = command::password::hash(password).await?;
        let command = UserCommand::Create(UserCreated {
            password_hash,
            ..new
        });
        app.write(
            &app.users,
            &user_id(&username),
            &command,
            &ctx.command(&caller.username),
        )
        .await
        .map_err(|e| {
            PaiError::command(e, || {
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

/// The user described by the request, checked as OpenPAI's schema checks it (the password
/// hash is filled in by the caller).
fn new_user(params: &Map<String, Value>) -> Result<UserCreated, PaiError> {
    let username = required_string(params, "username")?;
    if username.len() > 64
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(PaiError::invalid(format!(
            "\"username\" with value \"{username}\" fails to match the required pattern: /^[\\w.-]+$/"
        )));
    }
    let password = required_string(params, "password")?;
    if password.chars().count() < 6 {
        return Err(PaiError::invalid(
            "\"password\" length must be at least 6 characters long",
        ));
    }
    let admin = match params.get("admin") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(PaiError::invalid("\"admin\" must be a boolean")),
    };
    let email = match params.get("email") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if s.is_empty() || (s.len() <= 254 && s.contains('@')) => s.clone(),
        Some(_) => return Err(PaiError::invalid("\"email\" must be a valid email")),
    };
    let virtual_clusters = match params.get("virtualCluster") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s)
                    if !s.is_empty()
                        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    Ok(s.clone())
                }
                _ => Err(PaiError::invalid(
                    "\"virtualCluster\" items must match the pattern /^[A-Za-z0-9_]+$/",
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
    Ok(UserCreated {
        username,
        password_hash: String::new(),
        admin,
        email,
        virtual_clusters,
        extension,
    })
}
