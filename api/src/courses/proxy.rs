//! `POST /v1/proxy/token`, `/refresh`, `/introspection` and `/logout`: the course
//! platform's proxy to its OAuth2 provider, which is Gantry's own token service here
//! (`crate::oauth` issues the codes). The tokens are Gantry's: every door accepts them.

use std::sync::Arc;

use command::{CommandError, StoreError, user::UserCommand};
use projection::{
    DbError,
    oauth_codes::{self, Redeemed},
};
use serde::Deserialize;
use serde_json::json;
use tracing::{error, warn};
use warp::{
    Reply,
    http::StatusCode,
    reply::{Response, json},
};

use super::errors::{CourseError, authorize, parse};
use crate::{
    App, RequestContext,
    auth::{AuthError, Session},
    body::{BodyError, null_as_default},
    oauth::{ACCESS_TTL, REFRESH_TTL, SCOPE},
};

#[derive(Deserialize)]
struct CodeRequest {
    #[serde(default, deserialize_with = "null_as_default")]
    code: String,
    /// Optional: when sent, they must be those the code was issued for (RFC 6749 §4.1.3).
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    redirect_uri: Option<String>,
}

#[derive(Deserialize)]
struct RefreshRequest {
    #[serde(default, deserialize_with = "null_as_default")]
    refresh_token: String,
}

#[derive(Deserialize)]
struct TokenRequest {
    #[serde(default, deserialize_with = "null_as_default")]
    token: String,
    /// The document's sample call of introspection sends this name.
    #[serde(default, deserialize_with = "null_as_default")]
    refresh_token: String,
}

/// The exchange failed through the client's fault: `invalid_grant` (RFC 6749 §5.2).
fn invalid_grant(reason: &str) -> CourseError {
    CourseError::bad_request(format!("Exchange Token fail: invalid_grant: {reason}"))
}

fn store_failed(e: DbError, context: &str) -> CourseError {
    match e {
        DbError::Unavailable(reason) => {
            warn!(%reason, "database unavailable");
            CourseError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{context} fail: service unavailable, try again later"),
            )
        }
        other => {
            error!(error = %other, "OAuth store failed");
            CourseError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{context} fail: internal error"),
            )
        }
    }
}

/// Remembers which client `session`'s tokens belong to, for introspection.
async fn remember(
    app: &App,
    session: &Session,
    client_id: &str,
    scope: &str,
) -> Result<(), CourseError> {
    let mut tokens = vec![(session.access.as_str(), session.access_expires_at)];
    if let (Some(refresh), Some(expires)) = (&session.refresh, session.refresh_expires_at) {
        tokens.push((refresh.as_str(), expires));
    }
    for (token, expires_at) in tokens {
        oauth_codes::remember_token(&app.db.pool, token, client_id, scope, expires_at)
            .await
            .map_err(|e| store_failed(e, "Exchange Token"))?;
    }
    Ok(())
}

fn token_answer(session: &Session, refresh_token: &str) -> Response {
    let expires_in = (session.access_expires_at - chrono::Utc::now())
        .num_seconds()
        .max(0);
    json(&json!({
        "token": session.access,
        "refresh_token": refresh_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
    }))
    .into_response()
}

pub async fn token(
    ctx: RequestContext,
    app: Arc<App>,
    body: Result<bytes::Bytes, BodyError>,
) -> Response {
    ctx.answer(async {
        let request: CodeRequest = parse(body)?;
        if request.code.is_empty() {
            return Err(CourseError::parse("code is empty"));
        }
        let grant = match oauth_codes::redeem(&app.db.pool, &request.code)
            .await
            .map_err(|e| store_failed(e, "Exchange Token"))?
        {
            Redeemed::Granted(grant) => grant,
            Redeemed::Expired => return Err(invalid_grant("the code expired")),
            Redeemed::Unknown => return Err(invalid_grant("the code is unknown or was used")),
        };
        if request.client_id.is_some_and(|c| c != grant.client_id)
            || request
                .redirect_uri
                .is_some_and(|r| r != grant.redirect_uri)
        {
            return Err(invalid_grant(
                "the code was issued to another client or redirect_uri",
            ));
        }
        let who = app
            .principal(&grant.username)
            .filter(|p| p.user_id == grant.user_id)
            .ok_or_else(|| invalid_grant("the user no longer may sign in"))?;
        let session = app
            .sign_in(&who, ACCESS_TTL, Some(REFRESH_TTL))
            .map_err(|e| {
                error!(error = %e, "token could not be signed");
                CourseError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Exchange Token fail: internal error",
                )
            })?;
        remember(&app, &session, &grant.client_id, &grant.scope).await?;
        let refresh = session.refresh.clone().unwrap_or_default();
        Ok::<_, CourseError>(token_answer(&session, &refresh))
    })
    .await
}

pub async fn refresh(
    ctx: RequestContext,
    app: Arc<App>,
    body: Result<bytes::Bytes, BodyError>,
) -> Response {
    ctx.answer(async {
        let request: RefreshRequest = parse(body)?;
        if request.refresh_token.is_empty() {
            return Err(CourseError::parse("refresh_token is empty"));
        }
        let session = app
            .refresh(&request.refresh_token, ACCESS_TTL)
            .map_err(|e| invalid_grant(refused(e)))?;
        let grant = oauth_codes::client_of(&app.db.pool, &request.refresh_token)
            .await
            .map_err(|e| store_failed(e, "Exchange Token"))?;
        if let Some((client_id, scope)) = grant {
            remember(&app, &session, &client_id, &scope).await?;
        }
        let refresh = session
            .refresh
            .clone()
            .unwrap_or_else(|| request.refresh_token.clone());
        Ok::<_, CourseError>(token_answer(&session, &refresh))
    })
    .await
}

/// Why a token is refused, in the words of an `invalid_grant`.
fn refused(e: AuthError) -> &'static str {
    match e {
        AuthError::Expired => "the refresh token expired",
        AuthError::Revoked => "the refresh token was revoked",
        AuthError::NotApproved(_) => "the user may not sign in",
        _ => "the refresh token is not valid",
    }
}

/// RFC 7662: an active access token's facts, else only `"active": false` (invalid,
/// expired, revoked, a refresh token, or its user deleted, pending or disabled).
pub async fn introspection(
    ctx: RequestContext,
    app: Arc<App>,
    body: Result<bytes::Bytes, BodyError>,
) -> Response {
    ctx.answer(async {
        let request: TokenRequest = parse(body)?;
        let token = if request.token.is_empty() {
            request.refresh_token
        } else {
            request.token
        };
        if token.is_empty() {
            return Err(CourseError::parse("token is empty"));
        }
        let inactive = || Ok(json(&json!({ "active": false })).into_response());
        let Ok(who) = app.authenticate(Some(&format!("Bearer {token}"))) else {
            return inactive();
        };
        let Ok(exp) = app.tokens.verify(&token).map(|claims| claims.expires_at()) else {
            return inactive();
        };
        let grant = oauth_codes::client_of(&app.db.pool, &token)
            .await
            .map_err(|e| store_failed(e, &format!("Introspection Token {{{token}}}")))?;
        let (client_id, scope) = match grant {
            Some((client_id, scope)) => (Some(client_id), scope),
            None => (None, SCOPE.to_string()),
        };
        Ok::<_, CourseError>(
            json(&json!({
                "active": true,
                "scope": scope,
                "client_id": client_id,
                "username": who.username,
                "token_type": "Bearer",
                "exp": exp.timestamp(),
                "role": if who.admin { "admin" } else { "user" },
            }))
            .into_response(),
        )
    })
    .await
}

/// Revokes every token of the token's user (`TokensRevoked`): this one, its refresh token,
/// and those of every other login.
pub async fn logout(
    ctx: RequestContext,
    app: Arc<App>,
    header: Option<String>,
    body: Result<bytes::Bytes, BodyError>,
) -> Response {
    ctx.answer(async {
        let request: TokenRequest = parse(body)?;
        let who = if !request.token.is_empty() {
            authorize(&app, Some(format!("Bearer {}", request.token)))?
        } else if header.is_some() {
            authorize(&app, header)?
        } else {
            return Err(CourseError::parse("token is empty"));
        };
        let context = format!("Logout use Token {{{}}}", request.token);
        app.write(
            &app.users,
            &who.user_id,
            &UserCommand::RevokeTokens(who.caller()),
            &ctx.command(&who.username, &who.user_id),
        )
        .await
        .map_err(|e| match e {
            CommandError::Store(StoreError::Unavailable(reason)) => {
                warn!(%reason, "event store unavailable");
                CourseError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{context} fail: service unavailable, try again later"),
                )
            }
            CommandError::Domain(refused) => {
                CourseError::new(StatusCode::FORBIDDEN, format!("{context} fail: {refused}"))
            }
            other => {
                error!(error = %other, "logout failed");
                CourseError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("{context} fail: internal error"),
                )
            }
        })?;
        Ok::<_, CourseError>(json(
            &json!({ "message": format!("{} logout", who.username) }),
        ))
    })
    .await
}
