//! Gantry's own door for centre admins (`/admin/*`): how far each read model is, what
//! could not be applied (and applying it again: `POST /admin/parked/{seq}/retry`, see
//! `projection::retry`), and forgetting a user's personal data. Every route needs an
//! admin's `Authorization: Bearer` token.
//!
//! Decisions:
//! - Errors are `{"error": "<Kind>", "message": …}` with the HTTP status of their kind
//!   (`Unauthorized` 401 without a valid token, `Forbidden` 403 for a non-admin,
//!   `Unavailable` 503, `Internal` 500): this door is Gantry's, not a platform's.
//! - `lag` is how many sequences of the log lie past a projection's checkpoint. An idle
//!   projection moves its checkpoint past other aggregates' events every few seconds, so a
//!   lag that stays above zero means it is behind, halted, or not running.
//! - `DELETE /admin/users/{username}/personal-data` (with or without a trailing slash)
//!   forgets the user's email, phone, real name and LDAP uid (`UserForgotten`, and their
//!   keys destroyed: `projection::personal`) and answers 204 with no body. An unknown user,
//!   a deleted one, or a name no user can have is 404 `NotFound`. A user with nothing left
//!   to forget (forgotten before, nothing personal written since) is 204 too, and appends
//!   nothing. Data written while the forget is under way may be forgotten with it.

mod aggregates;
mod errors;
mod events;
mod personal_data;
mod projections;

use std::{collections::HashMap, sync::Arc};

use warp::{Filter, filters::BoxedFilter, path, reply::Response};

use crate::{App, auth, body, context};

pub use errors::AdminError;

pub fn routes(app: Arc<App>) -> BoxedFilter<(Response,)> {
    let app = warp::any().map(move || app.clone());
    let ctx = |route| context::request_context("admin", route);
    let token = auth::authorization();

    let projections = path!("admin" / "projections")
        .and(warp::get())
        .and(ctx("/admin/projections"))
        .and(app.clone())
        .and(token.clone())
        .then(projections::list);
    let rebuild = path!("admin" / "projections" / "rebuild")
        .and(warp::post())
        .and(ctx("/admin/projections/rebuild"))
        .and(app.clone())
        .and(token.clone())
        .and(body::bytes())
        .then(projections::rebuild);
    let parked = path!("admin" / "parked")
        .and(warp::get())
        .and(ctx("/admin/parked"))
        .and(app.clone())
        .and(token.clone())
        .then(projections::parked);
    let retry = path!("admin" / "parked" / String / "retry")
        .and(warp::post())
        .and(ctx("/admin/parked/{seq}/retry"))
        .and(app.clone())
        .and(token.clone())
        .and(body::bytes())
        .then(|seq, ctx, app, token, body| projections::retry(ctx, app, token, seq, body));
    let events = path!("admin" / "events")
        .and(warp::get())
        .and(ctx("/admin/events"))
        .and(app.clone())
        .and(token.clone())
        .and(context::header_text("accept"))
        .and(raw_query())
        .then(events::list);
    let aggregate = path!("admin" / "aggregates" / String / String)
        .and(warp::get())
        .and(ctx("/admin/aggregates/{type}/{id}"))
        .and(app.clone())
        .and(token.clone())
        .and(
            warp::query::<HashMap<String, String>>()
                .or(warp::any().map(HashMap::new))
                .unify(),
        )
        .then(|aggregate, id, ctx, app, token, query| {
            aggregates::show(ctx, app, token, aggregate, id, query)
        });
    let forget = path!("admin" / "users" / String / "personal-data")
        .and(warp::delete())
        .and(ctx("/admin/users/{username}/personal-data"))
        .and(app)
        .and(token)
        .then(|username, ctx, app, token| personal_data::forget(ctx, app, username, token));
    let not_found =
        warp::path("admin")
            .and(ctx("unmatched"))
            .then(|ctx: context::RequestContext| async move {
                ctx.answer(async { AdminError::not_found() }).await
            });

    projections
        .or(rebuild)
        .unify()
        .or(parked)
        .unify()
        .or(retry)
        .unify()
        .or(events)
        .unify()
        .or(aggregate)
        .unify()
        .or(forget)
        .unify()
        .or(not_found)
        .unify()
        .boxed()
}

/// The request's query string as sent ("" without one).
fn raw_query() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}
