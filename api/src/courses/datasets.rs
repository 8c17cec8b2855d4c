//! `GET /v1/datasets/`: the shared datasets, the claims named `dataset-<name>` in the jobs
//! namespace, shown without the prefix, from the read model the workers' PVC watcher feeds.

use std::sync::Arc;

use serde::Serialize;
use warp::Reply;
use warp::reply::{Response, json};

use super::errors::{CourseError, authorize};
use crate::{App, RequestContext};

/// A `{"label", "value"}` pair of the platform's select boxes.
#[derive(Serialize)]
pub struct Choice {
    pub label: String,
    pub value: String,
}

impl Choice {
    pub fn same(name: String) -> Self {
        Self {
            label: name.clone(),
            value: name,
        }
    }
}

pub async fn list(ctx: RequestContext, app: Arc<App>, token: Option<String>) -> Response {
    ctx.answer(async {
        authorize(&app, token)?;
        let names = projection::cluster::dataset_list(&app.db.pool)
            .await
            .map_err(|e| CourseError::query(e, "List Kubernetes default namespace PVC fail"))?;
        #[derive(Serialize)]
        struct Datasets {
            error: bool,
            datasets: Vec<Choice>,
        }
        Ok::<_, CourseError>(
            json(&Datasets {
                error: false,
                datasets: names.into_iter().map(Choice::same).collect(),
            })
            .into_response(),
        )
    })
    .await
}
