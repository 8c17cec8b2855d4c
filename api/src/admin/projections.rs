//! `GET /admin/projections` and `GET /admin/parked`.

use std::sync::Arc;

use chrono::SecondsFormat;
use serde_json::{Value, json};
use warp::reply::{Response, json};

use super::errors::{AdminError, admin};
use crate::{App, RequestContext};

/// Each read model's checkpoint, lag, parked count and halt, beside the log's last
/// sequence.
pub async fn list(ctx: RequestContext, app: Arc<App>, token: Option<String>) -> Response {
    ctx.answer(async {
        admin(&app, token)?;
        let last = app.store.last_sequence().await.map_err(|e| {
            tracing::warn!(error = %e, "event store unavailable");
            AdminError::unavailable()
        })?;
        let statuses = projection::status::projections(&app.db.pool)
            .await
            .map_err(AdminError::query)?;
        let projections: Vec<Value> = statuses
            .into_iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "checkpoint": s.checkpoint,
                    "lag": last.saturating_sub(s.checkpoint),
                    "updated_at": s.updated_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                    "parked": s.parked,
                    "halted": s.halted.map(|(seq, reason)| json!({"seq": seq, "reason": reason})),
                })
            })
            .collect();
        Ok::<_, AdminError>(json(
            &json!({ "last_seq": last, "projections": projections }),
        ))
    })
    .await
}

/// Every parked event, oldest first.
pub async fn parked(ctx: RequestContext, app: Arc<App>, token: Option<String>) -> Response {
    ctx.answer(async {
        admin(&app, token)?;
        let rows = projection::parked::parked(&app.db.pool)
            .await
            .map_err(AdminError::query)?;
        let parked: Vec<Value> = rows
            .into_iter()
            .map(|row| {
                let e = row.event;
                json!({
                    "consumer": e.consumer,
                    "seq": e.seq,
                    "aggregate": e.aggregate,
                    "aggregate_id": e.aggregate_id,
                    "type": e.event_type,
                    "error": e.error,
                    "parked_at": row.parked_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                })
            })
            .collect();
        Ok::<_, AdminError>(json(&json!({ "parked": parked })))
    })
    .await
}
