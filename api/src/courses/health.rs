//! `POST /v1/health/database` and `/v1/health/databaseAuth`: echo the message and list the
//! instance's tables, proving the database answers.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use warp::reply::{Response, json};

use super::errors::{CourseError, authorize, parse};
use crate::{
    App, RequestContext,
    body::{BodyError, null_as_default},
};

#[derive(Deserialize)]
struct Echo {
    #[serde(default, deserialize_with = "null_as_default")]
    message: String,
}

/// `token` is `None` for the open endpoint, `Some(header)` for the one that needs a token.
pub async fn database(
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<Option<String>>,
    body: Result<bytes::Bytes, BodyError>,
) -> Response {
    ctx.answer(async {
        if let Some(header) = token {
            authorize(&app, header)?;
        }
        let echo: Echo = parse(body)?;
        let tables = projection::health::tables(&app.db.pool, app.db.schema())
            .await
            .map_err(|e| CourseError::query(e, "Query all table name fail"))?;
        Ok::<_, CourseError>(json(
            &json!({ "error": false, "message": echo.message, "tables": tables }),
        ))
    })
    .await
}

/// `GET /v1/health/kubernetesAuth`: the token check of the node list. A door does not call
/// Kubernetes itself (the workers do), and no read model holds the nodes yet, so after the
/// token is accepted this answers 501 in the document's words for a failed node list.
pub async fn kubernetes_auth(
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
) -> Response {
    ctx.answer(async {
        authorize(&app, token)?;
        Err::<Response, _>(CourseError::new(
            warp::http::StatusCode::NOT_IMPLEMENTED,
            "List Node fail: the node list is not available yet",
        ))
    })
    .await
}
