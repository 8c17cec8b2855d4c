//! `GET /admin/projections`, `POST /admin/projections/rebuild`, `GET /admin/parked` and
//! `POST /admin/parked/{seq}/retry`.

use std::sync::Arc;

use chrono::SecondsFormat;
use serde_json::{Value, json};
use warp::reply::{Response, json};

use projection::{
    rebuild::{self, RebuildError, RebuildStatus},
    replay::Source,
    retry::{Retried, RetryError},
};
use serde::{Deserialize, de::DeserializeOwned};
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

/// A JSON body that may be left out (empty or blank: the defaults); `shape` says what it
/// must look like when it is not.
fn optional_body<T: DeserializeOwned + Default>(
    body: Result<bytes::Bytes, crate::body::BodyError>,
    shape: &str,
) -> Result<T, AdminError> {
    let body = body.map_err(|e| AdminError::bad_request(e.to_string()))?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&body)
        .map_err(|e| AdminError::bad_request(format!("the body must be {shape}: {e}")))
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
        let request: RebuildRequest = optional_body(body, r#"{"projection": "<name>"|"all"}"#)?;
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryRequest {
    consumer: Option<String>,
}

/// Retries the event parked at `seq` (for one consumer, or for every one that parked it):
/// 200 with each consumer's outcome (`applied`, `parked` again with the new reason, or
/// `resync` for a worker, which takes it up at its next resync); 404 when nothing is parked
/// there. See `projection::retry` for what a retry does.
pub async fn retry(
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    seq: String,
    body: Result<bytes::Bytes, crate::body::BodyError>,
) -> Response {
    ctx.answer(async {
        admin(&app, token)?;
        let number = seq.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            AdminError::bad_request(format!("{seq:?} is not a stream sequence (1, 2, …)"))
        })?;
        let request: RetryRequest = optional_body(body, r#"{"consumer": "<name>"}"#)?;
        let source = Source::new(
            app.db.clone(),
            app.store.stream().clone(),
            app.store.instance(),
        );
        let outcomes = projection::retry::retry(&source, number, request.consumer.as_deref())
            .await
            .map_err(|e| match e {
                RetryError::NotParked(_) | RetryError::Gone(_) => {
                    AdminError::not_found_because(e.to_string())
                }
                RetryError::Stream(reason) => {
                    tracing::warn!(%reason, "a retry could not read the log");
                    AdminError::unavailable()
                }
                RetryError::Db(e) => AdminError::query(e),
            })?;
        let retried: Vec<Value> = outcomes
            .into_iter()
            .map(|(consumer, outcome)| {
                let (outcome, error) = match outcome {
                    Retried::Applied => ("applied", None),
                    Retried::Parked(error) => ("parked", Some(error)),
                    Retried::Worker => ("resync", None),
                };
                json!({ "consumer": consumer, "outcome": outcome, "error": error })
            })
            .collect();
        Ok::<_, AdminError>(json(&json!({ "seq": number, "retried": retried })))
    })
    .await
}
