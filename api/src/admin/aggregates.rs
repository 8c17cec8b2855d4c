//! `GET /admin/aggregates/{type}/{id}[?at=<RFC 3339>|?seq=<n>]`: one aggregate's events and
//! its state folded by its own `evolve` (`command::history`), now or as it was then.
//!
//! Decisions: `at` and `seq` together are a 400 (one moment at a time); an id that cannot
//! stand in a subject is a 400; an id with no event at all is a 404, while a moment before
//! its first event answers 200 with no events and the aggregate's empty state.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use command::history::{self, At, HistoryError};
use serde_json::{Value, json};
use warp::reply::{Response, json};

use super::errors::{AdminError, admin};
use crate::{App, RequestContext};

pub async fn show(
    ctx: RequestContext,
    app: Arc<App>,
    token: Option<String>,
    aggregate: String,
    id: String,
    query: HashMap<String, String>,
) -> Response {
    ctx.answer(async {
        admin(&app, token)?;
        let kind = history::find(&aggregate).ok_or_else(|| {
            let known: Vec<_> = history::registered().iter().map(|t| t.name).collect();
            AdminError::bad_request(format!(
                "unknown aggregate type {aggregate:?}; known: {}",
                known.join(", ")
            ))
        })?;
        if !command::log::is_subject_token(&id) {
            return Err(AdminError::bad_request(
                "the id must be 1-200 characters without '.', '*', '>' or spaces",
            ));
        }
        let at = moment(&query)?;
        let found = kind
            .history(&app.store, &id, at)
            .await
            .map_err(|e| match e {
                HistoryError::NotFound => {
                    AdminError::not_found_because(format!("no {aggregate} with id {id}"))
                }
                HistoryError::Store(e) => AdminError::store(e),
                other => AdminError::store(command::StoreError::Corrupt {
                    seq: 0,
                    reason: other.to_string(),
                }),
            })?;
        let events: Vec<Value> = found.events.iter().map(command::log::to_json).collect();
        Ok::<_, AdminError>(json(&json!({
            "aggregate": kind.name,
            "id": id,
            "events": events,
            "state": found.state,
        })))
    })
    .await
}

fn moment(query: &HashMap<String, String>) -> Result<At, AdminError> {
    match (query.get("at"), query.get("seq")) {
        (Some(_), Some(_)) => Err(AdminError::bad_request("give at or seq, not both")),
        (Some(at), None) => DateTime::parse_from_rfc3339(at)
            .map(|t| At::Time(t.with_timezone(&Utc)))
            .map_err(|_| {
                AdminError::bad_request("at must be an RFC 3339 time, such as 2026-01-31T12:00:00Z")
            }),
        (None, Some(seq)) => seq
            .parse()
            .map(At::Seq)
            .map_err(|_| AdminError::bad_request("seq must be a stream sequence (a whole number)")),
        (None, None) => Ok(At::Now),
    }
}
