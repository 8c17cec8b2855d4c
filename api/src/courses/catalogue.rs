//! The course catalogue: list, create, update, delete, level, get, list all, search.
//! Each handler reads top to bottom as parse → command or query → answer.

use std::sync::Arc;

use chrono::SecondsFormat;
use command::course::CourseCommand;
use events::course::{CourseCreated, CourseUpdated};
use projection::courses::{self, CourseRow};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;
use warp::{
    Reply,
    reply::{Response, json},
};

use super::errors::{CourseError, authorize, parse};
use crate::{
    App, RequestContext,
    body::{BodyError, null_as_default},
};

type Body = Result<bytes::Bytes, BodyError>;

const MAX_NAME: usize = 256;
const MAX_TEXT: usize = 64 * 1024;
const MAX_IMAGE: usize = 512;
const MAX_LEVEL: usize = 64;
const MAX_DATASETS: usize = 64;
const MAX_DATASET: usize = 253;
const MAX_GPU: u32 = 64;

/// A course as the document shows it.
#[derive(Serialize)]
struct CourseView {
    id: Uuid,
    #[serde(rename = "createAt")]
    create_at: String,
    name: String,
    introduction: String,
    image: String,
    gpu: i32,
    level: String,
    datasets: Vec<String>,
}

impl From<CourseRow> for CourseView {
    fn from(row: CourseRow) -> Self {
        Self {
            id: row.id,
            create_at: row.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            name: row.name,
            introduction: row.introduction,
            image: row.image,
            gpu: row.gpu,
            level: row.level,
            datasets: row.datasets,
        }
    }
}

/// `{"error": false, "courses": [...]}`, serialized straight from the rows.
fn courses_answer(rows: Vec<CourseRow>) -> Response {
    #[derive(Serialize)]
    struct Courses {
        error: bool,
        courses: Vec<CourseView>,
    }
    let courses = rows.into_iter().map(CourseView::from).collect();
    json(&Courses {
        error: false,
        courses,
    })
    .into_response()
}

/// `{"error": false, "course": {...}}`.
fn course_answer(row: CourseRow) -> Response {
    #[derive(Serialize)]
    struct Course {
        error: bool,
        course: CourseView,
    }
    json(&Course {
        error: false,
        course: CourseView::from(row),
    })
    .into_response()
}

fn message(text: String) -> Response {
    json(&json!({ "error": false, "message": text })).into_response()
}

#[derive(Deserialize)]
struct UserQuery {
    #[serde(default, deserialize_with = "null_as_default")]
    user: String,
}

/// `POST /v1/course/list`: one user's courses.
pub async fn list_mine(
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
) -> Response {
    ctx.answer(async {
        authorize(&app.tokens, token)?;
        let query: UserQuery = parse(body)?;
        if query.user.is_empty() {
            return Err(CourseError::bad_request("Empty user name"));
        }
        let rows = courses::course_list_by_owner(&app.db.pool, &query.user)
            .await
            .map_err(|e| {
                CourseError::query(e, &format!("query user {{{}}} course fail", query.user))
            })?;
        Ok(courses_answer(rows))
    })
    .await
}

/// `GET /v1/course/list`: every course.
pub async fn list_all(ctx: RequestContext, app: Arc<App>) -> Response {
    ctx.answer(async {
        let rows = courses::course_list(&app.db.pool)
            .await
            .map_err(|e| CourseError::query(e, "query all course fail"))?;
        Ok::<_, CourseError>(courses_answer(rows))
    })
    .await
}

#[derive(Deserialize)]
struct NewCourse {
    #[serde(default, deserialize_with = "null_as_default")]
    user: String,
    #[serde(default, deserialize_with = "null_as_default")]
    name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    introduction: String,
    #[serde(default, deserialize_with = "null_as_default")]
    image: String,
    #[serde(default, deserialize_with = "null_as_default")]
    level: String,
    #[serde(default, alias = "GPU", deserialize_with = "null_as_default")]
    gpu: u32,
    #[serde(default, deserialize_with = "null_as_default")]
    datasets: Vec<String>,
}

/// `POST /v1/course/create` (`CourseCreated`). The course belongs to `user`, or to the
/// caller when `user` is empty. With an `Idempotency-Key`, the course id is derived from the
/// key, so a repeated request meets the course the first one created.
pub async fn create(
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
) -> Response {
    ctx.answer(async {
        let caller = authorize(&app.tokens, token)?;
        let new: NewCourse = parse(body)?;
        let owner = if new.user.is_empty() {
            caller.username.clone()
        } else {
            new.user
        };
        check_length("user", &owner, MAX_NAME)?;
        check_text(&new.name, &new.introduction, &new.image, &new.level)?;
        check_required("name", &new.name)?;
        check_gpu(new.gpu)?;
        check_datasets(&new.datasets)?;
        let command = CourseCommand::Create(CourseCreated {
            owner,
            name: new.name.clone(),
            introduction: new.introduction,
            image: new.image,
            level: new.level,
            gpu: new.gpu,
            datasets: new.datasets,
        });
        let id = match ctx.scoped_idempotency_key(&caller.username) {
            Some(id) => id,
            None => {
                let id = Uuid::new_v4().to_string();
                app.courses.assume_new(&id).await;
                id
            }
        };
        app.write(&app.courses, &id, &command, &ctx.command(&caller.username))
            .await
            .map_err(|e| CourseError::command(e, "Failed to create course information"))?;
        Ok::<_, CourseError>(message(format!("Course {} created successfully", new.name)))
    })
    .await
}

#[derive(Deserialize)]
struct CourseChanges {
    #[serde(default, deserialize_with = "null_as_default")]
    id: String,
    name: Option<String>,
    introduction: Option<String>,
    image: Option<String>,
    level: Option<String>,
    #[serde(alias = "GPU")]
    gpu: Option<u32>,
    datasets: Option<Vec<String>>,
}

/// `PUT /v1/course/update` (`CourseUpdated`).
pub async fn update(
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
) -> Response {
    ctx.answer(async {
        let caller = authorize(&app.tokens, token)?;
        let changes: CourseChanges = parse(body)?;
        if changes.id.is_empty() {
            return Err(CourseError::bad_request("Course id is empty"));
        }
        let id = course_id(&changes.id)?;
        let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
        let update = CourseUpdated {
            name: non_empty(changes.name),
            introduction: non_empty(changes.introduction),
            image: non_empty(changes.image),
            level: non_empty(changes.level),
            gpu: changes.gpu.filter(|g| *g > 0),
            datasets: changes.datasets,
        };
        check_text(
            update.name.as_deref().unwrap_or_default(),
            update.introduction.as_deref().unwrap_or_default(),
            update.image.as_deref().unwrap_or_default(),
            update.level.as_deref().unwrap_or_default(),
        )?;
        check_gpu(update.gpu.unwrap_or_default())?;
        check_datasets(update.datasets.as_deref().unwrap_or_default())?;
        let context = format!("update course {{{id}}} information fail");
        app.write(
            &app.courses,
            &id.to_string(),
            &CourseCommand::Update(update),
            &ctx.command(&caller.username),
        )
        .await
        .map_err(|e| CourseError::command(e, &context))?;
        Ok(message(format!("Course {id} updated successfully")))
    })
    .await
}

/// `DELETE /v1/course/delete/:id` (`CourseDeleted`).
pub async fn delete(
    id: String,
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
) -> Response {
    ctx.answer(async {
        let caller = authorize(&app.tokens, token)?;
        if id.is_empty() {
            return Err(CourseError::bad_request("Empty course id"));
        }
        let id = course_id(&id)?;
        let context = format!("Failed to delete course {id} information ");
        app.write(
            &app.courses,
            &id.to_string(),
            &CourseCommand::Delete,
            &ctx.command(&caller.username),
        )
        .await
        .map_err(|e| CourseError::command(e, &context))?;
        Ok(message(format!(
            "Course {id} is deleted successfully, associated jobs are also deleted"
        )))
    })
    .await
}

/// `GET /v1/course/level/:level`.
pub async fn list_level(level: String, ctx: RequestContext, app: Arc<App>) -> Response {
    ctx.answer(async {
        if level.is_empty() {
            return Err(CourseError::bad_request("empty level string"));
        }
        let rows = courses::course_list_by_level(&app.db.pool, &level)
            .await
            .map_err(|e| CourseError::query(e, &format!("query {level} level course fail")))?;
        Ok(courses_answer(rows))
    })
    .await
}

/// `GET /v1/course/get/:id`.
pub async fn get(
    id: String,
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
) -> Response {
    ctx.answer(async {
        authorize(&app.tokens, token)?;
        if id.is_empty() {
            return Err(CourseError::bad_request("Empty course id"));
        }
        let id = course_id(&id)?;
        let row = courses::course_get(&app.db.pool, id)
            .await
            .map_err(|e| CourseError::query(e, &format!("Query courses {{{id}}} fail")))?
            .ok_or_else(CourseError::course_not_found)?;
        Ok(course_answer(row))
    })
    .await
}

#[derive(Deserialize)]
struct Search {
    #[serde(default, deserialize_with = "null_as_default")]
    query: String,
}

/// `POST /v1/course/search`: courses whose name contains the query.
pub async fn search(ctx: RequestContext, app: Arc<App>, body: Body) -> Response {
    ctx.answer(async {
        let search: Search = parse(body)?;
        if search.query.is_empty() {
            return Err(CourseError::bad_request("Empty query condition"));
        }
        let rows = courses::course_search(&app.db.pool, &search.query)
            .await
            .map_err(|e| {
                CourseError::query(
                    e,
                    &format!(
                        "search course on condition Name like % {} % fail",
                        search.query
                    ),
                )
            })?;
        Ok(courses_answer(rows))
    })
    .await
}

/// A course id from a path or body: anything that is not a UUID names no course.
fn course_id(raw: &str) -> Result<Uuid, CourseError> {
    Uuid::parse_str(raw).map_err(|_| CourseError::course_not_found())
}

fn check_length(field: &str, value: &str, max: usize) -> Result<(), CourseError> {
    if value.chars().count() > max {
        return Err(CourseError::parse(format!(
            "{field} is longer than {max} characters"
        )));
    }
    Ok(())
}

fn check_required(field: &str, value: &str) -> Result<(), CourseError> {
    if value.trim().is_empty() {
        return Err(CourseError::parse(format!("{field} is empty")));
    }
    Ok(())
}

fn check_text(name: &str, introduction: &str, image: &str, level: &str) -> Result<(), CourseError> {
    check_length("name", name, MAX_NAME)?;
    check_length("introduction", introduction, MAX_TEXT)?;
    check_length("image", image, MAX_IMAGE)?;
    check_length("level", level, MAX_LEVEL)
}

fn check_gpu(gpu: u32) -> Result<(), CourseError> {
    if gpu > MAX_GPU {
        return Err(CourseError::parse(format!("GPU must be at most {MAX_GPU}")));
    }
    Ok(())
}

fn check_datasets(datasets: &[String]) -> Result<(), CourseError> {
    if datasets.len() > MAX_DATASETS {
        return Err(CourseError::parse(format!(
            "at most {MAX_DATASETS} datasets"
        )));
    }
    datasets
        .iter()
        .try_for_each(|d| check_length("dataset", d, MAX_DATASET))
}
