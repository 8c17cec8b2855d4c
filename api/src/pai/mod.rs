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
//! - Failed logins are throttled (`crate::auth`'s throttle, shared by every door): after 5
//!   failures of one username, or 20 from one client address, with no 5-minute pause
//!   between them, attempts are refused before any hashing for 1 s, doubling with each
//!   further failure up to 15 min; a success forgets the username. Unknown users are
//!   counted like known ones.
//!   The refusal is 429 `TooManyRequestsError`, "Too many failed login attempts. Try again
//!   in N seconds.", with `Retry-After: N` (OpenPAI had no such limit, so no word for it).
//!   The address is the TCP peer's, never `X-Forwarded-For`, which any client can forge.
//!   The counters are per process and in memory (bounded); the module docs say why.
//! - Password hashing runs at most once per core at a time; a login that waits more than
//!   10 s for its turn is 503 `UnknownError` with `Retry-After: 1`.
//! - A pending or disabled user cannot log in (the rule is the domain's,
//!   `command::user::may_log_in`): 403 `ForbiddenUserError`, "User NAME is waiting for
//!   approval." or "User NAME is disabled." (OpenPAI had no such status, so no word for it;
//!   403 is what it answers a user who may not act). The answer comes before any hashing,
//!   whatever the password, so it never tells whether a guess was right; it counts as a
//!   failed login for the throttle.
//! - Refusals of the identity rules: deleting an admin is 403 `RemoveAdminError` (OpenPAI's);
//!   another user's password or tokens without being an admin is 403 `ForbiddenUserError`,
//!   as OpenPAI's non-admin answer; demoting or disabling the last admin is 403
//!   `ForbiddenUserError`, "The last admin cannot be demoted or disabled." (OpenPAI had no
//!   such rule).
//! - `POST /api/v2/user` keeps the password's hash in the credential store; the event only
//!   names its credential.
//!
//! Users and groups (`users`, `user_updates`, `groups`):
//! - Who may do what: any signed-in user reads every user and group (OpenPAI's rule); a
//!   user changes their own password, email and extension; everything else is an admin's.
//!   Authorization uses the caller's current role, never the token's. A user's email is
//!   personal: only they and admins see it, others see `""` (as for a user who gave none).
//! - Reads the document omits, in OpenPAI's shapes, ordered by name: `GET /api/v2/user` and
//!   `/:username` answer `{"username", "grouplist", "email", "virtualCluster", "admin",
//!   "extension"}`; `GET /api/v2/group` and `/:groupname` answer `{"groupname",
//!   "description", "externalName", "extension"}`.
//! - A name in the path is percent-decoded; a malformed one is 400 `InvalidParametersError`.
//!   A user of the path that does not exist is 404 `NoUserError`, worded as the document
//!   words it per endpoint ("User NAME is not found." for delete, password and the reads,
//!   "User NAME not found." for the other updates); a group of the path is 404
//!   `NoGroupError`, "Group NAME is not found.". A group or virtual cluster named in a body
//!   that does not exist is 400 (`NoGroupError`, `NoVirtualClusterError`), as the document
//!   answers the virtual cluster. A group name taken is 409 `ConflictGroupError`, "Group
//!   name NAME already exists.". A known path with another method is 404 `NotFoundError`.
//! - Virtual clusters are not managed yet: `default` exists and is the only one
//!   (`virtual_clusters::existing`), checked at creation too.
//! - Password: whose password a caller may change is the domain's rule, asked before
//!   anything is hashed. A non-admin sends `oldPassword` (missing: 400), checked as a login
//!   is (throttled; wrong: 403 "Pls input the correct password."); an admin needs none.
//! - Email: `""` removes it. Its answer keeps the document's words, "Update user
//!   virtualCluster data successfully.", and so does a group's extension ("group is created
//!   successfully"): the document is what clients were given.
//! - An extension update (user or group) sets the keys sent and keeps the others, as
//!   OpenPAI did. An attribute by path (`/extension/acls/virtualClusters`) makes the objects
//!   on its way; 1 to 16 non-empty keys; through a value that is not an object is 400;
//!   `data` is required (`null` sets null). A group's `acls.admin` must be a boolean and
//!   `acls.virtualClusters` names of virtual clusters, whichever way they are set.
//! - Admin flag: a demotion goes through the admins roster (`command::admins`); an admin
//!   may demote themself while another remains; an admin is never deleted (demote first).
//!   A deleted user's password hashes are forgotten.
//! - A user's groups are labels: joining needs the group to exist, leaving does not;
//!   deleting a group leaves users' grouplists as they are; a group's `acls` do not (yet)
//!   grant its members admin rights or virtual clusters. There are no built-in groups
//!   (OpenPAI's `default` and `admingroup` came with its deployment). Joining or leaving one
//!   group sets the user's whole list from their current one (`UserGroupsSet`): two such
//!   changes of one user at the same instant may lose one.
//! - `DELETE /api/v2/group/:groupname` reads no body (the document shows one it does not
//!   need). A group's description may be empty; an empty `externalName` removes it.

mod errors;
mod groups;
mod params;
mod token;
mod user_updates;
mod users;
mod virtual_clusters;

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
        .then(cluster_info)
        .boxed();
    let token = path!("api" / "v1" / "token")
        .and(warp::post())
        .and(ctx("/api/v1/token"))
        .and(app.clone())
        .and(warp::addr::remote())
        .and(context::header_text("content-type"))
        .and(body::bytes())
        .then(token::issue)
        .boxed();
    let not_found =
        warp::path("api")
            .and(ctx("unmatched"))
            .then(|ctx: context::RequestContext| async move {
                ctx.answer(async { PaiError::not_found() }).await
            });

    info.or(token)
        .unify()
        .or(user_routes(app.clone().boxed()))
        .unify()
        .or(group_routes(app.boxed()))
        .unify()
        .or(not_found)
        .unify()
        .boxed()
}

type AppFilter = BoxedFilter<(Arc<App>,)>;

/// `/api/v2/user[/:username[/…]]`.
fn user_routes(app: AppFilter) -> BoxedFilter<(Response,)> {
    let ctx = |route| context::request_context("pai", route);
    let token = auth::authorization;

    let list = path!("api" / "v2" / "user")
        .and(warp::get())
        .and(ctx("/api/v2/user"))
        .and(app.clone())
        .and(token())
        .then(users::list)
        .boxed();
    let create = path!("api" / "v2" / "user")
        .and(warp::post())
        .and(ctx("/api/v2/user"))
        .and(app.clone())
        .and(token())
        .and(body::bytes())
        .then(users::create)
        .boxed();
    let get = path!("api" / "v2" / "user" / String)
        .and(warp::get())
        .and(ctx("/api/v2/user/:username"))
        .and(app.clone())
        .and(token())
        .then(users::get)
        .boxed();
    let delete = path!("api" / "v2" / "user" / String)
        .and(warp::delete())
        .and(ctx("/api/v2/user/:username"))
        .and(app.clone())
        .and(token())
        .then(users::delete)
        .boxed();
    let password = path!("api" / "v2" / "user" / String / "password")
        .and(warp::put())
        .and(ctx("/api/v2/user/:username/password"))
        .and(app.clone())
        .and(warp::addr::remote())
        .and(token())
        .and(body::bytes())
        .then(user_updates::password)
        .boxed();
    macro_rules! update {
        ($method:expr, $segment:literal, $handler:path) => {
            path!("api" / "v2" / "user" / String / $segment)
                .and($method)
                .and(ctx(concat!("/api/v2/user/:username/", $segment)))
                .and(app.clone())
                .and(token())
                .and(body::bytes())
                .then($handler)
                .boxed()
        };
    }
    let virtual_cluster = update!(warp::put(), "virtualcluster", user_updates::virtual_cluster);
    let email = update!(warp::put(), "email", user_updates::email);
    let set_admin = update!(warp::put(), "admin", user_updates::set_admin);
    let extension = update!(warp::put(), "extension", user_updates::extension);
    let grouplist = update!(warp::put(), "grouplist", user_updates::grouplist);
    let add_group = update!(warp::put(), "group", user_updates::add_group);
    let remove_group = update!(warp::delete(), "group", user_updates::remove_group);

    list.or(create)
        .unify()
        .or(get)
        .unify()
        .or(delete)
        .unify()
        .or(password)
        .unify()
        .or(virtual_cluster)
        .unify()
        .or(email)
        .unify()
        .or(set_admin)
        .unify()
        .or(extension)
        .unify()
        .or(grouplist)
        .unify()
        .or(add_group)
        .unify()
        .or(remove_group)
        .unify()
        .boxed()
}

/// `/api/v2/group[/:groupname[/…]]`.
fn group_routes(app: AppFilter) -> BoxedFilter<(Response,)> {
    let ctx = |route| context::request_context("pai", route);
    let token = auth::authorization;

    let list = path!("api" / "v2" / "group")
        .and(warp::get())
        .and(ctx("/api/v2/group"))
        .and(app.clone())
        .and(token())
        .then(groups::list)
        .boxed();
    let create = path!("api" / "v2" / "group")
        .and(warp::post())
        .and(ctx("/api/v2/group"))
        .and(app.clone())
        .and(token())
        .and(body::bytes())
        .then(groups::create)
        .boxed();
    let get = path!("api" / "v2" / "group" / String)
        .and(warp::get())
        .and(ctx("/api/v2/group/:groupname"))
        .and(app.clone())
        .and(token())
        .then(groups::get)
        .boxed();
    let delete = path!("api" / "v2" / "group" / String)
        .and(warp::delete())
        .and(ctx("/api/v2/group/:groupname"))
        .and(app.clone())
        .and(token())
        .then(groups::delete)
        .boxed();
    let attribute = path!("api" / "v2" / "group" / String / "extension" / ..)
        .and(warp::path::tail())
        .and(warp::put())
        .and(ctx("/api/v2/group/:groupname/extension/*"))
        .and(app.clone())
        .and(token())
        .and(body::bytes())
        .then(groups::extension_attribute)
        .boxed();
    macro_rules! update {
        ($segment:literal, $handler:path) => {
            path!("api" / "v2" / "group" / String / $segment)
                .and(warp::put())
                .and(ctx(concat!("/api/v2/group/:groupname/", $segment)))
                .and(app.clone())
                .and(token())
                .and(body::bytes())
                .then($handler)
                .boxed()
        };
    }
    let extension = update!("extension", groups::extension);
    let description = update!("description", groups::set_description);
    let external_name = update!("externalname", groups::set_external_name);

    list.or(create)
        .unify()
        .or(get)
        .unify()
        .or(delete)
        .unify()
        // The whole extension before one attribute of it: an empty tail is the whole.
        .or(extension)
        .unify()
        .or(attribute)
        .unify()
        .or(description)
        .unify()
        .or(external_name)
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
