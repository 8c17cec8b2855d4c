//! The OpenPAI door (`/api/v1/*`, `/api/v2/*`), also under the `/rest-server` prefix its
//! reverse proxy and Python SDK use.
//!
//! Decisions where its document is silent:
//! - `POST /api/v1/token` reads a form (`application/x-www-form-urlencoded`) or, for any
//!   other Content-Type, JSON. `expiration` is in seconds, a number or a numeric string,
//!   default 7 days (OpenPAI's), at most one year; the token expires exactly then.
//! - A missing or malformed parameter is 400 `InvalidParametersError`, as OpenPAI's
//!   validation answered; a missing token is 401 `UnauthorizedUserError`, and so is an
//!   invalid or expired one (OpenPAI answered every failed token check as a guest).
//! - Unknown paths under `/api` answer 404 `NotFoundError`.

mod errors;
mod token;
mod users;

use std::sync::Arc;

use serde_json::json;
use warp::{Filter, filters::BoxedFilter, path, reply::Response};

use crate::{App, auth, body, context};

pub use errors::PaiError;

pub fn routes(app: Arc<App>) -> BoxedFilter<(Response,)> {
    let api = api_routes(app);
    warp::path("rest-server")
        .and(api.clone())
        .or(api)
        .unify()
        .boxed()
}

fn api_routes(app: Arc<App>) -> BoxedFilter<(Response,)> {
    let app = warp::any().map(move || app.clone());
    let ctx = |route| context::request_context("pai", route);

    let info = path!("api" / "v1")
        .and(warp::get())
        .and(ctx("/api/v1"))
        .then(cluster_info);
    let token = path!("api" / "v1" / "token")
        .and(warp::post())
        .and(ctx("/api/v1/token"))
        .and(app.clone())
        .and(context::header_text("content-type"))
        .and(body::bytes())
        .then(token::issue);
    let create_user = path!("api" / "v2" / "user")
        .and(warp::post())
        .and(ctx("/api/v2/user"))
        .and(app)
        .and(auth::authorization())
        .and(body::bytes())
        .then(users::create);
    let not_found =
        warp::path("api")
            .and(ctx("unmatched"))
            .then(|ctx: context::RequestContext| async move {
                ctx.answer(async { PaiError::not_found() }).await
            });

    info.or(token)
        .unify()
        .or(create_user)
        .unify()
        .or(not_found)
        .unify()
        .boxed()
}

/// `GET /api/v1`: what this OpenPAI is.
async fn cluster_info(ctx: context::RequestContext) -> Response {
    ctx.answer(async {
        warp::reply::json(&json!({
            "name": "PAI RESTfulAPI",
            "version": env!("CARGO_PKG_VERSION"),
            "launcherType": "k8s",
            "authnMethod": "basic",
        }))
    })
    .await
}
