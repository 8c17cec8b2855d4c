//! The `SlurmJob` aggregate: a Slurm job, identified by its cluster and Slurm job id, and the
//! service units it charged.
//!
//! Decisions recorded here:
//! - Charges are decided here, not on the account: a charge names the job's *total*, the
//!   job knows what it charged so far, and [`SUCharged`] carries the difference. So the same
//!   total sent again (a redelivered message, a retried epilogue, a PATCH with the same
//!   amount) charges nothing, decided by the aggregate whatever JetStream's duplicate window
//!   remembers; a lower total refunds with a negative charge. One aggregate per job lets the
//!   charges of a thousand jobs against one account be appended side by side.
//! - A charge for a job not seen yet is two appends on the job's subject: `SlurmJobRecorded`
//!   then `SUCharged` (one event per command, see `crate::Aggregate`). Were the second lost,
//!   the sender saw no reply and sends again; recording the same job again is nothing to do.
//! - A job is recorded under one account and one user; a later record or charge naming
//!   others is refused ([`DomainError::AlreadyExists`]), since moving usage between accounts
//!   would rewrite history a balance was explained by.

use chrono::{DateTime, Utc};
use events::accounting::{SUCharged, SlurmJobEvent, SlurmJobRecorded, SlurmJobUpdated};
use serde::Serialize;

use crate::{
    Aggregate, DomainError,
    values::{ClusterName, SlurmName, Su},
};

/// What charges come from: Slurm jobs.
pub const SOURCE: &str = "slurm";

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct SlurmJob {
    pub recorded: Option<SlurmJobRecorded>,
    /// What the job charged so far, in hundredths of an SU.
    pub total_hundredths: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewSlurmJob {
    pub cluster: ClusterName,
    pub slurm_job_id: i64,
    pub user_id: String,
    pub account_id: String,
    pub submit: DateTime<Utc>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub status: i32,
    pub partition: SlurmName,
    pub qos: SlurmName,
    pub cpus: i64,
    pub gpus: i64,
    pub nodes: i64,
}

/// The job's total is now `total`; `account_id`, when given, must be the job's account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetTotal {
    pub total: Su,
    pub account_id: Option<String>,
    /// `epilogue` or `http`.
    pub reason: &'static str,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SlurmJobChanges {
    pub submit: Option<DateTime<Utc>>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub status: Option<i32>,
    pub partition: Option<SlurmName>,
    pub qos: Option<SlurmName>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum SlurmJobCommand {
    Record(NewSlurmJob),
    Charge(SetTotal),
    Update(SlurmJobChanges),
}

impl Aggregate for SlurmJob {
    type Command = SlurmJobCommand;
    type Event = SlurmJobEvent;

    fn evolve(&mut self, event: &SlurmJobEvent) {
        match event {
            SlurmJobEvent::SlurmJobRecorded(recorded) => self.recorded = Some(recorded.clone()),
            SlurmJobEvent::SlurmJobUpdated(changes) => {
                if let Some(job) = &mut self.recorded {
                    changes.apply_to(job);
                }
            }
            SlurmJobEvent::SUCharged(charged) => self.total_hundredths = charged.total_hundredths,
        }
    }

    fn decide(&self, command: &SlurmJobCommand) -> Result<Option<SlurmJobEvent>, DomainError> {
        use SlurmJobCommand as C;
        let Some(job) = &self.recorded else {
            return match command {
                C::Record(new) => Ok(Some(SlurmJobEvent::SlurmJobRecorded(recorded(new)))),
                _ => Err(DomainError::NotFound),
            };
        };
        match command {
            C::Record(new) if new.user_id == job.user_id && new.account_id == job.account_id => {
                Ok(None)
            }
            C::Record(_) => Err(DomainError::AlreadyExists),
            C::Charge(set) => {
                if set
                    .account_id
                    .as_ref()
                    .is_some_and(|a| *a != job.account_id)
                {
                    return Err(DomainError::AlreadyExists);
                }
                let total = set.total.hundredths();
                let delta = total - self.total_hundredths;
                Ok((delta != 0).then(|| {
                    SlurmJobEvent::SUCharged(SUCharged {
                        account_id: job.account_id.clone(),
                        job: format!("{}/{}", job.cluster, job.slurm_job_id),
                        su_hundredths: delta,
                        total_hundredths: total,
                        source: SOURCE.into(),
                        reason: set.reason.into(),
                    })
                }))
            }
            C::Update(changes) => {
                let differs = |new: Option<DateTime<Utc>>, old: Option<DateTime<Utc>>| {
                    new.filter(|n| Some(*n) != old)
                };
                let changed = SlurmJobUpdated {
                    submit: differs(changes.submit, Some(job.submit)),
                    start: differs(changes.start, job.start),
                    end: differs(changes.end, job.end),
                    status: changes.status.filter(|s| *s != job.status),
                    partition: crate::account::differs(&changes.partition, &job.partition),
                    qos: crate::account::differs(&changes.qos, &job.qos),
                };
                Ok((changed != SlurmJobUpdated::default())
                    .then_some(SlurmJobEvent::SlurmJobUpdated(changed)))
            }
        }
    }
}

fn recorded(new: &NewSlurmJob) -> SlurmJobRecorded {
    SlurmJobRecorded {
        cluster: new.cluster.to_string(),
        slurm_job_id: new.slurm_job_id,
        user_id: new.user_id.clone(),
        account_id: new.account_id.clone(),
        submit: new.submit,
        start: new.start,
        end: new.end,
        status: new.status,
        partition: new.partition.to_string(),
        qos: new.qos.to_string(),
        cpus: new.cpus,
        gpus: new.gpus,
        nodes: new.nodes,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use events::accounting::{AccountEvent, AccountOpened, AllocationChanged};
    use proptest::prelude::*;

    use super::*;
    use crate::account::Account;

    fn new_job(id: i64, account: &str) -> NewSlurmJob {
        NewSlurmJob {
            cluster: ClusterName::parse("brc").unwrap(),
            slurm_job_id: id,
            user_id: "u".into(),
            account_id: account.into(),
            submit: DateTime::from_timestamp(1_500_000_000, 0).unwrap(),
            start: None,
            end: None,
            status: 3,
            partition: SlurmName::parse("gpu").unwrap(),
            qos: SlurmName::parse("normal").unwrap(),
            cpus: 1,
            gpus: 0,
            nodes: 1,
        }
    }

    fn set(hundredths: i64) -> SlurmJobCommand {
        SlurmJobCommand::Charge(SetTotal {
            total: Su::from_hundredths(hundredths).unwrap(),
            account_id: None,
            reason: "http",
        })
    }

    fn run(job: &mut SlurmJob, command: &SlurmJobCommand) -> Option<SlurmJobEvent> {
        let event = job.decide(command).unwrap();
        if let Some(e) = &event {
            job.evolve(e);
        }
        event
    }

    fn charged(event: Option<SlurmJobEvent>) -> Option<i64> {
        match event {
            Some(SlurmJobEvent::SUCharged(c)) => Some(c.su_hundredths),
            _ => None,
        }
    }

    #[test]
    fn a_charge_sets_the_job_s_total() {
        let mut job = SlurmJob::default();
        assert_eq!(job.decide(&set(100)), Err(DomainError::NotFound));
        run(&mut job, &SlurmJobCommand::Record(new_job(1, "a")));
        assert_eq!(charged(run(&mut job, &set(133_700))), Some(133_700));
        assert_eq!(charged(run(&mut job, &set(133_700))), None);
        assert_eq!(charged(run(&mut job, &set(150_000))), Some(16_300));
        assert_eq!(charged(run(&mut job, &set(100_000))), Some(-50_000));
        assert_eq!(job.total_hundredths, 100_000);
    }

    #[test]
    fn a_job_stays_under_its_account() {
        let mut job = SlurmJob::default();
        run(&mut job, &SlurmJobCommand::Record(new_job(1, "a")));
        assert_eq!(
            job.decide(&SlurmJobCommand::Record(new_job(1, "a"))),
            Ok(None)
        );
        assert_eq!(
            job.decide(&SlurmJobCommand::Record(new_job(1, "b"))),
            Err(DomainError::AlreadyExists)
        );
        let elsewhere = SlurmJobCommand::Charge(SetTotal {
            total: Su::from_hundredths(5).unwrap(),
            account_id: Some("b".into()),
            reason: "epilogue",
        });
        assert_eq!(job.decide(&elsewhere), Err(DomainError::AlreadyExists));
    }

    #[derive(Debug, Clone)]
    enum Step {
        Allocate(i64),
        SetTotal { job: i64, hundredths: i64 },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0i64..1_000_000).prop_map(Step::Allocate),
            (0i64..8, 0i64..10_000_000)
                .prop_map(|(job, hundredths)| Step::SetTotal { job, hundredths }),
        ]
    }

    proptest! {
        /// Whatever allocations, charges and refunds happen in whatever order, the balance
        /// folded from the events (allocation − Σ SUCharged) is the allocation minus what
        /// each job's last total says.
        #[test]
        fn balance_is_allocation_minus_the_charges(steps in prop::collection::vec(step(), 1..60)) {
            let mut account = Account::default();
            let mut log: Vec<AccountEvent> = vec![AccountEvent::AccountOpened(AccountOpened {
                name: "a".into(), allocation: 0, account_type: "FCA".into(), description: "d".into(),
            })];
            account.evolve(&log[0]);
            let mut jobs: HashMap<i64, SlurmJob> = HashMap::new();
            let mut charges: Vec<SUCharged> = Vec::new();
            let mut totals: HashMap<i64, i64> = HashMap::new();
            for step in steps {
                match step {
                    Step::Allocate(n) => {
                        if let Some(e) = account.decide(&crate::account::AccountCommand::ChangeAllocation(n)).unwrap() {
                            account.evolve(&e);
                            log.push(e);
                        }
                    }
                    Step::SetTotal { job, hundredths } => {
                        let state = jobs.entry(job).or_default();
                        run(state, &SlurmJobCommand::Record(new_job(job, "a")));
                        if let Some(SlurmJobEvent::SUCharged(c)) = run(state, &set(hundredths)) {
                            charges.push(c);
                        }
                        totals.insert(job, hundredths);
                    }
                }
            }
            let allocation = log.iter().fold(0, |a, e| match e {
                AccountEvent::AccountOpened(o) => o.allocation,
                AccountEvent::AllocationChanged(AllocationChanged { allocation }) => *allocation,
                _ => a,
            });
            let balance = allocation * 100 - charges.iter().map(|c| c.su_hundredths).sum::<i64>();
            prop_assert_eq!(balance, allocation * 100 - totals.values().sum::<i64>());
            prop_assert!(charges.iter().all(|c| c.su_hundredths != 0));
        }
    }
}
