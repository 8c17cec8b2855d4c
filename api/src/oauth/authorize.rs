//! `GET /oauth/authorize` shows the login form; `POST` checks the password and sends the
//! browser back to the client with a code.

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use projection::{
    DbError,
    oauth_codes::{self, Grant},
};
use serde_json::Value;
use tracing::{error, warn};
use warp::{
    http::{HeaderValue, StatusCode, header},
    reply::Response,
};

use super::{
    SCOPE,
    page::{self, Request},
};
use crate::{
    App, RequestContext,
    auth::{self, LoginError},
    body::BodyError,
    input,
};

pub async fn show(ctx: RequestContext, app: Arc<App>, query: String) -> Response {
    ctx.answer(async {
        let params = match parameters(query.as_bytes()) {
            Ok(params) => params,
            Err(refused) => return *refused,
        };
        match request(&app, &params) {
            Ok(request) => page::form(StatusCode::OK, &request, "", None),
            Err(refused) => *refused,
        }
    })
    .await
}

pub async fn submit(
    ctx: RequestContext,
    app: Arc<App>,
    peer: Option<SocketAddr>,
    body: Result<bytes::Bytes, BodyError>,
) -> Response {
    ctx.answer(async {
        let params = match body
            .map_err(|e| Box::new(page::refusal(StatusCode::BAD_REQUEST, &e.to_string())))
            .and_then(|body| parameters(&body))
        {
            Ok(params) => params,
            Err(refused) => return *refused,
        };
        let request = match request(&app, &params) {
            Ok(request) => request,
            Err(refused) => return *refused,
        };
        let username = params.get("username").cloned().unwrap_or_default();
        let password = params.get("password").cloned().unwrap_or_default();
        if username.is_empty() || password.is_empty() {
            let message = "Enter your username and password.";
            return page::form(StatusCode::BAD_REQUEST, &request, &username, Some(message));
        }
        let client = peer.map(|p| p.ip());
        let user = match auth::check_password(
            &app.db.pool,
            &app.logins,
            &username,
            password,
            client,
        )
        .await
        {
            Ok(user) => user,
            Err(refused) => return login_refused(&request, &username, refused),
        };
        let grant = Grant {
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            scope: SCOPE.to_string(),
            user_id: user.user_id.clone(),
            username: user.username.clone(),
        };
        match oauth_codes::issue(&app.db.pool, &grant, app.oauth.code_ttl).await {
            Ok(code) => redirect(&request, &[("code", &code)]),
            Err(e) => store_failed(&request, &username, e),
        }
    })
    .await
}

/// The parameters of a query string or a form body. A repeated name, or a value that breaks
/// the rule of all text, is refused before anything else (RFC 6749 §3.1: parameters must
/// not be repeated). (Refusals are boxed: a response is large, and rarely made.)
fn parameters(raw: &[u8]) -> Result<HashMap<String, String>, Box<Response>> {
    let bad = |message: &str| Box::new(page::refusal(StatusCode::BAD_REQUEST, message));
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(raw).map_err(|_| bad("The request is not a valid form."))?;
    let mut params = HashMap::new();
    for (name, value) in pairs {
        input::check_strings(&Value::String(value.clone()))
            .map_err(|_| bad(&format!("The parameter {name} holds a control character.")))?;
        if params.insert(name.clone(), value).is_some() {
            return Err(bad(&format!("The parameter {name} is repeated.")));
        }
    }
    Ok(params)
}

/// The client's request, once its client and redirect URI are accepted and it asks for a
/// code with a scope the provider grants. A bad client or redirect URI is answered here;
/// every other error goes back to the client (RFC 6749 §4.1.2.1).
fn request(app: &App, params: &HashMap<String, String>) -> Result<Request, Box<Response>> {
    let get = |name: &str| params.get(name).filter(|v| !v.is_empty()).cloned();
    let bad = |message: &str| Box::new(page::refusal(StatusCode::BAD_REQUEST, message));
    let Some(client_id) = get("client_id") else {
        return Err(bad("The request names no client (client_id)."));
    };
    let Some(redirect_uri) = get("redirect_uri") else {
        return Err(bad("The request has no redirect_uri."));
    };
    if !app.oauth.clients.accepts(&client_id, &redirect_uri) {
        return Err(bad(
            "This client or its redirect_uri is not registered with Gantry.",
        ));
    }
    let request = Request {
        client_id,
        redirect_uri,
        state: get("state"),
        response_type: get("response_type").unwrap_or_default(),
        scope: get("scope"),
    };
    let refused = |code: &str, description: &str| {
        Box::new(redirect(
            &request,
            &[("error", code), ("error_description", description)],
        ))
    };
    match request.response_type.as_str() {
        "code" => {}
        "" => return Err(refused("invalid_request", "response_type is required")),
        _ => {
            return Err(refused(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if let Some(scope) = &request.scope
        && scope.split(' ').any(|s| !s.is_empty() && s != SCOPE)
    {
        return Err(refused("invalid_scope", "the only scope is read_write"));
    }
    Ok(request)
}

/// `302` to the client's redirect URI with `params` and the client's `state`.
fn redirect(request: &Request, params: &[(&str, &str)]) -> Response {
    let mut query: Vec<(&str, &str)> = params.to_vec();
    if let Some(state) = &request.state {
        query.push(("state", state));
    }
    let query = serde_urlencoded::to_string(&query).unwrap_or_default();
    let separator = if request.redirect_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    let location = format!("{}{separator}{query}", request.redirect_uri);
    let Ok(location) = HeaderValue::from_str(&location) else {
        return page::refusal(StatusCode::BAD_REQUEST, "The redirect_uri cannot be used.");
    };
    let mut response = Response::new(Default::default());
    *response.status_mut() = StatusCode::FOUND;
    page::secure(&mut response);
    response.headers_mut().insert(header::LOCATION, location);
    response
}

fn login_refused(request: &Request, username: &str, refused: LoginError) -> Response {
    let (status, message) = match refused {
        LoginError::NoUser | LoginError::WrongPassword => (
            StatusCode::UNAUTHORIZED,
            "Wrong username or password.".to_string(),
        ),
        LoginError::NotApproved(status) => (
            StatusCode::FORBIDDEN,
            format!(
                "The account {username} is {}: it cannot sign in.",
                status.as_str()
            ),
        ),
        LoginError::Throttled(throttled) => {
            let mut response = page::form(
                StatusCode::TOO_MANY_REQUESTS,
                request,
                username,
                Some(&format!(
                    "Too many failed sign-ins; try again in {} seconds.",
                    throttled.retry_after_secs()
                )),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, throttled.retry_after_secs().into());
            return response;
        }
        LoginError::Query(e) => return store_failed(request, username, e),
        LoginError::Hashing(e) => {
            error!(error = %e, "password check failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sign-in failed; try again later.".to_string(),
            )
        }
    };
    page::form(status, request, username, Some(&message))
}

fn store_failed(request: &Request, username: &str, e: DbError) -> Response {
    let status = if matches!(e, DbError::Unavailable(_)) {
        warn!(error = %e, "database unavailable");
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        error!(error = %e, "sign-in failed");
        StatusCode::INTERNAL_SERVER_ERROR
    };
    page::form(
        status,
        request,
        username,
        Some("Sign-in is unavailable; try again later."),
    )
}
