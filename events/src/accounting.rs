//! Events of Slurm allocation accounting: accounts (`account`), the people who charge them
//! (`slurm_user`) and the Slurm jobs that use service units (`slurm_job`).
//!
//! Decisions recorded here:
//! - Service units are kept as integer hundredths (`*_hundredths`): a charge is exact to
//!   0.01 SU and sums never drift. Allocations are whole SUs, as the accounting service typed
//!   them.
//! - [`SUCharged`] is the only event that moves a balance: balance = allocation − Σ charges.
//!   It lives on the aggregate of the thing that used the units (a Slurm job today, keyed by
//!   `(cluster, Slurm job id)`), never on the account, so that charges of many jobs against
//!   one account are decided side by side; the balance is folded in the read model. Another
//!   source (a Kubernetes job of another door) charges an account with the same struct on
//!   its own aggregate, naming itself in `source` and its job in `job`.
//! - A charge carries the job's new total, so a repeat of the same total is decided as
//!   nothing to do by the job aggregate itself, whatever JetStream's duplicate window says.
//! - Accounts and Slurm users are referred to by aggregate id (a UUID); their integer ids at
//!   the door are the stream sequence of the event that made them, stable under a rebuild.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::DomainEvent;

const SLURM_USER_NAMESPACE: Uuid = Uuid::from_u128(0x5a1c_0b7e_22d4_4f81_9e3a_6c4d_8b2f_1e07);
const SLURM_JOB_NAMESPACE: Uuid = Uuid::from_u128(0x7c2e_4d1a_9f3b_4a60_b5e8_0d9c_3a7f_6b12);

/// The aggregate id of the accounting user `username`: one user per username.
pub fn slurm_user_id(username: &str) -> String {
    Uuid::new_v5(&SLURM_USER_NAMESPACE, username.as_bytes()).to_string()
}

/// The aggregate id of Slurm job `slurm_job_id` of cluster `cluster`: Slurm job ids are
/// unique per cluster only.
pub fn slurm_job_id(cluster: &str, slurm_job_id: i64) -> String {
    Uuid::new_v5(
        &SLURM_JOB_NAMESPACE,
        format!("{cluster}\n{slurm_job_id}").as_bytes(),
    )
    .to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum AccountEvent {
    AccountOpened(AccountOpened),
    AccountUpdated(AccountUpdated),
    AllocationChanged(AllocationChanged),
    UserJoinedAccount(UserJoinedAccount),
    UserLeftAccount(UserLeftAccount),
}

impl DomainEvent for AccountEvent {
    const AGGREGATE: &'static str = "account";
    const TYPES: &'static [&'static str] = &[
        "AccountOpened",
        "AccountUpdated",
        "AllocationChanged",
        "UserJoinedAccount",
        "UserLeftAccount",
    ];
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccountOpened {
    pub name: String,
    /// Whole SUs.
    pub allocation: i64,
    pub account_type: String,
    pub description: String,
}

/// Only the fields that changed are present.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccountUpdated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl AccountUpdated {
    /// Applies these changes to an account: one place for the aggregate and the read model.
    pub fn apply_to(&self, account: &mut AccountOpened) {
        if let Some(v) = &self.name {
            account.name.clone_from(v);
        }
        if let Some(v) = &self.account_type {
            account.account_type.clone_from(v);
        }
        if let Some(v) = &self.description {
            account.description.clone_from(v);
        }
    }
}

/// The allocation (whole SUs) is now `allocation`; the balance moves with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AllocationChanged {
    pub allocation: i64,
}

/// Users (accounting user aggregate ids) who became members of the account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserJoinedAccount {
    pub users: Vec<String>,
    /// `admin` (an admin set the account's users) or `job` (a job of theirs was recorded
    /// under the account).
    pub via: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserLeftAccount {
    pub users: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum SlurmUserEvent {
    SlurmUserAdded(SlurmUserAdded),
    SlurmUserUpdated(SlurmUserUpdated),
}

impl DomainEvent for SlurmUserEvent {
    const AGGREGATE: &'static str = "slurm_user";
    const TYPES: &'static [&'static str] = &["SlurmUserAdded", "SlurmUserUpdated"];

    /// A person's email and LDAP uid: sealed in the log with the accounting user's key.
    fn personal_fields(event_type: &str) -> &'static [&'static str] {
        match event_type {
            "SlurmUserAdded" | "SlurmUserUpdated" => &["email", "ldap_uid"],
            _ => &[],
        }
    }
}

/// `ldap_uid` is the decimal text of the LDAP uid (text, so that it can be sealed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SlurmUserAdded {
    pub username: String,
    pub metadata: String,
    pub email: String,
    pub ldap_uid: String,
}

/// Only the fields that changed are present.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SlurmUserUpdated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_uid: Option<String>,
}

impl SlurmUserUpdated {
    pub fn apply_to(&self, user: &mut SlurmUserAdded) {
        if let Some(v) = &self.metadata {
            user.metadata.clone_from(v);
        }
        if let Some(v) = &self.email {
            user.email.clone_from(v);
        }
        if let Some(v) = &self.ldap_uid {
            user.ldap_uid.clone_from(v);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum SlurmJobEvent {
    SlurmJobRecorded(SlurmJobRecorded),
    SlurmJobUpdated(SlurmJobUpdated),
    SUCharged(SUCharged),
}

impl DomainEvent for SlurmJobEvent {
    const AGGREGATE: &'static str = "slurm_job";
    const TYPES: &'static [&'static str] = &["SlurmJobRecorded", "SlurmJobUpdated", "SUCharged"];
}

/// A Slurm job, as first seen. Partitions and QOS are named; the read model gives each
/// name its integer id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SlurmJobRecorded {
    pub cluster: String,
    pub slurm_job_id: i64,
    /// Accounting user aggregate id.
    pub user_id: String,
    /// Account aggregate id.
    pub account_id: String,
    pub submit: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    /// Slurm's job state number (`3`: completed).
    pub status: i32,
    pub partition: String,
    pub qos: String,
    #[serde(default)]
    pub cpus: i64,
    #[serde(default)]
    pub gpus: i64,
    #[serde(default)]
    pub nodes: i64,
}

/// Only the fields that changed are present.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SlurmJobUpdated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submit: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<String>,
}

impl SlurmJobUpdated {
    pub fn apply_to(&self, job: &mut SlurmJobRecorded) {
        if let Some(v) = self.submit {
            job.submit = v;
        }
        if let Some(v) = self.start {
            job.start = Some(v);
        }
        if let Some(v) = self.end {
            job.end = Some(v);
        }
        if let Some(v) = self.status {
            job.status = v;
        }
        if let Some(v) = &self.partition {
            job.partition.clone_from(v);
        }
        if let Some(v) = &self.qos {
            job.qos.clone_from(v);
        }
    }
}

/// Service units charged to an account: the one event that moves a balance. Negative is a
/// refund (a job's total set lower).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SUCharged {
    /// Account aggregate id.
    pub account_id: String,
    /// What used the units, in the words of its source (`<cluster>/<slurm job id>`).
    pub job: String,
    /// This charge, in hundredths of an SU.
    pub su_hundredths: i64,
    /// The job's total after this charge, in hundredths of an SU.
    pub total_hundredths: i64,
    /// Where the usage comes from: `slurm` for Slurm jobs.
    pub source: String,
    /// How the total arrived: `epilogue` (the charge subject) or `http` (a job's amount set
    /// through the door).
    pub reason: String,
}
