//! Jobs: launch, list, delete (`/v1/job/*`). The door only appends events; `gantry work`
//! makes the cluster match them and reports back (`JobScheduled`, `JobPending`,
//! `JobReady`, `JobFailed`), which the list shows.

use std::sync::Arc;

use chrono::SecondsFormat;
use command::{
    CommandError, DomainError, course::Status as CourseStatus, job::JobCommand, values::Username,
};
use events::job::{Endpoint, JobLaunched};
use projection::jobs::{self, JobRow};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;
use warp::{
    Reply,
    http::StatusCode,
    reply::{Response, json},
};

use super::errors::{CourseError, authorize, parse};
use crate::{
    App, Principal, RequestContext,
    body::{BodyError, null_as_default},
};

type Body = Result<bytes::Bytes, BodyError>;

#[derive(Deserialize)]
struct LaunchRequest {
    #[serde(default, deserialize_with = "null_as_default")]
    course_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    user: String,
}

/// `POST /v1/job/launch` (`JobLaunched`): answers at once, before any Kubernetes object
/// exists. The course must exist and every dataset it mounts must have its claim in the
/// cluster (as the workers last saw it); a GPU count no node can hold is not refused here:
/// the job stays `Pending` and says why.
pub async fn launch(
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
) -> Response {
    ctx.answer(async {
        let caller = authorize(&app, token)?;
        let request: LaunchRequest = parse(body)?;
        if request.user.is_empty() {
            return Err(CourseError::bad_request(
                "user field in request cannot be empty",
            ));
        }
        let owner = Username::parse(request.user)?;
        // Said before anything is looked up, so another user learns nothing of the course;
        // the aggregate decides the same again.
        if caller.caller().may_act_as(owner.as_str()).is_err() {
            return Err(job_error(
                DomainError::Forbidden.into(),
                &format!("create deployment for user {owner} fail"),
            ));
        }
        let course_id = Uuid::parse_str(&request.course_id)
            .map_err(|_| CourseError::course_not_found())?
            .to_string();
        let course =
            app.courses.load(&course_id).await.map_err(|e| {
                CourseError::command(e, &format!("Query course id {course_id} fail"))
            })?;
        let details = match (course.status, course.details) {
            (CourseStatus::Active, Some(details)) => details,
            _ => return Err(CourseError::course_not_found()),
        };
        check_datasets(&app, &course_id, &details.datasets).await?;
        let launched = JobLaunched {
            course_id: course_id.clone(),
            owner: owner.to_string(),
            name: details.name,
            introduction: details.introduction,
            level: details.level,
            image: details.image,
            gpu: details.gpu,
            datasets: details.datasets,
        };
        let id = match ctx.idempotent_id(&caller.username) {
            Some(id) => id,
            None => {
                let id = Uuid::new_v4().to_string();
                app.jobs.assume_new(&id).await;
                id
            }
        };
        let context = format!("create deployment for course {{id = {course_id}}} fail");
        app.write(
            &app.jobs,
            &id,
            &JobCommand::Launch(launched, caller.caller()),
            &ctx.command(&caller.username, &id),
        )
        .await
        .map_err(|e| job_error(e, &context))?;
        Ok(json(&json!({
            "error": false,
            "job": { "job_id": id, "ready": false, "status": "Created" },
        }))
        .into_response())
    })
    .await
}

/// Every dataset of the course has its claim (`dataset-<name>`) in the jobs namespace, or
/// the launch would leave a pod that can never start.
async fn check_datasets(
    app: &App,
    course_id: &str,
    datasets: &[String],
) -> Result<(), CourseError> {
    if datasets.is_empty() {
        return Ok(());
    }
    let context = format!("Query course id {course_id} required dataset fail");
    let known = projection::cluster::dataset_list(&app.db.pool)
        .await
        .map_err(|e| CourseError::query(e, &context))?;
    match datasets.iter().find(|d| !known.contains(d)) {
        None => Ok(()),
        Some(missing) => Err(CourseError::bad_request(format!(
            "{context}: dataset {missing} has no volume (no PersistentVolumeClaim dataset-{missing})"
        ))),
    }
}

/// A job failure of the command path: the job's own words for not found and forbidden,
/// the course door's for the rest.
fn job_error(error: CommandError, context: &str) -> CourseError {
    match error {
        CommandError::Domain(DomainError::NotFound) => {
            CourseError::new(StatusCode::NOT_FOUND, format!("{context}: job not found"))
        }
        CommandError::Domain(DomainError::Forbidden) => CourseError::new(
            StatusCode::FORBIDDEN,
            format!("{context}: only the owner of this job or an admin may do this"),
        ),
        other => CourseError::command(other, context),
    }
}

/// A job as the document's list shows it, with the reason of a `Pending` or `Failed` and
/// the last Kubernetes error met for it.
#[derive(Serialize)]
struct JobView {
    id: Uuid,
    course_id: String,
    #[serde(rename = "startAt")]
    start_at: String,
    status: String,
    reason: String,
    last_error: String,
    name: String,
    introduction: String,
    image: String,
    gpu: i32,
    level: String,
    dataset: Vec<String>,
    service: Vec<Endpoint>,
}

impl From<JobRow> for JobView {
    fn from(row: JobRow) -> Self {
        Self {
            id: row.id,
            course_id: row.course_id,
            start_at: row.started_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            status: row.status,
            reason: row.reason,
            last_error: row.last_error,
            name: row.name,
            introduction: row.introduction,
            image: row.image,
            gpu: row.gpu,
            level: row.level,
            dataset: row.datasets,
            service: row.endpoints,
        }
    }
}

#[derive(Deserialize)]
struct UserQuery {
    #[serde(default, deserialize_with = "null_as_default")]
    user: String,
}

/// `POST /v1/job/list`: one user's jobs, to that user or an admin.
pub async fn list(
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
) -> Response {
    ctx.answer(async {
        let caller = authorize(&app, token)?;
        let query: UserQuery = parse(body)?;
        if query.user.is_empty() {
            return Err(CourseError::bad_request("Empty user name"));
        }
        let user = Username::parse(query.user)?;
        let context = format!("Query Job table for user {{{user}}} fail");
        may_see(&caller, user.as_str(), &context)?;
        let rows = jobs::job_list_by_owner(&app.db.pool, user.as_str())
            .await
            .map_err(|e| CourseError::query(e, &context))?;
        #[derive(Serialize)]
        struct Jobs {
            error: bool,
            jobs: Vec<JobView>,
        }
        Ok(json(&Jobs {
            error: false,
            jobs: rows.into_iter().map(JobView::from).collect(),
        })
        .into_response())
    })
    .await
}

fn may_see(caller: &Principal, user: &str, context: &str) -> Result<(), CourseError> {
    caller.caller().may_act_as(user).map_err(|_| {
        CourseError::new(
            StatusCode::FORBIDDEN,
            format!("{context}: only the user themself or an admin may do this"),
        )
    })
}

/// `DELETE /v1/job/delete/:id` (`JobDeleted`): the job leaves the list at once; the
/// workers remove its Deployment and Service.
pub async fn delete(
    id: String,
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
) -> Response {
    ctx.answer(async {
        let caller = authorize(&app, token)?;
        if id.is_empty() {
            return Err(CourseError::bad_request("Job Id is empty"));
        }
        let context = format!("Failed to find job {{{id}}} information ");
        let id = Uuid::parse_str(&id)
            .map_err(|_| job_error(DomainError::NotFound.into(), &context))?
            .to_string();
        app.write(
            &app.jobs,
            &id,
            &JobCommand::Delete(caller.caller()),
            &ctx.command(&caller.username, &id),
        )
        .await
        .map_err(|e| match e {
            CommandError::Domain(DomainError::Forbidden) => {
                job_error(e, &format!("Failed to delete job {{{id}}} information "))
            }
            other => job_error(other, &context),
        })?;
        Ok(
            json(
                &json!({ "error": false, "message": format!("job {id} is deleted successfully") }),
            )
            .into_response(),
        )
    })
    .await
}
