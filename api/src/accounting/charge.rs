//! Setting a Slurm job's total: the one path of every charge, whether it comes from the
//! epilogue over NATS (`<instance>.cmd.accounting.charge`, served here) or from a PATCH of
//! the job's amount at the door.
//!
//! The message contract (JSON, NATS request/reply; a client sends no special header):
//! - request: `{"cluster", "slurm_job_id", "user", "account", "partition", "su", "cpus",
//!   "gpus", "nodes", "start", "end"}`, optional `"submit"` (default: `start`), `"qos"`
//!   (default `normal`) and `"status"` (Slurm's state number or name, default `COMPLETED`).
//!   `su` is the job's total; the same total again charges nothing, another total the
//!   difference. A job not seen yet is recorded under the named account and user.
//! - reply, once the read models hold the charge: `{"ok": true, "charged", "balance",
//!   "duplicate"}`; or `{"ok": false, "error"}` for a request that can never succeed (unknown
//!   account or user, a bad value, a job recorded under another account: never spool it);
//!   or `{"ok": false, "error", "transient": true}` when Gantry cannot take it now (spool
//!   it and send it again later, as for no reply at all).
//!
//! Decisions recorded here:
//! - The subscription is a queue group, so several `serve` processes share the charges.
//! - No message id is given to JetStream: the job aggregate tells a repeated total by itself
//!   (and a total set back to an earlier value must charge again, which a message id
//!   derived from the total would swallow).
//! - `balance` is the account's balance in the read model right after this charge is in it;
//!   with concurrent charges it may include later ones as well.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use command::{
    CommandError, DomainError, Outcome,
    slurm_job::{NewSlurmJob, SetTotal, SlurmJobCommand},
    values::{ClusterName, INT_MAX, SlurmName, Su, su_number},
};
use events::{DomainEvent, SlurmJobEvent};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::App;

/// The subject of the charge service of `instance`.
pub fn subject(instance: &str) -> String {
    format!("{instance}.cmd.accounting.charge")
}

/// The command context of a cluster's epilogue: the actor is `epilogue:<cluster>`.
pub fn epilogue_context(cluster: &str, request_id: &str) -> command::Context {
    command::Context {
        actor: format!("epilogue:{cluster}"),
        request_id: request_id.to_string(),
        idempotency_key: None,
        causation_id: None,
    }
}

/// What a charge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charged {
    pub outcome: Outcome,
    /// What this request moved, in hundredths of an SU (0: the total was already set).
    pub hundredths: i64,
}

/// Records the job if `record` is given and it is not recorded yet, then sets its total,
/// and waits until the read models hold it.
pub async fn set_total(
    app: &App,
    job_id: &str,
    record: Option<&NewSlurmJob>,
    set: SetTotal,
    ctx: &command::Context,
) -> Result<Charged, CommandError> {
    let jobs = &app.accounting.jobs;
    let mut last = None;
    if let Some(new) = record {
        last = Some(
            jobs.execute(job_id, &SlurmJobCommand::Record(new.clone()), ctx)
                .await?,
        );
    }
    let (outcome, event) = jobs
        .execute_decided(job_id, &SlurmJobCommand::Charge(set), ctx)
        .await?;
    let hundredths = match event {
        Some(SlurmJobEvent::SUCharged(charged)) => charged.su_hundredths,
        _ => 0,
    };
    let seq = outcome.seq.max(last.map_or(0, |o| o.seq));
    app.wait_for_read_models(SlurmJobEvent::AGGREGATE, seq)
        .await;
    Ok(Charged {
        outcome,
        hundredths,
    })
}

/// A charge request as the contract spells it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargeRequest {
    pub cluster: String,
    pub slurm_job_id: i64,
    pub user: String,
    pub account: String,
    pub partition: String,
    pub su: serde_json::Number,
    pub cpus: i64,
    pub gpus: i64,
    pub nodes: i64,
    pub start: String,
    pub end: String,
    #[serde(default)]
    pub submit: Option<String>,
    #[serde(default)]
    pub qos: Option<String>,
    #[serde(default)]
    pub status: Option<Value>,
}

/// Why a charge was not made.
#[derive(Debug, thiserror::Error)]
pub enum ChargeError {
    /// It can never succeed as it is.
    #[error("{0}")]
    Refused(String),
    /// Gantry cannot take it now.
    #[error("{0}")]
    Unavailable(String),
}

/// Slurm's job states, in the order of its `job_states` enum (the number is the state).
const SLURM_STATES: &[&str] = &[
    "PENDING",
    "RUNNING",
    "SUSPENDED",
    "COMPLETED",
    "CANCELLED",
    "FAILED",
    "TIMEOUT",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "OUT_OF_MEMORY",
];

/// The state number of a Slurm state given as a number or a name (`COMPLETED`, `cancelled by
/// 123` reads as `CANCELLED`).
pub fn slurm_state(value: &Value) -> Option<i32> {
    match value {
        Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        Value::String(s) => {
            let word = s.split_whitespace().next()?.to_ascii_uppercase();
            SLURM_STATES
                .iter()
                .position(|state| *state == word)
                .and_then(|i| i32::try_from(i).ok())
        }
        _ => None,
    }
}

fn time(field: &str, text: &str) -> Result<DateTime<Utc>, ChargeError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ChargeError::Refused(format!("{field} is not an RFC 3339 time: {text:?}")))
}

fn refused(e: impl std::fmt::Display) -> ChargeError {
    ChargeError::Refused(e.to_string())
}

fn count(field: &str, value: i64) -> Result<i64, ChargeError> {
    if (0..=INT_MAX).contains(&value) {
        Ok(value)
    } else {
        Err(ChargeError::Refused(format!(
            "{field} must be between 0 and {INT_MAX}"
        )))
    }
}

/// Handles one charge request of the contract; `request_id` goes into the events' meta.
pub async fn charge(
    app: &App,
    request: ChargeRequest,
    request_id: &str,
) -> Result<Value, ChargeError> {
    let cluster = ClusterName::parse(request.cluster.as_str()).map_err(refused)?;
    let slurm_job_id = count("slurm_job_id", request.slurm_job_id)?;
    let su = Su::parse_decimal(&request.su.to_string()).map_err(refused)?;
    let partition = SlurmName::parse(request.partition.as_str()).map_err(refused)?;
    let qos = SlurmName::parse(request.qos.as_deref().unwrap_or("normal")).map_err(refused)?;
    let status = match &request.status {
        None => 3,
        Some(value) => slurm_state(value)
            .ok_or_else(|| ChargeError::Refused(format!("status is not a Slurm state: {value}")))?,
    };
    let start = time("start", &request.start)?;
    let end = time("end", &request.end)?;
    let submit = match &request.submit {
        Some(text) => time("submit", text)?,
        None => start,
    };
    let (cpus, gpus, nodes) = (
        count("cpus", request.cpus)?,
        count("gpus", request.gpus)?,
        count("nodes", request.nodes)?,
    );
    let unavailable = |e: projection::DbError| match e {
        projection::DbError::Unavailable(reason) => ChargeError::Unavailable(reason),
        other => ChargeError::Unavailable(other.to_string()),
    };
    let (account_id, user_id) =
        projection::accounting::charge_parties(&app.db, &request.account, &request.user)
            .await
            .map_err(unavailable)?;
    let account_id = account_id
        .ok_or_else(|| ChargeError::Refused(format!("unknown account {:?}", request.account)))?;
    let user_id =
        user_id.ok_or_else(|| ChargeError::Refused(format!("unknown user {:?}", request.user)))?;
    let job_id = events::accounting::slurm_job_id(cluster.as_str(), slurm_job_id);
    let new = NewSlurmJob {
        cluster: cluster.clone(),
        slurm_job_id,
        user_id,
        account_id: account_id.clone(),
        submit,
        start: Some(start),
        end: Some(end),
        status,
        partition,
        qos,
        cpus,
        gpus,
        nodes,
    };
    let ctx = epilogue_context(cluster.as_str(), request_id);
    let set = SetTotal {
        total: su,
        account_id: Some(account_id.clone()),
        reason: "epilogue",
    };
    let charged = set_total(app, &job_id, Some(&new), set, &ctx)
        .await
        .map_err(|e| match e {
            CommandError::Domain(DomainError::AlreadyExists) => ChargeError::Refused(format!(
                "job {cluster}/{slurm_job_id} is recorded under another account or user"
            )),
            CommandError::Domain(e) => refused(e),
            other => ChargeError::Unavailable(other.to_string()),
        })?;
    let balance = projection::accounting::balance_of(&app.db, &account_id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ChargeError::Unavailable("the account left the read model".into()))?;
    info!(
        job = %format!("{cluster}/{slurm_job_id}"),
        charged = charged.hundredths,
        seq = charged.outcome.seq,
        "charge"
    );
    Ok(json!({
        "ok": true,
        "charged": su_number(charged.hundredths),
        "balance": su_number(balance),
        "duplicate": charged.hundredths == 0,
    }))
}

/// The reply to one request's bytes.
pub async fn reply(app: &App, payload: &[u8], request_id: &str) -> Value {
    let request = match serde_json::from_slice::<ChargeRequest>(payload) {
        Ok(request) => request,
        Err(e) => return json!({ "ok": false, "error": format!("bad request: {e}") }),
    };
    match charge(app, request, request_id).await {
        Ok(reply) => reply,
        Err(ChargeError::Refused(error)) => json!({ "ok": false, "error": error }),
        Err(ChargeError::Unavailable(error)) => {
            warn!(%error, request_id, "charge not taken now");
            json!({ "ok": false, "error": error, "transient": true })
        }
    }
}

/// How many charges one process handles at once.
const IN_FLIGHT: usize = 1024;

/// Serves the charge subject of `instance` until `stop` resolves.
pub async fn serve(
    app: Arc<App>,
    client: async_nats::Client,
    instance: String,
    stop: impl Future<Output = ()> + Send,
) -> Result<(), async_nats::SubscribeError> {
    let subject = subject(&instance);
    let mut requests = client
        .queue_subscribe(subject.clone(), format!("{instance}.accounting"))
        .await?;
    info!(%subject, "serving charges");
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut stop = std::pin::pin!(stop);
    loop {
        let message = tokio::select! {
            _ = &mut stop => break,
            message = requests.next() => match message {
                Some(message) => message,
                None => break,
            },
        };
        let Some(reply_to) = message.reply.clone() else {
            continue;
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let app = app.clone();
        let client = client.clone();
        tokio::spawn(async move {
            let request_id = uuid::Uuid::new_v4().to_string();
            let answer = reply(&app, &message.payload, &request_id).await;
            let bytes = serde_json::to_vec(&answer).unwrap_or_default();
            if let Err(e) = client.publish(reply_to, bytes.into()).await {
                warn!(error = %e, request_id, "cannot send a charge's reply");
            }
            drop(permit);
        });
    }
    let _ = requests.unsubscribe().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_states_read_as_numbers_or_names() {
        assert_eq!(slurm_state(&json!(4)), Some(4));
        assert_eq!(slurm_state(&json!("COMPLETED")), Some(3));
        assert_eq!(slurm_state(&json!("cancelled by 1000")), Some(4));
        assert_eq!(slurm_state(&json!("RUNNING")), Some(1));
        assert_eq!(slurm_state(&json!("SOMETHING")), None);
    }
}
