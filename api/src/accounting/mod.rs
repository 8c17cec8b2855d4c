//! The Slurm allocation accounting door: accounts, accounting users and Slurm jobs in the
//! shapes of the accounting service's Django REST framework API, and the charge service the
//! Slurm epilogue sends to over NATS ([`charge`]).
//!
//! Decisions where its document is silent:
//! - Mount point: everything lives under `/accounting/` (`/accounting/`, `/accounting/jobs/`,
//!   `/accounting/users/`, `/accounting/accounts/`): `/users/` and `/` at the root are too
//!   general for a server with five doors. A centre's client puts the prefix in its base
//!   URL. Every path answers with and without its trailing slash.
//! - Authentication: `Authorization: Token <key>` or `Bearer <key>`, with a Gantry access
//!   token (the same at every door), or with an epilogue credential, a token an admin issues
//!   for one named Slurm cluster (`POST /accounting/credentials/ {"cluster": …}`). No or a bad
//!   credential is 401 `{"success": false, "error": "Not authorized."}` (also for `GET /`,
//!   the document's open question); a credential that may not do the request is 403 with the
//!   same body.
//! - Authorization: admins read and write everything; an epilogue credential reads
//!   everything and records jobs and sets their amounts for its own cluster only; any other
//!   user reads the accounts they are a member of, the jobs of those accounts, themselves
//!   and the users they share an account with (an item they may not read is "not found",
//!   as it would be were it missing), and writes nothing. The Gantry user of a username is
//!   the accounting user of the same username.
//! - Lists: DRF's `PageNumberPagination`, 100 per page, ordered by id; `next`/`previous` are
//!   absolute URLs built from the request's `Host` (and `X-Forwarded-Proto`), keeping its
//!   other query parameters; a page that is not a positive number or lies past the last page
//!   is DRF's 404 `{"detail": "Invalid page."}` (page 1 of an empty list is an empty list).
//!   Unknown query parameters are ignored, as django-filter ignores them; a filter value of
//!   the wrong type is a 400 naming the parameter. A date filter is a UTC day
//!   (`2017-07-18`) or the second of an ISO date and time (`2017-07-18T08:39:29Z`).
//! - Success bodies carry `"success": true` (the document's TODO); a successful POST answers
//!   200 with the item, as the document says. `updated` is the time of the last event that
//!   changed the item (the document's other TODO); an account's also moves with its
//!   membership, not with its charges (those are the jobs' updates).
//! - Missing items are 400 with the document's words (`Invalid job/Job not found.`); invalid
//!   bodies are 400 `Invalid job information.` (or `Invalid amount.` when the amount alone
//!   is at fault), with DRF's field messages beside `error`.
//! - Numbers: amounts are exact to 0.01 SU (more digits round half up) and at most
//!   2,147,483,647 SU; allocation and balance are integers (the balance rounded half up).
//!   `accountbalance` is read only: the balance is the allocation minus the charges. A body
//!   that sends it with the value it would have anyway is accepted, another value is a 400.
//! - Jobs: a job is (cluster, Slurm job id); `cluster` is a field beside the document's
//!   (default `slurm`; an epilogue credential's cluster is its own). `partition` and `qos`
//!   are integer ids (Gantry numbers each name it meets); a body may also give a name. POST
//!   of a job that is already recorded under the same user and account sets its amount (the
//!   charge sets the total); under others it is a 400. A job's `jobslurmid`, `cluster`,
//!   `userid` and `accountid` do not change after it is recorded.
//! - Overdraft: account types listed in `GANTRY_ACCOUNTING_REFUSE_OVERDRAFT` refuse new job
//!   records over HTTP once the balance is ≤ 0 (400 naming the account and its balance);
//!   the other types allow it and show `"overdrawn": true`. Charges of jobs that ran are
//!   always recorded.
//! - Membership: `users` of an account is writable by admins only (a list of user ids);
//!   a user also becomes a member when a job of theirs is recorded under the account.

mod accounts;
pub mod charge;
mod credentials;
mod errors;
mod fields;
mod jobs;
mod users;

use std::sync::Arc;

use command::{
    JetStreamStore, Repository, account::Account, slurm_job::SlurmJob, slurm_user::SlurmUser,
};
use serde_json::{Map, Value, json};
use warp::{
    Filter,
    filters::BoxedFilter,
    http::Method,
    reply::{Response, json, with_status},
};

use crate::{App, auth, body, context, context::RequestContext};

pub use errors::AccountingError;

/// The accounting aggregates and the overdraft policy.
pub struct Ledger {
    pub accounts: Repository<Account, JetStreamStore>,
    pub users: Repository<SlurmUser, JetStreamStore>,
    pub jobs: Repository<SlurmJob, JetStreamStore>,
    /// Account types that refuse new jobs over HTTP once their balance is ≤ 0.
    pub refuse_overdraft: Vec<String>,
}

impl Ledger {
    pub fn new(store: &JetStreamStore, refuse_overdraft: Vec<String>) -> Self {
        Self {
            accounts: Repository::new(store.clone()),
            users: Repository::new(store.clone()),
            jobs: Repository::new(store.clone()),
            refuse_overdraft,
        }
    }

    /// Whether accounts of `account_type` refuse new jobs once overdrawn.
    pub fn refuses_overdraft(&self, account_type: &str) -> bool {
        self.refuse_overdraft.iter().any(|t| t == account_type)
    }
}

/// Who asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin(String),
    /// A user who is not an admin; `user_id` is their accounting user's aggregate id.
    Member {
        username: String,
        user_id: String,
    },
    /// The epilogue credential of a Slurm cluster.
    Epilogue(String),
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        matches!(self, Caller::Admin(_))
    }

    /// Whether the caller reads everything.
    pub fn reads_all(&self) -> bool {
        !matches!(self, Caller::Member { .. })
    }

    /// The command context of this caller acting on `aggregate_id`.
    pub fn command(&self, ctx: &RequestContext, aggregate_id: &str) -> command::Context {
        match self {
            Caller::Admin(username) | Caller::Member { username, .. } => {
                ctx.command(username, aggregate_id)
            }
            Caller::Epilogue(cluster) => charge::epilogue_context(cluster, &ctx.request_id),
        }
    }
}

/// What a handler reads of a request besides its route.
pub struct Call {
    method: Method,
    host: Option<String>,
    proto: Option<String>,
    content_type: Option<String>,
    authorization: Option<String>,
    query: String,
    body: Result<bytes::Bytes, body::BodyError>,
}

impl Call {
    /// The caller behind the request's `Authorization`.
    async fn caller(&self, app: &App) -> Result<Caller, AccountingError> {
        let token = auth::token_of(self.authorization.as_deref())
            .map_err(|_| AccountingError::unauthorized())?;
        if token.starts_with(projection::epilogue_credentials::PREFIX) {
            return match projection::epilogue_credentials::cluster_of(&app.db.pool, token).await? {
                Some(cluster) => Ok(Caller::Epilogue(cluster)),
                None => Err(AccountingError::unauthorized()),
            };
        }
        let principal = app
            .authenticate(self.authorization.as_deref())
            .map_err(|_| AccountingError::unauthorized())?;
        Ok(if principal.admin {
            Caller::Admin(principal.username)
        } else {
            Caller::Member {
                user_id: events::accounting::slurm_user_id(&principal.username),
                username: principal.username,
            }
        })
    }

    /// The request's fields (JSON, form or multipart).
    fn fields(&self) -> Result<Map<String, Value>, AccountingError> {
        let body = match &self.body {
            Ok(body) => body,
            Err(body::BodyError::TooLarge) => return Err(body::BodyError::TooLarge.into()),
            Err(body::BodyError::Read(e)) => return Err(body::BodyError::Read(e.clone()).into()),
        };
        fields::body(self.content_type.as_deref(), body)
    }

    /// `http://<Host>/accounting/<path>`.
    fn url(&self, path: &str) -> String {
        let proto = self
            .proto
            .as_deref()
            .filter(|p| *p == "https" || *p == "http")
            .unwrap_or("http");
        let host = self.host.as_deref().unwrap_or("localhost");
        format!("{proto}://{host}/accounting/{path}")
    }

    /// The query's parameters, in order.
    fn params(&self) -> Vec<(String, String)> {
        serde_urlencoded::from_str(&self.query).unwrap_or_default()
    }
}

fn call() -> impl Filter<Extract = (Call,), Error = warp::Rejection> + Clone {
    warp::method()
        .and(context::header_text("host"))
        .and(context::header_text("x-forwarded-proto"))
        .and(context::header_text("content-type"))
        .and(auth::authorization())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(body::bytes())
        .map(
            |method, host, proto, content_type, authorization, query, body| Call {
                method,
                host,
                proto,
                content_type,
                authorization,
                query,
                body,
            },
        )
}

/// Which collection a route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Jobs,
    Users,
    Accounts,
}

const COLLECTION_ALLOW: &str = "GET, POST, HEAD, OPTIONS";
const ITEM_ALLOW: &str = "GET, PATCH, HEAD, OPTIONS";

/// Passes every request but a CORS preflight (an OPTIONS with
/// `Access-Control-Request-Method`), which the server's preflight answers; any other OPTIONS
/// is DRF's metadata request.
fn not_preflight() -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::method()
        .and(context::header_text("access-control-request-method"))
        .and_then(|method: Method, requested: Option<String>| async move {
            if method == Method::OPTIONS && requested.is_some() {
                Err(warp::reject::not_found())
            } else {
                Ok(())
            }
        })
        .untuple_one()
}

pub fn routes(app: Arc<App>) -> BoxedFilter<(Response,)> {
    let app = warp::any().map(move || app.clone());
    let ctx = |route| context::request_context("accounting", route);

    let root = warp::path!("accounting")
        .and(ctx("/accounting/"))
        .and(app.clone())
        .and(call())
        .then(
            |ctx: RequestContext, app: Arc<App>, call: Call| async move {
                ctx.answer(async { into_response(root(&app, &call).await) })
                    .await
            },
        );
    let collection = |name: &'static str, resource: Resource, route: &'static str| {
        warp::path("accounting")
            .and(warp::path(name))
            .and(warp::path::end())
            .and(ctx(route))
            .and(app.clone())
            .and(call())
            .then(
                move |ctx: RequestContext, app: Arc<App>, call: Call| async move {
                    ctx.answer(async {
                        into_response(dispatch(&ctx, &app, &call, resource, None).await)
                    })
                    .await
                },
            )
    };
    let item = |name: &'static str, resource: Resource, route: &'static str| {
        warp::path("accounting")
            .and(warp::path(name))
            .and(warp::path::param::<String>())
            .and(warp::path::end())
            .and(ctx(route))
            .and(app.clone())
            .and(call())
            .then(
                move |id: String, ctx: RequestContext, app: Arc<App>, call: Call| async move {
                    ctx.answer(async {
                        into_response(dispatch(&ctx, &app, &call, resource, Some(id)).await)
                    })
                    .await
                },
            )
    };
    let credentials = warp::path!("accounting" / "credentials")
        .and(ctx("/accounting/credentials/"))
        .and(app.clone())
        .and(call())
        .then(
            |ctx: RequestContext, app: Arc<App>, call: Call| async move {
                ctx.answer(async { into_response(credentials::issue(&ctx, &app, &call).await) })
                    .await
            },
        );
    let not_found =
        warp::path("accounting")
            .and(ctx("unmatched"))
            .then(|ctx: RequestContext| async move {
                ctx.answer(async { AccountingError::not_found() }).await
            });

    let routes = root
        .or(collection("jobs", Resource::Jobs, "/accounting/jobs/"))
        .unify()
        .or(item("jobs", Resource::Jobs, "/accounting/jobs/:id/"))
        .unify()
        .or(collection("users", Resource::Users, "/accounting/users/"))
        .unify()
        .or(item("users", Resource::Users, "/accounting/users/:id/"))
        .unify()
        .or(collection(
            "accounts",
            Resource::Accounts,
            "/accounting/accounts/",
        ))
        .unify()
        .or(item(
            "accounts",
            Resource::Accounts,
            "/accounting/accounts/:id/",
        ))
        .unify()
        .or(credentials)
        .unify()
        .or(not_found)
        .unify();
    not_preflight().and(routes).boxed()
}

fn into_response(result: Result<Response, AccountingError>) -> Response {
    use warp::Reply;
    result.unwrap_or_else(|e| e.into_response())
}

/// `GET /accounting/`: the links of the three collections.
async fn root(app: &App, call: &Call) -> Result<Response, AccountingError> {
    use warp::Reply;
    match call.method {
        Method::GET | Method::HEAD | Method::OPTIONS => {}
        ref other => {
            return Err(AccountingError::method_not_allowed(
                other,
                "GET, HEAD, OPTIONS",
            ));
        }
    }
    call.caller(app).await?;
    let body = if call.method == Method::OPTIONS {
        json!({
            "name": "Api Root",
            "description": "The links of the accounting collections.",
            "renders": ["application/json"],
            "parses": ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"],
        })
    } else {
        json!({
            "users": call.url("users/"),
            "jobs": call.url("jobs/"),
            "accounts": call.url("accounts/"),
        })
    };
    Ok(with_allow(
        json(&body).into_response(),
        "GET, HEAD, OPTIONS",
    ))
}

fn with_allow(mut response: Response, allow: &'static str) -> Response {
    response
        .headers_mut()
        .insert("allow", warp::http::HeaderValue::from_static(allow));
    response
}

/// Routes a request of a collection (`id` is `None`) or of an item to its handler.
async fn dispatch(
    ctx: &RequestContext,
    app: &App,
    call: &Call,
    resource: Resource,
    id: Option<String>,
) -> Result<Response, AccountingError> {
    use warp::Reply;
    let allow = if id.is_some() {
        ITEM_ALLOW
    } else {
        COLLECTION_ALLOW
    };
    let allowed = matches!(
        (&id, &call.method),
        (_, &Method::GET | &Method::HEAD | &Method::OPTIONS)
            | (None, &Method::POST)
            | (Some(_), &Method::PATCH)
    );
    if !allowed {
        return Err(AccountingError::method_not_allowed(&call.method, allow));
    }
    let caller = call.caller(app).await?;
    if call.method == Method::OPTIONS {
        let (noun, path, rules) = match resource {
            Resource::Jobs => ("Job", "jobs", fields::JOB),
            Resource::Users => ("User", "users", fields::USER),
            Resource::Accounts => ("Account", "accounts", fields::ACCOUNT),
        };
        let kind = if id.is_some() { "Instance" } else { "List" };
        let rules = fields::fields_for(rules, caller.is_admin());
        let body = fields::metadata(&format!("{noun} {kind}"), path, &rules, id.is_some());
        return Ok(with_allow(json(&body).into_response(), allow));
    }
    let number = match &id {
        None => None,
        Some(text) => Some(text.parse::<i64>().map_err(|_| not_found(resource))?),
    };
    let response = match (resource, number, &call.method) {
        (Resource::Jobs, None, &Method::POST) => jobs::create(ctx, app, call, &caller).await?,
        (Resource::Jobs, Some(n), &Method::PATCH) => {
            jobs::update(ctx, app, call, &caller, n).await?
        }
        (Resource::Jobs, Some(n), _) => jobs::get(app, &caller, n).await?,
        (Resource::Users, None, &Method::POST) => users::create(ctx, app, call, &caller).await?,
        (Resource::Users, Some(n), &Method::PATCH) => {
            users::update(ctx, app, call, &caller, n).await?
        }
        (Resource::Users, Some(n), _) => users::get(app, &caller, n).await?,
        (Resource::Accounts, None, &Method::POST) => {
            accounts::create(ctx, app, call, &caller).await?
        }
        (Resource::Accounts, Some(n), &Method::PATCH) => {
            accounts::update(ctx, app, call, &caller, n).await?
        }
        (Resource::Accounts, Some(n), _) => accounts::get(app, &caller, n).await?,
        (resource, None, _) => list(app, call, &caller, resource).await?,
    };
    Ok(with_allow(response.into_response(), allow))
}

/// The document's "not found" of each resource.
pub fn not_found(resource: Resource) -> AccountingError {
    AccountingError::bad_request(match resource {
        Resource::Jobs => "Invalid job/Job not found.",
        Resource::Users => "Invalid user/User not found.",
        Resource::Accounts => "Invalid account/Account not found.",
    })
}

/// `200` with `body` and `"success": true`.
fn success(mut body: Value) -> warp::reply::WithStatus<warp::reply::Json> {
    if let Value::Object(map) = &mut body {
        map.insert("success".into(), Value::Bool(true));
    }
    with_status(json(&body), warp::http::StatusCode::OK)
}

/// Only admins write, and epilogue credentials for jobs.
fn may_write(caller: &Caller, resource: Resource) -> Result<(), AccountingError> {
    match (caller, resource) {
        (Caller::Admin(_), _) | (Caller::Epilogue(_), Resource::Jobs) => Ok(()),
        _ => Err(AccountingError::forbidden()),
    }
}

const PAGE_SIZE: i64 = 100;

/// A page of a collection, with the filters of its query.
async fn list(
    app: &App,
    call: &Call,
    caller: &Caller,
    resource: Resource,
) -> Result<warp::reply::WithStatus<warp::reply::Json>, AccountingError> {
    use projection::accounting::{Condition as C, Listing};
    let params = call.params();
    let mut conditions = Vec::new();
    let mut errors = errors::FieldErrors::new();
    let mut page_text = None;
    for (key, value) in &params {
        let int = |errors: &mut errors::FieldErrors| match value.trim().parse::<i64>() {
            Ok(v) => Some(v),
            Err(_) => {
                errors::add(errors, key, "A valid integer is required.");
                None
            }
        };
        let date = |errors: &mut errors::FieldErrors| match fields::date_range(value.trim()) {
            Some(range) => Some(range),
            None => {
                errors::add(
                    errors,
                    key,
                    "Enter a valid date/time in ISO 8601 UTC (2017-07-18 or 2017-07-18T08:39:29Z).",
                );
                None
            }
        };
        let condition = match (resource, key.as_str()) {
            (_, "page") => {
                page_text = Some(value.clone());
                None
            }
            (_, "created") => date(&mut errors).map(|(f, t)| C::Between("created_at", f, t)),
            (_, "updated") => date(&mut errors).map(|(f, t)| C::Between("updated_at", f, t)),
            (Resource::Jobs, "slurmjobid") => int(&mut errors).map(|v| C::Int("slurm_job_id", v)),
            (Resource::Jobs, "userid") => int(&mut errors).map(C::JobOfUser),
            (Resource::Jobs, "accountid") => int(&mut errors).map(C::JobOfAccount),
            (Resource::Jobs, "status" | "jobstatus") => {
                int(&mut errors).map(|v| C::Int("status", v))
            }
            (Resource::Jobs, "partition") => int(&mut errors).map(|v| C::Int("partition", v)),
            (Resource::Jobs, "qos") => int(&mut errors).map(|v| C::Int("qos", v)),
            (Resource::Jobs, "cluster") => Some(C::Text("cluster", value.clone())),
            (Resource::Jobs, "amount") => match command::values::Su::parse_decimal(value) {
                Ok(su) if value.trim().parse::<f64>().is_ok_and(f64::is_finite) => {
                    Some(C::Int("amount_hundredths", su.hundredths()))
                }
                _ => {
                    errors::add(&mut errors, key, "A valid number is required.");
                    None
                }
            },
            (Resource::Jobs, "submitdate") => {
                date(&mut errors).map(|(f, t)| C::Between("submit", f, t))
            }
            (Resource::Jobs, "startdate") => {
                date(&mut errors).map(|(f, t)| C::Between("start_at", f, t))
            }
            (Resource::Jobs, "enddate") => {
                date(&mut errors).map(|(f, t)| C::Between("end_at", f, t))
            }
            (Resource::Users, "ldapid" | "ldapuid") => {
                int(&mut errors).map(|v| C::Text("ldap_uid", v.to_string()))
            }
            (Resource::Users, "accountid") => int(&mut errors).map(C::UserInAccount),
            (Resource::Users, "saviousername" | "username") => {
                Some(C::Text("username", value.clone()))
            }
            (Resource::Users, "email") => Some(C::Text("email", value.clone())),
            (Resource::Accounts, "userid") => int(&mut errors).map(C::AccountHasUser),
            (Resource::Accounts, "accountname") => Some(C::Text("name", value.clone())),
            (Resource::Accounts, "allocation" | "accountallocation") => {
                int(&mut errors).map(|v| C::Int("allocation", v))
            }
            (Resource::Accounts, "type") => Some(C::Text("account_type", value.clone())),
            _ => None,
        };
        conditions.extend(condition);
    }
    if !errors.is_empty() {
        return Err(AccountingError::fields("Invalid filter.", errors));
    }
    let page = match page_text.as_deref() {
        None => 1,
        Some(text) => match text.trim().parse::<i64>() {
            Ok(n) if n >= 1 => n,
            _ => return Err(AccountingError::invalid_page()),
        },
    };
    if let Caller::Member { user_id, .. } = caller {
        conditions.push(C::VisibleTo(user_id.clone()));
    }
    let (listing, path, id_field) = match resource {
        Resource::Jobs => (Listing::Jobs, "jobs/", "jobnumber"),
        Resource::Users => (Listing::Users, "users/", "userid"),
        Resource::Accounts => (Listing::Accounts, "accounts/", "accountid"),
    };
    let offset = (page - 1).saturating_mul(PAGE_SIZE);
    let (count, numbers) =
        projection::accounting::list(&app.db.pool, listing, &conditions, offset, PAGE_SIZE).await?;
    if page > 1 && numbers.is_empty() {
        return Err(AccountingError::invalid_page());
    }
    let link = |page: i64| {
        let mut pairs: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| k != "page")
            .cloned()
            .collect();
        if page > 1 {
            pairs.push(("page".into(), page.to_string()));
        }
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        let base = call.url(path);
        if query.is_empty() {
            base
        } else {
            format!("{base}?{query}")
        }
    };
    let next = (offset + PAGE_SIZE < count).then(|| link(page + 1));
    let previous = (page > 1).then(|| link(page - 1));
    Ok(success(json!({
        "count": count,
        "next": next,
        "previous": previous,
        "results": { id_field: numbers },
    })))
}
