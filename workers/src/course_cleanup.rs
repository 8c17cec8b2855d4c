//! When a course is deleted (`CourseDeleted`), its jobs go too, as the course platform
//! did: the one place that says so. Each live job of the course is deleted through the
//! command path (`JobDeleted`, actor `system:course_cleanup`), which takes it out of the
//! job list and makes the job reconciler remove its objects; and every Deployment and
//! Service still labelled with the course ([`COURSE_LABEL`] and [`INSTANCE_LABEL`]) is
//! deleted at once. Only this instance's objects are ever touched.
//!
//! The resync deletes the live jobs whose course is deleted or unknown to the log, and
//! finds every object of this instance that names a course and deletes those whose course
//! is deleted, or unknown to the log, so what an event that was never delivered (or a
//! worker that was down) left behind still goes.

use std::collections::BTreeSet;

use command::job::{Job, JobCommand};
use events::{CourseEvent, DomainEvent, Envelope, Event, Recorded};
use futures::future::BoxFuture;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service};
use kube::{
    Api, Resource,
    api::{DeleteParams, ListParams},
};
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use command::EventStore;

use crate::{
    Error, log_scan,
    reconciler::{Action, Context, Incoming, Reconciler, Resynced, report},
};

/// The label that ties a Kubernetes object to the course it was launched from.
pub const COURSE_LABEL: &str = "gantry.io/course";
/// The label that ties a Kubernetes object to the Gantry instance that made it: instances
/// can share a cluster, and never touch each other's objects.
pub const INSTANCE_LABEL: &str = "gantry.io/instance";

/// The label selector of one course's objects of one instance.
pub fn course_selector(instance: &str, course: &str) -> String {
    format!("{COURSE_LABEL}={course},{INSTANCE_LABEL}={instance}")
}

/// The label selector of every course object of one instance.
fn instance_selector(instance: &str) -> String {
    format!("{COURSE_LABEL},{INSTANCE_LABEL}={instance}")
}

/// Deletes the objects of deleted courses.
pub struct CourseCleanup;

impl CourseCleanup {
    pub const NAME: &'static str = "course_cleanup";
    pub const AGGREGATE: &'static str = CourseEvent::AGGREGATE;

    /// Deletes the live jobs of `jobs` whose course is one of `courses`, through the command
    /// path; returns how many went.
    async fn delete_jobs(
        ctx: &Context,
        jobs: &std::collections::HashMap<String, Job>,
        gone: impl Fn(&str) -> bool,
        cause: Option<&Envelope>,
    ) -> Result<usize, Error> {
        let mut deleted = 0;
        for (id, job) in jobs {
            let Some(launched) = job.launched.as_ref().filter(|_| job.is_live()) else {
                continue;
            };
            if !gone(&launched.course_id) {
                continue;
            }
            if report(
                &ctx.jobs,
                Self::NAME,
                id,
                &JobCommand::DeleteWithCourse,
                cause,
            )
            .await?
            .is_ok()
            {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Deletes both kinds of a course's objects; returns how many of each went.
    async fn delete_course(ctx: &Context, course: &str) -> Result<(usize, usize), Error> {
        let deployments = delete_all::<Deployment>(ctx, course).await?;
        let services = delete_all::<Service>(ctx, course).await?;
        Ok((deployments, services))
    }
}

impl Reconciler for CourseCleanup {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn reconcile<'a>(
        &'a self,
        incoming: &'a Incoming,
        ctx: &'a Context,
    ) -> BoxFuture<'a, Result<Action, Error>> {
        Box::pin(async move {
            if !matches!(incoming.event, Event::Course(CourseEvent::CourseDeleted(_))) {
                return Ok(Action::Done);
            }
            let course = incoming.envelope.aggregate_id.as_str();
            let jobs = log_scan::read_all::<Job>(ctx).await?;
            let deleted =
                Self::delete_jobs(ctx, &jobs, |c| c == course, Some(&incoming.envelope)).await?;
            let (deployments, services) = Self::delete_course(ctx, course).await?;
            info!(
                course,
                jobs = deleted,
                deployments,
                services,
                "deleted the course's jobs"
            );
            Ok(Action::Done)
        })
    }

    fn resync<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Resynced, Error>> {
        Box::pin(async move {
            let mut resynced = Resynced::default();
            let jobs = log_scan::read_all::<Job>(ctx).await?;
            let mut gone_courses = BTreeSet::new();
            for job in jobs.values().filter(|j| j.is_live()) {
                let Some(course) = job.launched.as_ref().map(|l| l.course_id.clone()) else {
                    continue;
                };
                if gone_courses.contains(&course) || !is_subject_token(&course) {
                    continue;
                }
                let events = ctx
                    .log
                    .read_after(CourseEvent::AGGREGATE, &course, 0)
                    .await?;
                match course_is_gone(&events) {
                    Ok(true) => {
                        gone_courses.insert(course);
                    }
                    Ok(false) => {}
                    Err(e) => resynced.failures.push(e),
                }
            }
            if !gone_courses.is_empty() {
                let deleted =
                    Self::delete_jobs(ctx, &jobs, |c| gone_courses.contains(c), None).await?;
                info!(
                    jobs = deleted,
                    "resync deleted the jobs of courses that are gone"
                );
                resynced.fixed += deleted;
            }
            let mut courses = labelled_courses::<Deployment>(ctx).await?;
            courses.extend(labelled_courses::<Service>(ctx).await?);
            for course in courses {
                if !is_subject_token(&course) {
                    warn!(
                        course,
                        "a course label that names no course of the log; left alone"
                    );
                    continue;
                }
                let events = ctx
                    .log
                    .read_after(CourseEvent::AGGREGATE, &course, 0)
                    .await?;
                match course_is_gone(&events) {
                    Ok(false) => {}
                    Ok(true) => {
                        let (deployments, services) = Self::delete_course(ctx, &course).await?;
                        info!(
                            course,
                            deployments,
                            services,
                            "resync deleted the jobs of a course that is gone"
                        );
                        resynced.fixed += deployments + services;
                    }
                    Err(e) if e.is_transient() => return Err(e),
                    Err(e) => resynced.failures.push(e),
                }
            }
            Ok(resynced)
        })
    }
}

/// Whether a course whose log holds `events` is gone: it was deleted, or this instance
/// never had it. A log this build cannot read is an error: its objects are kept.
fn course_is_gone(events: &[Recorded]) -> Result<bool, Error> {
    let Some(last) = events.last() else {
        return Ok(true);
    };
    let event = last.envelope.decode::<CourseEvent>().map_err(|e| {
        Error::Undecodable(format!(
            "course {} at sequence {}: {e}",
            last.envelope.aggregate_id, last.seq
        ))
    })?;
    Ok(matches!(event, CourseEvent::CourseDeleted(_)))
}

/// Whether `id` can be the last token of a NATS subject, as every course id of the log is.
fn is_subject_token(id: &str) -> bool {
    !id.is_empty()
        && !id
            .chars()
            .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace())
}

fn api<K>(ctx: &Context) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    Api::namespaced(ctx.cluster.client.clone(), &ctx.cluster.namespace)
}

/// The courses named by this instance's objects of kind `K`.
async fn labelled_courses<K>(ctx: &Context) -> Result<BTreeSet<String>, Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let objects = api::<K>(ctx)
        .list(&ListParams::default().labels(&instance_selector(&ctx.instance)))
        .await?;
    Ok(objects
        .items
        .iter()
        .filter_map(|o| o.meta().labels.as_ref()?.get(COURSE_LABEL).cloned())
        .collect())
}

/// Deletes every object of kind `K` of the course; absent ones are fine.
async fn delete_all<K>(ctx: &Context, course: &str) -> Result<usize, Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api = api::<K>(ctx);
    let objects = api
        .list(&ListParams::default().labels(&course_selector(&ctx.instance, course)))
        .await?;
    let mut deleted = 0;
    for name in objects.items.iter().filter_map(|o| o.meta().name.clone()) {
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => deleted += 1,
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::{Envelope, Meta, course};

    fn recorded(seq: u64, event: CourseEvent) -> Recorded {
        let meta: Meta = serde_json::from_value(serde_json::json!({
            "actor": "test", "request_id": "r", "occurred_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        Recorded {
            seq,
            envelope: Envelope::new("c1", &event, meta).unwrap(),
        }
    }

    fn created() -> CourseEvent {
        CourseEvent::CourseCreated(course::CourseCreated {
            owner: "o".into(),
            name: "n".into(),
            introduction: String::new(),
            image: String::new(),
            level: "basic".into(),
            gpu: 1,
            datasets: vec![],
        })
    }

    #[test]
    fn a_course_without_events_or_deleted_is_gone() {
        assert!(course_is_gone(&[]).unwrap());
        let deleted = CourseEvent::CourseDeleted(course::CourseDeleted {});
        assert!(course_is_gone(&[recorded(1, created()), recorded(4, deleted)]).unwrap());
    }

    #[test]
    fn a_live_course_is_not_gone() {
        let updated = CourseEvent::CourseUpdated(Default::default());
        assert!(!course_is_gone(&[recorded(1, created()), recorded(2, updated)]).unwrap());
    }

    #[test]
    fn an_unreadable_last_event_keeps_the_objects() {
        let mut last = recorded(2, created());
        last.envelope.event_type = "CourseExploded".into();
        let error = course_is_gone(&[recorded(1, created()), last]).unwrap_err();
        assert!(!error.is_transient());
    }

    #[test]
    fn selectors_name_the_course_and_the_instance() {
        assert_eq!(
            course_selector("prod", "c1"),
            "gantry.io/course=c1,gantry.io/instance=prod"
        );
        assert_eq!(
            instance_selector("prod"),
            "gantry.io/course,gantry.io/instance=prod"
        );
        assert!(is_subject_token("0b6f2c1e-4a51-4c1b-9d59-0c2c5c7b5d11"));
        assert!(!is_subject_token("a.b"));
        assert!(!is_subject_token(""));
    }
}
