//! `GET /admin/projections`, `POST /admin/projections/rebuild` and `GET /admin/parked`.

use std::sync::Arc;

use chrono::SecondsFormat;
use serde_json::{Value, json};
use warp::reply::{Response, json};

use projection::{
    rebuild::{self, RebuildError, RebuildStatus},
    replay::Source,
};
use serde::Deserialize;
use tracing::Instrument;
use warp::{Reply, http::StatusCode};

use super::errors::{AdminError, admin};
use crate::{App, RequestContext};

/// The rebuild of one read model as `GET /admin/projections` shows it.
fn rebuild_json(rebuild: Option<&RebuildStatus>) -> Value {
    let time = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    match rebuild {
        None => json!({"status": "idle", "applied": 0, "target": 0, "started_at": null,
                       "finished_at": null, "outcome": null, "error": null}),
        Some(r) => json!({
            "status": if r.running { "rebuilding" } else { "idle" },
            "applied": r.applied,
            "target": r.target,
            "started_at": time(r.started_at),
            "finished_at": r.finished_at.map(time),
            "outcome": r.outcome,
            "error": r.error,
        }),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RebuildRequest {
    projection: Option<String>,
}

/// Starts rebuilding one read model, or all of them, in the background: 202 once its lock
/// is held, 409 while another rebuild of it runs anywhere in the instance.
pub async fn rebuild(
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    body: Result<bytes::Bytes, crate::body::BodyError>,
) -> Response {
    ctx.answer(async {
        admin(&app, token)?;
        let body = body.map_err(|e| AdminError::bad_request(e.to_string()))?;
        let request: RebuildRequest = if body.iter().all(u8::is_ascii_whitespace) {
            RebuildRequest::default()
        } else {
            serde_json::from_slice(&body).map_err(|e| {
                AdminError::bad_request(format!(
                    "the body must be {{\"projection\": \"<name>\"|\"all\"}}: {e}"
                ))
            })?
        };
        let name = request.projection.unwrap_or_else(|| "all".to_string());
        let picked = rebuild::pick(projection::registry::registered(), &name).map_err(refusal)?;
        let names: Vec<&str> = picked.iter().map(|p| p.name()).collect();
        let source = Source::new(
            app.db.clone(),
            app.store.stream().clone(),
            app.store.instance(),
        );
        let claimed = rebuild::claim(&source, picked.clone())
            .await
            .map_err(refusal)?;
        tokio::spawn(
            async move {
                if let Err(e) = claimed.run().await {
                    tracing::error!(error = %e, "rebuild ended without a swap");
                }
            }
            .instrument(tracing::Span::current()),
        );
        Ok::<_, AdminError>(
            warp::reply::with_status(json(&json!({ "rebuilding": names })), StatusCode::ACCEPTED)
                .into_response(),
        )
    })
    .await
}

fn refusal(e: RebuildError) -> AdminError {
    match e {
        RebuildError::Unknown(_) => AdminError::bad_request(e.to_string()),
        RebuildError::Busy(_) => AdminError::conflict(e.to_string()),
        RebuildError::Replay(e) => {
            tracing::warn!(error = %e, "rebuild could not start");
            AdminError::unavailable()
        }
    }
}

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
        let rebuilds = rebuild::statuses(&app.db.pool, app.db.schema())
            .await
            .map_err(AdminError::query)?;
        let projections: Vec<Value> = statuses
            .into_iter()
            .map(|s| {
                let rebuild = rebuilds.iter().find(|r| r.name == s.name);
                json!({
                    "name": s.name,
                    "checkpoint": s.checkpoint,
                    "lag": last.saturating_sub(s.checkpoint),
                    "updated_at": s.updated_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                    "parked": s.parked,
                    "halted": s.halted.map(|(seq, reason)| json!({"seq": seq, "reason": reason})),
                    "rebuild": rebuild_json(rebuild),
                })
            })
            .collect();
        Ok::<_, AdminError>(json(
            &json!({ "stream_last_seq": last, "last_seq": last, "projections": projections }),
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
