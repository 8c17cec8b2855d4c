//! The GPU course platform's door (`/v1/course/*`, `/v1/health/*`).
//!
//! Decisions where its document is silent or contradicts itself:
//! - Every path answers with and without a trailing slash; a JSON body is read whatever its
//!   Content-Type says (the document's samples use `curl -d`).
//! - Token needed, as the platform's server did: the POST list of a user's courses, create,
//!   update, delete, get and `databaseAuth`. No token: the GET list of all courses, the level
//!   list, search and `database`. Tokens come as `Bearer x` only, as the document says.
//! - A course is created for oneself (`user` empty or one's own name), and updated or
//!   deleted by its owner, unless the caller is an admin (the domain's rule, the same for
//!   jobs): another user's course is 403 "…: only the owner of this course or an admin may
//!   do this". The platform let any valid token act on any course; a shared centre cannot.
//!   Reads stay open to every token, as the catalogue is public.
//! - An unknown, deleted or non-UUID course id answers 400 "Course Id is not found" for get,
//!   update and delete alike (the one not-found answer the document gives); a missing id in
//!   the path answers 400 "Empty course id".
//! - Errors always carry `"error": true` (the document's update section shows `false` on
//!   its 400s, a slip of its authors).
//! - Update changes only the fields given with a non-empty value (as the platform's gorm
//!   `Updates` did), except `datasets`, which is replaced whenever it is given. An update that
//!   changes nothing records no event and still answers success.
//! - `createAt` is the time of the course's `CourseCreated`, in RFC 3339 to the second.
//! - An outage of NATS or PostgreSQL answers 503 in this envelope.

mod catalogue;
mod errors;
mod health;

use std::sync::Arc;

use warp::{Filter, filters::BoxedFilter, path, reply::Response};

use crate::{App, auth, body, context};

pub fn routes(app: Arc<App>) -> BoxedFilter<(Response,)> {
    let app = warp::any().map(move || app.clone());
    let ctx = |route| context::request_context("courses", route);
    let token = auth::authorization();
    let body = body::bytes();

    let list_mine = path!("v1" / "course" / "list")
        .and(warp::post())
        .and(ctx("/v1/course/list"))
        .and(app.clone())
        .and(token.clone())
        .and(body.clone())
        .then(catalogue::list_mine);
    let list_all = path!("v1" / "course" / "list")
        .and(warp::get())
        .and(ctx("/v1/course/list"))
        .and(app.clone())
        .then(catalogue::list_all);
    let create = path!("v1" / "course" / "create")
        .and(warp::post())
        .and(ctx("/v1/course/create"))
        .and(app.clone())
        .and(token.clone())
        .and(body.clone())
        .then(catalogue::create);
    let update = path!("v1" / "course" / "update")
        .and(warp::put())
        .and(ctx("/v1/course/update"))
        .and(app.clone())
        .and(token.clone())
        .and(body.clone())
        .then(catalogue::update);
    let delete = path!("v1" / "course" / "delete" / String)
        .or(path!("v1" / "course" / "delete").map(String::new))
        .unify()
        .and(warp::delete())
        .and(ctx("/v1/course/delete/:id"))
        .and(app.clone())
        .and(token.clone())
        .then(catalogue::delete);
    let level = path!("v1" / "course" / "level" / String)
        .or(path!("v1" / "course" / "level").map(String::new))
        .unify()
        .and(warp::get())
        .and(ctx("/v1/course/level/:level"))
        .and(app.clone())
        .then(catalogue::list_level);
    let get = path!("v1" / "course" / "get" / String)
        .or(path!("v1" / "course" / "get").map(String::new))
        .unify()
        .and(warp::get())
        .and(ctx("/v1/course/get/:id"))
        .and(app.clone())
        .and(token.clone())
        .then(catalogue::get);
    let search = path!("v1" / "course" / "search")
        .and(warp::post())
        .and(ctx("/v1/course/search"))
        .and(app.clone())
        .and(body.clone())
        .then(catalogue::search);
    let database = path!("v1" / "health" / "database")
        .and(warp::post())
        .and(ctx("/v1/health/database"))
        .and(app.clone())
        .and(warp::any().map(|| None))
        .and(body.clone())
        .then(health::database);
    let database_auth = path!("v1" / "health" / "databaseAuth")
        .and(warp::post())
        .and(ctx("/v1/health/databaseAuth"))
        .and(app)
        .and(token.map(Some))
        .and(body)
        .then(health::database);

    list_mine
        .or(list_all)
        .unify()
        .or(create)
        .unify()
        .or(update)
        .unify()
        .or(delete)
        .unify()
        .or(level)
        .unify()
        .or(get)
        .unify()
        .or(search)
        .unify()
        .or(database)
        .unify()
        .or(database_auth)
        .unify()
        .boxed()
}
