//! Events of the `Job` aggregate: a course launched on Kubernetes for one user, whose id is
//! a UUID and whose start time is the `occurred_at` of its `JobLaunched`.
//!
//! A job's life: `JobLaunched` (the door), then what the workers saw, each reported through
//! the command path: `JobScheduled` (its objects are in the cluster), `JobPending` (the
//! cluster keeps it waiting, and says why), `JobReady` (its endpoints), `JobFailed` (why),
//! `JobRetrying` (a Kubernetes call failed and is being retried), and `JobDeleted`.

use serde::{Deserialize, Serialize};

use crate::DomainEvent;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum JobEvent {
    JobLaunched(JobLaunched),
    JobScheduled(JobScheduled),
    JobPending(JobPending),
    JobReady(JobReady),
    JobFailed(JobFailed),
    JobRetrying(JobRetrying),
    JobDeleted(JobDeleted),
}

impl DomainEvent for JobEvent {
    const AGGREGATE: &'static str = "job";
    const TYPES: &'static [&'static str] = &[
        "JobLaunched",
        "JobScheduled",
        "JobPending",
        "JobReady",
        "JobFailed",
        "JobRetrying",
        "JobDeleted",
    ];
}

/// The course as it was at launch: a later change of the course does not change a running
/// job, and the job list shows what runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobLaunched {
    pub course_id: String,
    /// The user the job runs for (the `user` of the launch request).
    pub owner: String,
    pub name: String,
    pub introduction: String,
    pub level: String,
    pub image: String,
    pub gpu: u32,
    pub datasets: Vec<String>,
}

/// The job's objects exist in the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobScheduled {
    pub namespace: String,
    pub deployment: String,
    pub service: String,
}

/// The cluster keeps the job waiting: `reason` says why (no node has the GPUs, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobPending {
    pub reason: String,
}

/// One way into a running job: `jupyter`, `digits` or a port number, and its URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Endpoint {
    pub label: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobReady {
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobFailed {
    pub reason: String,
}

/// A Kubernetes call for the job failed and is retried with back-off; `error` is what the
/// cluster (or the way to it) said. The next `JobScheduled` clears it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobRetrying {
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobDeleted {}

/// Where a job is, as the course door's job list says it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum JobStatus {
    /// Never launched.
    #[default]
    New,
    /// Launched; its objects are not in the cluster yet.
    Created,
    /// Its objects are in the cluster; its pod is not ready (the reason says why).
    Pending,
    Ready,
    Failed,
    Deleted,
}

impl JobStatus {
    /// The word of the document (`Created`, `Pending`, `Ready`, plus `Failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::New | JobStatus::Created => "Created",
            JobStatus::Pending => "Pending",
            JobStatus::Ready => "Ready",
            JobStatus::Failed => "Failed",
            JobStatus::Deleted => "Deleted",
        }
    }

    /// The inverse of [`JobStatus::as_str`] for a stored word (`Created` for anything else).
    pub fn parse(word: &str) -> Self {
        match word {
            "Pending" => JobStatus::Pending,
            "Ready" => JobStatus::Ready,
            "Failed" => JobStatus::Failed,
            "Deleted" => JobStatus::Deleted,
            _ => JobStatus::Created,
        }
    }
}

/// What a `JobScheduled` says of a job while nothing more is known.
pub const WAITING_FOR_POD: &str = "waiting for its pod to become ready";

/// How far a job got: the one place that says what each event does to it, used by the
/// aggregate and by the read model alike.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Progress {
    pub status: JobStatus,
    /// Why it is `Pending` or `Failed`; empty otherwise.
    pub reason: String,
    pub endpoints: Vec<Endpoint>,
    /// The last Kubernetes error met for it since it was last scheduled; empty if none.
    pub last_error: String,
}

impl Progress {
    pub fn apply(&mut self, event: &JobEvent) {
        match event {
            JobEvent::JobLaunched(_) => self.status = JobStatus::Created,
            JobEvent::JobScheduled(_) => {
                if self.status == JobStatus::Created {
                    self.status = JobStatus::Pending;
                    self.reason = WAITING_FOR_POD.to_string();
                }
                self.last_error.clear();
            }
            JobEvent::JobPending(JobPending { reason }) => {
                self.status = JobStatus::Pending;
                self.reason.clone_from(reason);
                self.endpoints.clear();
            }
            JobEvent::JobReady(JobReady { endpoints }) => {
                self.status = JobStatus::Ready;
                self.reason.clear();
                self.endpoints.clone_from(endpoints);
            }
            JobEvent::JobFailed(JobFailed { reason }) => {
                self.status = JobStatus::Failed;
                self.reason.clone_from(reason);
                self.endpoints.clear();
            }
            JobEvent::JobRetrying(JobRetrying { error }) => self.last_error.clone_from(error),
            JobEvent::JobDeleted(_) => {
                self.status = JobStatus::Deleted;
                self.endpoints.clear();
            }
        }
    }
}
