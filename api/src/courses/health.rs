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

/// `GET /v1/health/kubernetes` and `/v1/health/kubernetesAuth` (`token` is `None` for the
/// open one): the nodes and whether each is Ready, from the read model the workers' node
/// watcher feeds. A door does not call Kubernetes itself; when no node was ever observed
/// (no `gantry work` with a cluster), the list is not known: 503 "List Node fail: …".
pub async fn kubernetes(
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<Option<String>>,
) -> Response {
    ctx.answer(async {
        if let Some(header) = token {
            authorize(&app, header)?;
        }
        let nodes = projection::cluster::node_list(&app.db.pool)
            .await
            .map_err(|e| CourseError::query(e, "List Node fail"))?;
        if nodes.is_empty() {
            return Err(CourseError::new(
                warp::http::StatusCode::SERVICE_UNAVAILABLE,
                "List Node fail: no node of the cluster has been observed yet",
            ));
        }
        let nodes: Vec<_> = nodes
            .into_iter()
            .map(
                |n| json!({ "name": n.name, "status": if n.ready { "Ready" } else { "NotReady" } }),
            )
            .collect();
        Ok(json(&json!({ "error": false, "message": nodes })))
    })
    .await
}
