//! `POST /api/v1/token`: log in with username and password, get an access token.
//! Failed logins are throttled per username and per client address (see `crate::auth`).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use serde_json::{Map, Value, json};
use warp::{
    http::StatusCode,
    reply::{Response, json},
};

use super::errors::PaiError;
use crate::{
    App, RequestContext,
    auth::{self, LoginError},
    body::BodyError,
    input,
};

/// OpenPAI's default token lifetime.
const DEFAULT_EXPIRATION: u64 = 7 * 24 * 3600;
const MAX_EXPIRATION: u64 = 365 * 24 * 3600;

pub async fn issue(
    ctx: RequestContext,
    app: Arc<App>,
    peer: Option<SocketAddr>,
    content_type: Option<String>,
    body: Result<bytes::Bytes, BodyError>,
) -> Response {
    ctx.answer(async {
        let params = parameters(content_type.as_deref(), &body?)?;
        let username = required_string(&params, "username")?;
        let password = required_string(&params, "password")?;
        let expiration = expiration(&params)?;

        let client = peer.map(|p| p.ip());
        let user = auth::check_password(&app.db.pool, &app.logins, &username, password, client)
            .await
            .map_err(|e| match e {
                LoginError::Throttled(throttled) => PaiError::from(throttled),
                LoginError::NoUser => PaiError::new(
                    StatusCode::BAD_REQUEST,
                    "NoUserError",
                    format!("User {username} is not found."),
                ),
                // "Passwork" is OpenPAI's own spelling of this code; its clients match on
                // it, so it stays.
                LoginError::WrongPassword => PaiError::new(
                    StatusCode::BAD_REQUEST,
                    "IncorrectPassworkError",
                    "Password is incorrect.",
                ),
                LoginError::NotApproved(status) => PaiError::not_approved(&username, status),
                LoginError::Query(e) => PaiError::query(e),
                LoginError::Hashing(e) => PaiError::from(e),
            })?;
        let session = app
            .sign_in(&user, Duration::from_secs(expiration), None)
            .map_err(|e| PaiError::unknown(e.to_string()))?;
        Ok::<_, PaiError>(json(
            &json!({ "token": session.access, "user": user.username, "admin": user.admin }),
        ))
    })
    .await
}

/// The request's parameters from a JSON object or a form. A body that opens with `{` is
/// JSON whatever its Content-Type says (`curl -d '{...}'` labels it a form).
fn parameters(content_type: Option<&str>, body: &[u8]) -> Result<Map<String, Value>, PaiError> {
    let looks_like_json = body.trim_ascii_start().first() == Some(&b'{');
    let is_form = content_type.is_some_and(|c| {
        c.trim_start()
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    if is_form && !looks_like_json {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|e| PaiError::invalid(e.to_string()))?;
        let form = Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        );
        input::check_strings(&form)?;
        return match form {
            Value::Object(map) => Ok(map),
            _ => Err(PaiError::invalid("\"value\" must be an object")),
        };
    }
    match input::json::<Value>(body)? {
        Value::Object(map) => Ok(map),
        _ => Err(PaiError::invalid("\"value\" must be an object")),
    }
}

pub(super) fn required_string(params: &Map<String, Value>, name: &str) -> Result<String, PaiError> {
    match params.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(PaiError::invalid(format!(
            "\"{name}\" is not allowed to be empty"
        ))),
        None | Some(Value::Null) => Err(PaiError::invalid(format!("\"{name}\" is required"))),
        Some(_) => Err(PaiError::invalid(format!("\"{name}\" must be a string"))),
    }
}

fn expiration(params: &Map<String, Value>) -> Result<u64, PaiError> {
    let seconds = match params.get("expiration") {
        None | Some(Value::Null) => return Ok(DEFAULT_EXPIRATION),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match seconds {
        Some(s) if (1..=MAX_EXPIRATION).contains(&s) => Ok(s),
        _ => Err(PaiError::invalid(format!(
            "\"expiration\" must be a whole number of seconds from 1 to {MAX_EXPIRATION}"
        ))),
    }
}
