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
//! - Tokens: any Gantry token (`App::authenticate`, the user's current state), sent as
//!   `Authorization: Bearer <token>` as the document says. No header → 401 "Authorization
//!   header is missing"; another scheme (`Token x`, a bare token) or no token → 401 "…is not
//!   Bearer Token format…"; a token that is not valid, revoked, or whose user was deleted,
//!   is pending or disabled → 403 "Invalid API token"; an expired one → 403 "Access token
//!   expired".
//! - `GET /v1/health/kubernetesAuth` checks the token, then answers 501 "List Node fail: …":
//!   a door never calls Kubernetes, and no read model holds the nodes yet.
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
mod errors;
mod health;
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
    let kubernetes_auth = path!("v1" / "health" / "kubernetesAuth")
        .and(warp::get())
        .and(ctx("/v1/health/kubernetesAuth"))
        .and(app.clone())
        .and(token.clone())
        .then(health::kubernetes_auth);
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
        .or(kubernetes_auth)
        .unify()
        .or(proxy_token)
        .unify()
        .or(proxy_refresh)
        .unify()
        .or(proxy_introspection)
        .unify()
        .or(proxy_logout)
        .unify()
        .boxed()
}
