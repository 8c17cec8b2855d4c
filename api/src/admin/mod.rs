//! Gantry's own door for centre admins (`/admin/*`): how far each read model is, and what
//! could not be applied. Every route needs an admin's `Authorization: Bearer` token.
//!
//! Decisions:
//! - Errors are `{"error": "<Kind>", "message": …}` with the HTTP status of their kind
//!   (`Unauthorized` 401 without a valid token, `Forbidden` 403 for a non-admin,
//!   `Unavailable` 503, `Internal` 500): this door is Gantry's, not a platform's.
//! - `lag` is how many sequences of the log lie past a projection's checkpoint. An idle
//!   projection moves its checkpoint past other aggregates' events every few seconds, so a
//!   lag that stays above zero means it is behind, halted, or not running.

mod errors;
mod projections;

use std::sync::Arc;

use warp::{Filter, filters::BoxedFilter, path, reply::Response};

use crate::{App, auth, context};

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
    let parked = path!("admin" / "parked")
        .and(warp::get())
        .and(ctx("/admin/parked"))
        .and(app)
        .and(token)
        .then(projections::parked);
    let not_found =
        warp::path("admin")
            .and(ctx("unmatched"))
            .then(|ctx: context::RequestContext| async move {
                ctx.answer(async { AdminError::not_found() }).await
            });

    projections.or(parked).unify().or(not_found).unify().boxed()
}
