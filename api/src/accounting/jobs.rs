//! `/accounting/jobs/`: Slurm jobs, recorded and charged over HTTP (the second way in,
//! beside the epilogue's charge subject, with the same effect).

use command::{
    slurm_job::{NewSlurmJob, SetTotal, SlurmJobChanges, SlurmJobCommand},
    values::{ClusterName, SlurmName, su_number, su_rounded},
};
use projection::accounting::{JobRow, PARTITION, QOS};
use serde_json::Value;
use warp::reply::{Json, WithStatus};

use super::{
    Call, Caller, Resource,
    charge::set_total,
    errors::AccountingError,
    fields::{self, Parsed, Read, render_time},
    may_write, not_found,
};
use crate::{App, context::RequestContext};

const INVALID: &str = "Invalid job information.";
const NOT_FOUND: &str = "Invalid job/Job not found.";
/// The cluster of a job recorded over HTTP without one.
const DEFAULT_CLUSTER: &str = "slurm";

type Answer = Result<WithStatus<Json>, AccountingError>;

/// A job as the door answers it (`success` last, as on every answer of one object);
/// serialized straight from the row, since `GET /jobs/{id}/` is the door's hottest read.
#[derive(serde::Serialize)]
struct JobBody {
    jobnumber: i64,
    jobslurmid: i64,
    cluster: String,
    submitdate: String,
    startdate: Option<String>,
    enddate: Option<String>,
    userid: i64,
    accountid: i64,
    amount: Value,
    jobstatus: i32,
    partition: i32,
    qos: i32,
    created: String,
    updated: String,
    success: bool,
}

fn body(job: &JobRow) -> warp::reply::WithStatus<warp::reply::Json> {
    let body = JobBody {
        jobnumber: job.number,
        jobslurmid: job.slurm_job_id,
        cluster: job.cluster.clone(),
        submitdate: render_time(job.submit),
        startdate: job.start.map(render_time),
        enddate: job.end.map(render_time),
        userid: job.user_number,
        accountid: job.account_number,
        amount: su_number(job.amount_hundredths),
        jobstatus: job.status,
        partition: job.partition,
        qos: job.qos,
        created: render_time(job.created_at),
        updated: render_time(job.updated_at),
        success: true,
    };
    warp::reply::with_status(warp::reply::json(&body), warp::http::StatusCode::OK)
}

/// DRF's message for an id that names nothing.
fn no_such(id: i64) -> String {
    format!("Invalid pk \"{id}\" - object does not exist.")
}

/// The 400 of a body with field errors: `Invalid amount.` when the amount alone is wrong.
fn invalid(read: Read) -> AccountingError {
    let only_amount = read.errors.len() == 1 && read.errors.contains_key("amount");
    AccountingError::fields(
        if only_amount {
            "Invalid amount."
        } else {
            INVALID
        },
        read.errors,
    )
}

/// The name a partition or QOS field gives: a name, or the name of a known id.
async fn name(
    app: &App,
    read: &mut Read,
    field: &'static str,
    kind: &str,
) -> Result<Option<SlurmName>, AccountingError> {
    let text = match read.parsed.get(field).cloned() {
        Some(Parsed::Int(id)) => {
            let id32 = i32::try_from(id).unwrap_or(i32::MAX);
            match projection::accounting::name_of(&app.db.pool, kind, id32).await? {
                Some(name) => name,
                None => {
                    read.error(field, no_such(id));
                    return Ok(None);
                }
            }
        }
        Some(Parsed::Name(name)) => name,
        _ => return Ok(None),
    };
    match SlurmName::parse(text) {
        Ok(name) => Ok(Some(name)),
        Err(e) => {
            read.error(field, format!("This field {}.", e.problem));
            Ok(None)
        }
    }
}

/// The cluster of a new job: the credential's own, or the body's (default `slurm`).
fn cluster(read: &mut Read, caller: &Caller) -> Option<ClusterName> {
    let given = read.text("cluster").map(str::to_string);
    let cluster = match (caller, given) {
        (Caller::Epilogue(own), Some(given)) if *own != given => {
            read.error(
                "cluster",
                format!("This credential records jobs of cluster {own} only."),
            );
            return None;
        }
        (Caller::Epilogue(own), _) => own.clone(),
        (_, Some(given)) => given,
        (_, None) => DEFAULT_CLUSTER.to_string(),
    };
    match ClusterName::parse(cluster) {
        Ok(c) => Some(c),
        Err(e) => {
            read.error("cluster", format!("This field {}.", e.problem));
            None
        }
    }
}

pub async fn create(ctx: &RequestContext, app: &App, call: &Call, caller: &Caller) -> Answer {
    may_write(caller, Resource::Jobs)?;
    let mut read = fields::read(fields::JOB, call.fields()?, false);
    let cluster = cluster(&mut read, caller);
    let partition = name(app, &mut read, "partition", PARTITION).await?;
    let qos = name(app, &mut read, "qos", QOS).await?;
    let user = match read.int("userid") {
        Some(n) => {
            let found = projection::accounting::users_by_numbers(&app.db.pool, &[n]).await?;
            let user = found.get(&n).cloned();
            if user.is_none() {
                read.error("userid", no_such(n));
            }
            user
        }
        None => None,
    };
    let account = match read.int("accountid") {
        Some(n) => {
            let account = projection::accounting::account_by_number(&app.db.pool, n).await?;
            if account.is_none() {
                read.error("accountid", no_such(n));
            }
            account
        }
        None => None,
    };
    let status = read.int("jobstatus").and_then(|s| i32::try_from(s).ok());
    let (
        Some(cluster),
        Some(partition),
        Some(qos),
        Some(user_id),
        Some(account),
        Some(status),
        Some(slurm_job_id),
        Some(submit),
        Some(amount),
    ) = (
        cluster,
        partition,
        qos,
        user,
        account,
        status,
        read.int("jobslurmid"),
        read.time("submitdate"),
        read.amount(),
    )
    else {
        return Err(invalid(read));
    };
    if !read.errors.is_empty() {
        return Err(invalid(read));
    }
    if app.accounting.refuses_overdraft(&account.account_type) && account.balance_hundredths <= 0 {
        return Err(AccountingError::bad_request(format!(
            "Account {} has a balance of {} SU and takes no new jobs.",
            account.name,
            su_rounded(account.balance_hundredths)
        )));
    }
    let job_id = events::accounting::slurm_job_id(cluster.as_str(), slurm_job_id);
    let new = NewSlurmJob {
        cluster,
        slurm_job_id,
        user_id,
        account_id: account.account_id.clone(),
        submit,
        start: read.time("startdate"),
        end: read.time("enddate"),
        status,
        partition,
        qos,
        cpus: 0,
        gpus: 0,
        nodes: 0,
    };
    let set = SetTotal {
        total: amount,
        account_id: Some(account.account_id),
        reason: "http",
    };
    set_total(app, &job_id, Some(&new), set, &caller.command(ctx, &job_id))
        .await
        .map_err(|e| AccountingError::command(e, INVALID, NOT_FOUND))?;
    let job = projection::accounting::job_by_id(&app.db, &job_id)
        .await?
        .ok_or_else(|| AccountingError::unavailable("the job is not in the read model yet"))?;
    Ok(body(&job))
}

pub async fn update(
    ctx: &RequestContext,
    app: &App,
    call: &Call,
    caller: &Caller,
    number: i64,
) -> Answer {
    may_write(caller, Resource::Jobs)?;
    let job = projection::accounting::job_by_number(&app.db, number)
        .await?
        .ok_or_else(|| not_found(Resource::Jobs))?;
    if let Caller::Epilogue(own) = caller
        && *own != job.cluster
    {
        return Err(AccountingError::forbidden());
    }
    let mut read = fields::read(fields::JOB, call.fields()?, true);
    let fixed: [(&str, Option<Value>, Value); 4] = [
        (
            "jobslurmid",
            read.int("jobslurmid").map(Value::from),
            job.slurm_job_id.into(),
        ),
        (
            "userid",
            read.int("userid").map(Value::from),
            job.user_number.into(),
        ),
        (
            "accountid",
            read.int("accountid").map(Value::from),
            job.account_number.into(),
        ),
        (
            "cluster",
            read.text("cluster").map(Value::from),
            job.cluster.clone().into(),
        ),
    ];
    for (field, given, current) in fixed {
        if given.is_some_and(|g| g != current) {
            read.error(
                field,
                "This field cannot be changed once the job is recorded.",
            );
        }
    }
    let partition = name(app, &mut read, "partition", PARTITION).await?;
    let qos = name(app, &mut read, "qos", QOS).await?;
    if !read.errors.is_empty() {
        return Err(invalid(read));
    }
    let date = |read: &Read, field: &str| read.time(field);
    let changes = SlurmJobChanges {
        submit: date(&read, "submitdate"),
        start: date(&read, "startdate"),
        end: date(&read, "enddate"),
        status: read.int("jobstatus").and_then(|s| i32::try_from(s).ok()),
        partition,
        qos,
    };
    let command_ctx = caller.command(ctx, &job.job_id);
    if changes != SlurmJobChanges::default() {
        app.write(
            &app.accounting.jobs,
            &job.job_id,
            &SlurmJobCommand::Update(changes),
            &command_ctx,
        )
        .await
        .map_err(|e| AccountingError::command(e, INVALID, NOT_FOUND))?;
    }
    if let Some(amount) = read.amount() {
        let set = SetTotal {
            total: amount,
            account_id: None,
            reason: "http",
        };
        set_total(app, &job.job_id, None, set, &command_ctx)
            .await
            .map_err(|e| AccountingError::command(e, INVALID, NOT_FOUND))?;
    }
    let job = projection::accounting::job_by_id(&app.db, &job.job_id)
        .await?
        .ok_or_else(|| not_found(Resource::Jobs))?;
    Ok(body(&job))
}

pub async fn get(app: &App, caller: &Caller, number: i64) -> Answer {
    let job = projection::accounting::job_by_number(&app.db, number)
        .await?
        .ok_or_else(|| not_found(Resource::Jobs))?;
    if let Caller::Member { user_id, .. } = caller
        && !projection::accounting::is_member(&app.db.pool, &job.account_id, user_id).await?
    {
        return Err(not_found(Resource::Jobs));
    }
    Ok(body(&job))
}
