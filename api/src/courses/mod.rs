//! The GPU course platform's door (`/v1/course/*`, `/v1/job/*`, `/v1/datasets/`,
//! `/v1/health/*`, `/v1/proxy/*`, `/v1/images/`).
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
//! - Tokens: any Gantry token (`App::authenticate`, the user's current state), sent as
//!   `Authorization: Bearer <token>` as the document says. No header → 401 "Authorization
//!   header is missing"; another scheme (`Token x`, a bare token) or no token → 401 "…is not
//!   Bearer Token format…"; a token that is not valid, revoked, or whose user was deleted,
//!   is pending or disabled → 403 "Invalid API token"; an expired one → 403 "Access token
//!   expired".
//! - `GET /v1/health/kubernetes` (no token) and `/kubernetesAuth` (token) answer the nodes
//!   and `Ready` / `NotReady` from the read model the workers' node watcher feeds (a door
//!   never calls Kubernetes); no node ever observed is 503 "List Node fail: …".
//! - Jobs (`/v1/job/*`, [`jobs`]): launch takes `{"course_id", "user"}`; `user` is required
//!   ("user field in request cannot be empty") and must be the caller unless an admin
//!   launches; a job is listed and deleted only by its user or an admin (403 otherwise). An
//!   unknown, deleted or non-UUID course is 400 "Course Id is not found"; a course dataset
//!   without its claim in the cluster is 400 "Query course id … required dataset fail: …"
//!   (nothing is appended, so no object is ever made for it); a GPU count no node has is
//!   accepted: the job stays `Pending` with its reason. Launch answers at once `ready:
//!   false, status: "Created"`; the list says `Created`, `Pending`, `Ready` or `Failed`, with
//!   `reason` (why it is `Pending` or `Failed`, else "") and `last_error` (the last
//!   Kubernetes error the workers are retrying, else ""). A job copies the course's name,
//!   introduction, level, image, GPUs and datasets at launch: what the list shows is what
//!   runs, even after the course changes. An unknown or non-UUID job id to delete is 404
//!   "Failed to find job {id} information : job not found".
//! - Endpoints (`service`): `jupyter` for port 8888, `digits` for 5000, else the port
//!   number; `http://<host>:<nodePort>`, the host being `GANTRY_JOBS_PUBLIC_HOST` or else the
//!   address of the node the pod runs on.
//! - `GET /v1/datasets/` lists the read model of the claims named `dataset-<name>` in the
//!   jobs namespace, without the prefix, as `{"label", "value"}` pairs.
//! - Images (`/v1/images/`): any token lists `{"label", "value"}` pairs; the document leaves
//!   add and delete blank, so: `POST` and `DELETE` with the body `{"image": "repo/name:tag"}`,
//!   admins only (403 otherwise), answering `{"error": false, "message": "Image … added
//!   successfully"}` (or `deleted`). Adding an image already there succeeds and records
//!   nothing; deleting one not in the catalogue is 404.
//! - The proxy (`/v1/proxy/*`, [`proxy`]) fronts Gantry's own OAuth2 provider (`crate::oauth`
//!   issues the codes). `token` takes `{"code"}` (and, if sent, the `client_id` and
//!   `redirect_uri` the code was issued for) and answers `token`, `refresh_token`,
//!   `token_type` and `expires_in`: access tokens live 3,600 s, refresh tokens 18,000 s (the
//!   edge platform's figures; one policy for every door's refreshable logins). A code is
//!   exchanged once; a code that is unknown, used or expired, or a refresh token that is
//!   invalid, expired or revoked, is the client's fault: 400 "Exchange Token fail:
//!   invalid_grant: …" (the document's 500 was its provider's failure passed on).
//! - A code is tied to the user who signed in: if they were deleted, disabled or set back to
//!   pending before the exchange, it gives no tokens. A code exchanged a second time is
//!   refused; the tokens of the first exchange stay valid (RFC 6749 suggests revoking them,
//!   but a revocation here is a logout of that user at every door).
//! - `refresh` answers a new access token and the refresh token it was given.
//! - `introspection` takes `{"token"}` (or `{"refresh_token"}`, as the document's sample
//!   sends) and answers RFC 7662 for access tokens: an inactive one (invalid, expired,
//!   revoked, its user gone, pending or disabled) and a refresh token are 200
//!   `{"active": false}`. For an active token, `role` is
//!   `admin` or `user` from the user's current state, `scope` is `read_write`, `client_id`
//!   the client its code was issued to (`null` for a token from another door's login), and
//!   `exp` the access token's expiry in seconds since the epoch.
//! - `logout` revokes every token of the token's user (`TokensRevoked`): every login, every
//!   door. The token is the body's `token`, else the `Authorization` header's; a token that
//!   is refused is answered as any course endpoint's (401/403).

mod catalogue;
mod datasets;
mod errors;
mod health;
mod images;
mod jobs;
mod proxy;

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
        .and(app.clone())
        .and(token.clone().map(Some))
        .and(body.clone())
        .then(health::database);
    let kubernetes = path!("v1" / "health" / "kubernetes")
        .and(warp::get())
        .and(ctx("/v1/health/kubernetes"))
        .and(app.clone())
        .and(warp::any().map(|| None))
        .then(health::kubernetes);
    let kubernetes_auth = path!("v1" / "health" / "kubernetesAuth")
        .and(warp::get())
        .and(ctx("/v1/health/kubernetesAuth"))
        .and(app.clone())
        .and(token.clone().map(Some))
        .then(health::kubernetes);
    let job_launch = path!("v1" / "job" / "launch")
        .and(warp::post())
        .and(ctx("/v1/job/launch"))
        .and(app.clone())
        .and(token.clone())
        .and(body.clone())
        .then(jobs::launch);
    let job_list = path!("v1" / "job" / "list")
        .and(warp::post())
        .and(ctx("/v1/job/list"))
        .and(app.clone())
        .and(token.clone())
        .and(body.clone())
        .then(jobs::list);
    let job_delete = path!("v1" / "job" / "delete" / String)
        .or(path!("v1" / "job" / "delete").map(String::new))
        .unify()
        .and(warp::delete())
        .and(ctx("/v1/job/delete/:id"))
        .and(app.clone())
        .and(token.clone())
        .then(jobs::delete);
    let dataset_list = path!("v1" / "datasets")
        .and(warp::get())
        .and(ctx("/v1/datasets"))
        .and(app.clone())
        .and(token.clone())
        .then(datasets::list);
    let image_list = path!("v1" / "images")
        .and(warp::get())
        .and(ctx("/v1/images"))
        .and(app.clone())
        .and(token.clone())
        .then(images::list);
    let image_add = path!("v1" / "images")
        .and(warp::post())
        .map(|| images::Change::Add)
        .and(ctx("/v1/images"))
        .and(app.clone())
        .and(token.clone())
        .and(body.clone())
        .then(images::change);
    let image_remove = path!("v1" / "images")
        .and(warp::delete())
        .map(|| images::Change::Remove)
        .and(ctx("/v1/images"))
        .and(app.clone())
        .and(token.clone())
        .and(body.clone())
        .then(images::change);
    let proxy_token = path!("v1" / "proxy" / "token")
        .and(warp::post())
        .and(ctx("/v1/proxy/token"))
        .and(app.clone())
        .and(body.clone())
        .then(proxy::token);
    let proxy_refresh = path!("v1" / "proxy" / "refresh")
        .and(warp::post())
        .and(ctx("/v1/proxy/refresh"))
        .and(app.clone())
        .and(body.clone())
        .then(proxy::refresh);
    let proxy_introspection = path!("v1" / "proxy" / "introspection")
        .and(warp::post())
        .and(ctx("/v1/proxy/introspection"))
        .and(app.clone())
        .and(body.clone())
        .then(proxy::introspection);
    let proxy_logout = path!("v1" / "proxy" / "logout")
        .and(warp::post())
        .and(ctx("/v1/proxy/logout"))
        .and(app)
        .and(token)
        .and(body)
        .then(proxy::logout);

    // Grouped and boxed: one long chain of `or`s makes the compiler's work grow with its
    // depth far faster than with its length.
    let catalogue = list_mine
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
        .boxed();
    let health = database
        .or(database_auth)
        .unify()
        .or(kubernetes)
        .unify()
        .or(kubernetes_auth)
        .unify()
        .boxed();
    let jobs = job_launch
        .or(job_list)
        .unify()
        .or(job_delete)
        .unify()
        .or(dataset_list)
        .unify()
        .boxed();
    let images = image_list
        .or(image_add)
        .unify()
        .or(image_remove)
        .unify()
        .boxed();
    let proxy = proxy_token
        .or(proxy_refresh)
        .unify()
        .or(proxy_introspection)
        .unify()
        .or(proxy_logout)
        .unify()
        .boxed();
    catalogue
        .or(health)
        .unify()
        .or(jobs)
        .unify()
        .or(images)
        .unify()
        .or(proxy)
        .unify()
        .boxed()
}
