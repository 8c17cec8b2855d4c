//! The `Job` aggregate: a course launched on Kubernetes for one user.
//!
//! A job is launched by the door (for oneself, or by an admin for anyone) and then moved
//! by what the workers see of the cluster. Every report of a worker is decided here like
//! any command: a report that says what the job already says records nothing, so two
//! workers watching the same cluster, or one watching it again after a restart, add no
//! event; and a report about a deleted job is refused ([`DomainError::NotFound`]), which
//! tells the worker to take the job's objects away.

use events::job::{
    Endpoint, JobDeleted, JobEvent, JobFailed, JobLaunched, JobPending, JobReady, JobRetrying,
    JobScheduled, JobStatus as Status, Progress,
};
use serde::Serialize;

use crate::{Aggregate, DomainError, user::Caller};

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Job {
    pub launched: Option<JobLaunched>,
    pub scheduled: Option<JobScheduled>,
    pub progress: Progress,
}

impl Job {
    /// Whether the job still runs (or is to run) in the cluster.
    pub fn is_live(&self) -> bool {
        !matches!(self.progress.status, Status::New | Status::Deleted)
    }
}

/// What is asked of a job. `Launch` and `Delete` come from the door, for the owner or an
/// admin; the others are the workers' reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum JobCommand {
    Launch(JobLaunched, Caller),
    Delete(Caller),
    /// The job's course was deleted: the job goes with it.
    DeleteWithCourse,
    Schedule {
        namespace: String,
        deployment: String,
        service: String,
    },
    Wait {
        reason: String,
    },
    MarkReady {
        endpoints: Vec<(String, String)>,
    },
    Fail {
        reason: String,
    },
    RecordError {
        error: String,
    },
}

impl Aggregate for Job {
    type Command = JobCommand;
    type Event = JobEvent;

    fn evolve(&mut self, event: &JobEvent) {
        match event {
            JobEvent::JobLaunched(launched) => self.launched = Some(launched.clone()),
            JobEvent::JobScheduled(scheduled) => self.scheduled = Some(scheduled.clone()),
            _ => {}
        }
        self.progress.apply(event);
    }

    fn decide(&self, command: &JobCommand) -> Result<Option<JobEvent>, DomainError> {
        use JobCommand as C;
        let owner = self.launched.as_ref().map(|l| l.owner.as_str());
        let Progress {
            reason,
            endpoints: shown,
            last_error,
            ..
        } = &self.progress;
        match (command, self.progress.status) {
            (C::Launch(launched, by), Status::New) => {
                by.may_act_as(&launched.owner)?;
                Ok(Some(JobEvent::JobLaunched(launched.clone())))
            }
            (C::Launch(..), _) => Err(DomainError::AlreadyExists),
            (_, Status::New | Status::Deleted) => Err(DomainError::NotFound),
            (C::Delete(by), _) => {
                by.may_act_as(owner.unwrap_or_default())?;
                Ok(Some(JobEvent::JobDeleted(JobDeleted {})))
            }
            (C::DeleteWithCourse, _) => Ok(Some(JobEvent::JobDeleted(JobDeleted {}))),
            (
                C::Schedule {
                    namespace,
                    deployment,
                    service,
                },
                _,
            ) => {
                let scheduled = JobScheduled {
                    namespace: namespace.clone(),
                    deployment: deployment.clone(),
                    service: service.clone(),
                };
                let same = self.scheduled.as_ref() == Some(&scheduled) && last_error.is_empty();
                Ok((!same).then_some(JobEvent::JobScheduled(scheduled)))
            }
            (C::Wait { reason: why }, status) => Ok((status != Status::Pending || reason != why)
                .then(|| {
                    JobEvent::JobPending(JobPending {
                        reason: why.clone(),
                    })
                })),
            (C::MarkReady { endpoints }, status) => {
                let endpoints: Vec<Endpoint> = endpoints
                    .iter()
                    .map(|(label, value)| Endpoint {
                        label: label.clone(),
                        value: value.clone(),
                    })
                    .collect();
                Ok((status != Status::Ready || *shown != endpoints)
                    .then_some(JobEvent::JobReady(JobReady { endpoints })))
            }
            (C::Fail { reason: why }, status) => Ok((status != Status::Failed || reason != why)
                .then(|| {
                    JobEvent::JobFailed(JobFailed {
                        reason: why.clone(),
                    })
                })),
            (C::RecordError { error }, _) => Ok((last_error != error).then(|| {
                JobEvent::JobRetrying(JobRetrying {
                    error: error.clone(),
                })
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::Username;

    fn launched() -> JobLaunched {
        JobLaunched {
            course_id: "c1".into(),
            owner: "jimmy".into(),
            name: "image process".into(),
            introduction: String::new(),
            level: "basic".into(),
            image: "nvidia/caffe:latest".into(),
            gpu: 1,
            datasets: vec!["mnist".into()],
        }
    }

    fn caller(name: &str, admin: bool) -> Caller {
        Caller {
            username: Username::parse(name).unwrap(),
            admin,
        }
    }

    fn state(history: &[JobEvent]) -> Job {
        let mut job = Job::default();
        for e in history {
            job.evolve(e);
        }
        job
    }

    fn scheduled() -> JobEvent {
        JobEvent::JobScheduled(JobScheduled {
            namespace: "default".into(),
            deployment: "job-1".into(),
            service: "job-1".into(),
        })
    }

    fn schedule() -> JobCommand {
        JobCommand::Schedule {
            namespace: "default".into(),
            deployment: "job-1".into(),
            service: "job-1".into(),
        }
    }

    #[test]
    fn a_job_is_launched_once_for_oneself_or_by_an_admin() {
        let new = Job::default();
        let launch = |by| JobCommand::Launch(launched(), by);
        assert_eq!(
            new.decide(&launch(caller("jimmy", false))),
            Ok(Some(JobEvent::JobLaunched(launched())))
        );
        assert!(new.decide(&launch(caller("root", true))).is_ok());
        assert_eq!(
            new.decide(&launch(caller("eve", false))),
            Err(DomainError::Forbidden)
        );
        let job = state(&[JobEvent::JobLaunched(launched())]);
        assert_eq!(job.progress.status.as_str(), "Created");
        assert_eq!(
            job.decide(&launch(caller("jimmy", false))),
            Err(DomainError::AlreadyExists)
        );
    }

    #[test]
    fn reports_that_change_nothing_record_nothing() {
        let job = state(&[JobEvent::JobLaunched(launched()), scheduled()]);
        assert_eq!(job.progress.status, Status::Pending);
        assert_eq!(job.progress.reason, events::job::WAITING_FOR_POD);
        assert_eq!(job.decide(&schedule()), Ok(None));
        let ready = JobCommand::MarkReady {
            endpoints: vec![("jupyter".into(), "http://h:30001".into())],
        };
        let Ok(Some(event)) = job.decide(&ready) else {
            panic!("ready")
        };
        let job = state(&[JobEvent::JobLaunched(launched()), scheduled(), event]);
        assert_eq!(job.progress.status, Status::Ready);
        assert_eq!(job.progress.reason, "");
        assert_eq!(job.decide(&ready), Ok(None));
        let fail = JobCommand::Fail {
            reason: "image pull failed".into(),
        };
        assert!(matches!(
            job.decide(&fail),
            Ok(Some(JobEvent::JobFailed(_)))
        ));
    }

    #[test]
    fn an_error_is_recorded_once_and_cleared_by_the_next_scheduling() {
        let job = state(&[JobEvent::JobLaunched(launched())]);
        let error = JobCommand::RecordError {
            error: "connection refused".into(),
        };
        let Ok(Some(event)) = job.decide(&error) else {
            panic!("recorded")
        };
        let job = state(&[JobEvent::JobLaunched(launched()), event.clone()]);
        assert_eq!(job.progress.last_error, "connection refused");
        assert_eq!(job.decide(&error), Ok(None));
        let job = state(&[JobEvent::JobLaunched(launched()), event, scheduled()]);
        assert_eq!(job.progress.last_error, "");
        assert_eq!(job.progress.status, Status::Pending);
    }

    #[test]
    fn only_the_owner_or_an_admin_deletes_and_a_deleted_job_takes_no_report() {
        let job = state(&[JobEvent::JobLaunched(launched())]);
        assert_eq!(
            job.decide(&JobCommand::Delete(caller("eve", false))),
            Err(DomainError::Forbidden)
        );
        let deleted = Some(JobEvent::JobDeleted(JobDeleted {}));
        assert_eq!(
            job.decide(&JobCommand::Delete(caller("jimmy", false))),
            Ok(deleted.clone())
        );
        assert_eq!(
            job.decide(&JobCommand::DeleteWithCourse),
            Ok(deleted.clone())
        );
        let gone = state(&[
            JobEvent::JobLaunched(launched()),
            JobEvent::JobDeleted(JobDeleted {}),
        ]);
        assert!(!gone.is_live());
        for command in [schedule(), JobCommand::Delete(caller("root", true))] {
            assert_eq!(gone.decide(&command), Err(DomainError::NotFound));
        }
        assert_eq!(
            Job::default().decide(&schedule()),
            Err(DomainError::NotFound)
        );
    }
}
