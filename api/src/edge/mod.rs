//! The edge AI platform's door (ote-stack's open API): its user management —
//! `/v1/authorization` (login, refresh, logout, who am I), `/v1/user` (self-registration,
//! own password) and `/v1/admin/user*` (an admin's list, sub-users, audit, delete, reset).
//!
//! Decisions where its document is silent:
//! - Envelope `{"code", "message", "data"?, "total"?}`; `code` is the HTTP status of the
//!   answer (200 on success, as the document shows). Success messages are the document's,
//!   `"success"` or `"Success"` endpoint by endpoint.
//! - Parameter errors are 422 "Parameter validation error: …" (the document's code), for a
//!   body that is not a JSON object, a missing or mistyped field, a value the domain cannot
//!   take (`user` as a username, `password` of 6 to 256 characters, `phone`, `realName`), a
//!   user id that is not a positive integer, or bad paging. Bodies are read whatever their
//!   Content-Type says.
//! - Tokens arrive in `Authorization` as `Bearer x`, `Token x` or the bare token (the
//!   document sends it bare). No token is 401 "User need to log in first." (the document's
//!   words for it in its repository section); an invalid, expired or revoked token is 401
//!   saying which; a non-admin on `/v1/admin/*` is 403 "Only an admin may do this.". Every
//!   request is judged by the user's current state: a token of a user disabled since is 403
//!   "The user is disabled.", and an admin demoted since is a user.
//! - Login (`POST /v1/authorization`, `{"user", "password"}`) answers the document's `token`,
//!   an access token for 3,600 s, and beside it `refreshToken`, valid for 18,000 s (the
//!   platform's windows), with `expireTime` and `refreshExpireTime` in Unix seconds. An
//!   unknown user and a wrong password are the same 401 "Incorrect user or password.", in
//!   the same time; a pending user is 403 "The user is waiting for an admin's approval.", a
//!   disabled one 403 "The user is disabled.". Failed logins are throttled as at every door:
//!   429 with `Retry-After`.
//! - Refresh (`PUT /v1/authorization`) takes the refresh token in `Authorization` (any of
//!   the three spellings) and answers a new `token` for 3,600 s beside the same
//!   `refreshToken`: a login is refreshed for 18,000 s at most, never longer. An access token
//!   is not a refresh token: 401 "The token is invalid.". A refresh checks the user's current
//!   state, as every request does.
//! - Logout (`DELETE /v1/authorization`, also at the document example's
//!   `/v1/authorizations`) revokes every token of the user issued until then (the domain's
//!   `TokensRevoked`): every session of theirs ends, refresh tokens included.
//! - `GET /v1/authorization` answers the document's fields: `displayName` is the real name,
//!   or the username without one; `role` is 1 for the super admin (`admin`), 2 for another
//!   admin, 4 for a user (the document's example); `hasRepoAccount`, `privateProject`,
//!   `enableIngress`, `enableAlert` and `enableAdminAutoDeploy` are `false` until those
//!   features exist. `id` and `user` are added, so a client knows its own id.
//! - User ids are the users' numbers, the same at every door. A user's `status` is 0 for
//!   approved, 1 for disabled and 3 for waiting for approval: the document's list shows 3
//!   (the users an admin meets there are those to audit) and its audit example sets 0 (the
//!   audit's usual outcome). An audit (`PUT /v1/admin/user/:id`, `{"status", "comment"?}`)
//!   to another number is 422. Disabling the last admin is 403 "The last admin cannot be
//!   demoted or disabled.".
//! - Self-registration (`POST /v1/user`, `{"user", "password", "phone"?, "realName"?,
//!   "isAdmin"?}`) makes a pending user; the registrant is the event's actor. Its `isAdmin`
//!   is read (a boolean if given) and ignored: nobody makes themself an admin. A taken name is 409
//!   "User NAME already exists.".
//! - A sub-user (`POST /v1/admin/user`, an admin) has the registration's fields, honours
//!   `isAdmin`, is approved at once, and the answer's `data` carries its `id`.
//! - Changing one's password (`PUT /v1/user`, `{"oldPassword", "password"}`) checks the old
//!   one as a login does (throttled): a wrong one is 400 "The old password is incorrect.".
//!   A password change or an admin's reset (`PUT /v1/admin/user/:id/password`,
//!   `{"password"}`) ends every earlier session of that user: log in again with the new
//!   password. An admin's reset is the domain's `PasswordChanged` with the admin as its
//!   actor (the rule that only the user or an admin sets a password is `decide`'s);
//!   `PasswordReset` is left to resets proven by a code sent to the user.
//! - Deleting an admin is 403 "An admin cannot be deleted."; an unknown user id is 404
//!   "User N is not found.".
//! - `GET /v1/admin/user` takes `page` (from 1, default 1) and `pageSize` (default 10, at most
//!   1000, 0 for all: the document's paging parameters), in the users' id order; `total`
//!   counts every user. Each row is the document's, with `role` added; `updateTime` is the
//!   time of the user's last event (a logout counts).
//! - Every path answers with and without a trailing slash. An unknown path under the edge
//!   door's prefixes is 404, a known path with another method 405, both in this envelope.

mod admin;
mod authorization;
mod errors;
mod params;
mod users;

use std::sync::Arc;

use warp::{Filter, filters::BoxedFilter, path, reply::Response};

use crate::{App, auth, body, context};

pub use errors::EdgeError;

/// The first path segments under `/v1` that are the edge door's.
const PREFIXES: &[&str] = &[
    "authorization",
    "authorizations",
    "user",
    "admin",
    "business",
    "cluster",
    "node",
    "repository",
    "app",
    "deploy",
];

pub fn routes(app: Arc<App>) -> BoxedFilter<(Response,)> {
    let app = warp::any().map(move || app.clone());
    let ctx = |route| context::request_context("edge", route);
    let token = auth::authorization();
    let body = body::bytes();
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();

    let login = path!("v1" / "authorization")
        .and(warp::post())
        .and(ctx("/v1/authorization"))
        .and(app.clone())
        .and(warp::addr::remote())
        .and(body.clone())
        .then(authorization::login);
    let refresh = path!("v1" / "authorization")
        .and(warp::put())
        .and(ctx("/v1/authorization"))
        .and(app.clone())
        .and(token.clone())
        .then(authorization::refresh);
    let logout = path!("v1" / "authorization")
        .or(path!("v1" / "authorizations"))
        .unify()
        .and(warp::delete())
        .and(ctx("/v1/authorization"))
        .and(app.clone())
        .and(token.clone())
        .then(authorization::logout);
    let info = path!("v1" / "authorization")
        .and(warp::get())
        .and(ctx("/v1/authorization"))
        .and(app.clone())
        .and(token.clone())
        .then(authorization::info);
    let register = path!("v1" / "user")
        .and(warp::post())
        .and(ctx("/v1/user"))
        .and(app.clone())
        .and(body.clone())
        .then(users::register);
    let change_password = path!("v1" / "user")
        .and(warp::put())
        .and(ctx("/v1/user"))
        .and(app.clone())
        .and(token.clone())
        .and(warp::addr::remote())
        .and(body.clone())
        .then(users::change_password);
    let list = path!("v1" / "admin" / "user")
        .and(warp::get())
        .and(ctx("/v1/admin/user"))
        .and(app.clone())
        .and(token.clone())
        .and(query)
        .then(admin::list);
    let create = path!("v1" / "admin" / "user")
        .and(warp::post())
        .and(ctx("/v1/admin/user"))
        .and(app.clone())
        .and(token.clone())
        .and(body.clone())
        .then(admin::create);
    let audit = path!("v1" / "admin" / "user" / String)
        .and(warp::put())
        .and(ctx("/v1/admin/user/:id"))
        .and(app.clone())
        .and(token.clone())
        .and(body.clone())
        .then(admin::audit);
    let delete = path!("v1" / "admin" / "user" / String)
        .and(warp::delete())
        .and(ctx("/v1/admin/user/:id"))
        .and(app.clone())
        .and(token.clone())
        .then(admin::delete);
    let reset = path!("v1" / "admin" / "user" / String / "password")
        .and(warp::put())
        .and(ctx("/v1/admin/user/:id/password"))
        .and(app)
        .and(token)
        .and(body)
        .then(admin::reset_password);
    let unmatched = warp::path("v1")
        .and(warp::path::param::<String>())
        .and_then(|first: String| async move {
            if PREFIXES.contains(&first.as_str()) {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
        .and(ctx("unmatched"))
        .and(warp::path::full())
        .then(
            |ctx: context::RequestContext, path: warp::path::FullPath| async move {
                let known = is_route(path.as_str());
                ctx.answer(async move {
                    if known {
                        EdgeError::method_not_allowed()
                    } else {
                        EdgeError::no_route()
                    }
                })
                .await
            },
        );

    login
        .or(refresh)
        .unify()
        .or(logout)
        .unify()
        .or(info)
        .unify()
        .or(register)
        .unify()
        .or(change_password)
        .unify()
        .or(list)
        .unify()
        .or(create)
        .unify()
        .or(audit)
        .unify()
        .or(delete)
        .unify()
        .or(reset)
        .unify()
        .or(unmatched)
        .unify()
        .boxed()
}

/// Whether `path` is one of the door's routes (under some method).
fn is_route(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    matches!(
        segments.as_slice(),
        ["v1", "authorization" | "authorizations" | "user"]
            | ["v1", "admin", "user"]
            | ["v1", "admin", "user", _]
            | ["v1", "admin", "user", _, "password"]
    )
}
