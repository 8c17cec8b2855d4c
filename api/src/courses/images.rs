//! `/v1/images/`: the catalogue of images offered for courses. Anyone signed in lists it;
//! an admin adds (`POST`, `ImageAdded`) and removes (`DELETE`, `ImageRemoved`) one image
//! at a time, named in the body: `{"image": "repo/name:tag"}`.

use std::sync::Arc;

use command::{CommandError, DomainError, images::ImagesCommand, values::ImageRef};
use events::images::CATALOGUE;
use serde::{Deserialize, Serialize};
use serde_json::json;
use warp::{
    Reply,
    http::StatusCode,
    reply::{Response, json},
};

use super::{
    datasets::Choice,
    errors::{CourseError, authorize, parse},
};
use crate::{
    App, RequestContext,
    body::{BodyError, null_as_default},
};

type Body = Result<bytes::Bytes, BodyError>;

pub async fn list(ctx: RequestContext, app: Arc<App>, token: Option<String>) -> Response {
    ctx.answer(async {
        authorize(&app, token)?;
        let images = projection::images::image_list(&app.db.pool)
            .await
            .map_err(|e| CourseError::query(e, "List images fail"))?;
        #[derive(Serialize)]
        struct Images {
            error: bool,
            images: Vec<Choice>,
        }
        Ok::<_, CourseError>(
            json(&Images {
                error: false,
                images: images.into_iter().map(Choice::same).collect(),
            })
            .into_response(),
        )
    })
    .await
}

#[derive(Deserialize)]
struct ImageRequest {
    #[serde(default, deserialize_with = "null_as_default")]
    image: String,
}

/// Which change of the catalogue a request asks for.
#[derive(Clone, Copy)]
pub enum Change {
    Add,
    Remove,
}

/// `POST /v1/images/` and `DELETE /v1/images/`.
pub async fn change(
    change: Change,
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Body,
) -> Response {
    ctx.answer(async {
        let caller = authorize(&app, token)?;
        let request: ImageRequest = parse(body)?;
        if request.image.is_empty() {
            return Err(CourseError::bad_request("Empty image name"));
        }
        let image = ImageRef::parse(request.image)?;
        let (command, context, done) = match change {
            Change::Add => (
                ImagesCommand::Add(image.clone(), caller.caller()),
                "Failed to add image",
                "added",
            ),
            Change::Remove => (
                ImagesCommand::Remove(image.clone(), caller.caller()),
                "Failed to delete image",
                "deleted",
            ),
        };
        app.write(
            &app.images,
            CATALOGUE,
            &command,
            &ctx.command(&caller.username, CATALOGUE),
        )
        .await
        .map_err(|e| match e {
            CommandError::Domain(DomainError::NotFound) => CourseError::new(
                StatusCode::NOT_FOUND,
                format!("{context}: image {image} is not in the catalogue"),
            ),
            CommandError::Domain(DomainError::Forbidden) => CourseError::new(
                StatusCode::FORBIDDEN,
                format!("{context}: only an admin may change the images"),
            ),
            other => CourseError::command(other, context),
        })?;
        Ok(json(
            &json!({ "error": false, "message": format!("Image {image} {done} successfully") }),
        )
        .into_response())
    })
    .await
}
