//! The course catalogue: list, create, update, delete, level, get, list all, search.
//! Each handler reads top to bottom as parse → command or query → answer.

use std::sync::Arc;

use chrono::SecondsFormat;
use command::{
    course::{CourseChanges, CourseCommand, NewCourse},
    values::{
        CourseName, Datasets, Description, GpuCount, ImageRef, InvalidValue, Level, Username,
    },
};
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
    App, Principal, RequestContext,
    body::{BodyError, null_as_default},
};

type Body = Result<bytes::Bytes, BodyError>;

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
        authorize(&app, token)?;
        let query: UserQuery = parse(body)?;
        if query.user.is_empty() {
            return Err(CourseError::bad_request("Empty user name"));
        }
        let user = Username::parse(query.user)?;
        let rows = courses::course_list_by_owner(&app.db.pool, user.as_str())
            .await
            .map_err(|e| CourseError::query(e, &format!("query user {{{user}}} course fail")))?;
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
struct NewCourseRequest {
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
    gpu: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    datasets: Vec<String>,
}

impl NewCourseRequest {
    /// The course to create: it belongs to `user`, or to the caller when `user` is empty;
    /// an empty image or level is none yet.
    fn into_command(self, caller: &Principal) -> Result<NewCourse, InvalidValue> {
        let owner = if self.user.is_empty() {
            caller.username.clone()
        } else {
            self.user
        };
        Ok(NewCourse {
            owner: Username::parse(owner)?,
            name: CourseName::parse(self.name)?,
            introduction: Description::parse(self.introduction)?,
            image: non_empty(self.image).map(ImageRef::parse).transpose()?,
            level: non_empty(self.level).map(Level::parse).transpose()?,
            gpu: GpuCount::parse(self.gpu)?,
            datasets: Datasets::parse(self.datasets)?,
        })
    }
}

fn non_empty(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

/// `POST /v1/course/create` (`CourseCreated`). With an `Idempotency-Key`, the course id is
/// derived from the key, so a repeated request meets the course the first one created.
pub async fn create(
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
) -> Response {
    ctx.answer(async {
        let caller = authorize(&app, token)?;
        let request: NewCourseRequest = parse(body)?;
        let new = request.into_command(&caller)?;
        let name = new.name.clone();
        let id = match ctx.idempotent_id(&caller.username) {
            Some(id) => id,
            None => {
                let id = Uuid::new_v4().to_string();
                app.courses.assume_new(&id).await;
                id
            }
        };
        app.write(
            &app.courses,
            &id,
            &CourseCommand::Create(new, caller.caller()),
            &ctx.command(&caller.username, &id),
        )
        .await
        .map_err(|e| CourseError::command(e, "Failed to create course information"))?;
        Ok::<_, CourseError>(message(format!("Course {name} created successfully")))
    })
    .await
}

#[derive(Deserialize)]
struct CourseChangesRequest {
    #[serde(default, deserialize_with = "null_as_default")]
    id: String,
    name: Option<String>,
    introduction: Option<String>,
    image: Option<String>,
    level: Option<String>,
    #[serde(alias = "GPU")]
    gpu: Option<u64>,
    datasets: Option<Vec<String>>,
}

impl CourseChangesRequest {
    /// The changes: only the fields given with a non-empty value (as the platform's gorm
    /// `Updates` did), except `datasets`, replaced whenever it is given.
    fn into_command(self) -> Result<CourseChanges, InvalidValue> {
        let given = |v: Option<String>| v.filter(|s| !s.is_empty());
        Ok(CourseChanges {
            name: given(self.name).map(CourseName::parse).transpose()?,
            introduction: given(self.introduction)
                .map(Description::parse)
                .transpose()?,
            image: given(self.image).map(ImageRef::parse).transpose()?,
            level: given(self.level).map(Level::parse).transpose()?,
            gpu: self
                .gpu
                .filter(|g| *g > 0)
                .map(GpuCount::parse)
                .transpose()?,
            datasets: self.datasets.map(Datasets::parse).transpose()?,
        })
    }
}

/// `PUT /v1/course/update` (`CourseUpdated`).
pub async fn update(
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
) -> Response {
    ctx.answer(async {
        let caller = authorize(&app, token)?;
        let request: CourseChangesRequest = parse(body)?;
        if request.id.is_empty() {
            return Err(CourseError::bad_request("Course id is empty"));
        }
        let id = course_id(&request.id)?;
        let changes = request.into_command()?;
        let context = format!("update course {{{id}}} information fail");
        let id = id.to_string();
        app.write(
            &app.courses,
            &id,
            &CourseCommand::Update(changes, caller.caller()),
            &ctx.command(&caller.username, &id),
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
        let caller = authorize(&app, token)?;
        if id.is_empty() {
            return Err(CourseError::bad_request("Empty course id"));
        }
        let id = course_id(&id)?;
        let context = format!("Failed to delete course {id} information ");
        let id = id.to_string();
        app.write(
            &app.courses,
            &id,
            &CourseCommand::Delete(caller.caller()),
            &ctx.command(&caller.username, &id),
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
        let level = Level::parse(level)?;
        let rows = courses::course_list_by_level(&app.db.pool, level.as_str())
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
        authorize(&app, token)?;
        if id.is_empty() {
            return Err(CourseError::bad_request("Empty course id"));
        }
        let id = course_id(&id)?;
        let row = courses::course_get(&app.db, id)
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
        // A name contains the query only if the query could be a name.
        let query = CourseName::parse(search.query)?;
        let rows = courses::course_search(&app.db.pool, query.as_str())
            .await
            .map_err(|e| {
                CourseError::query(
                    e,
                    &format!("search course on condition Name like % {} % fail", query),
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
