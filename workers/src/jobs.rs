//! The job reconciler: makes the cluster hold the objects of every live job and none of a
//! deleted one.
//!
//! - `JobLaunched`: server-side apply of the job's Service, then its Deployment (so that
//!   the Service's NodePorts are there when the pod is ready; [`crate::job_objects`]), then `JobScheduled` through the command path. Applying twice
//!   (a redelivery after a crash, a second worker) changes nothing, so there is exactly one
//!   Deployment per job. A job whose course is gone by then is deleted instead
//!   (`JobDeleted`), and a job deleted while its objects were being made refuses
//!   `JobScheduled`: its objects are removed again, so none is left behind.
//! - `JobDeleted`: both objects deleted; already gone is success.
//! - A Kubernetes error is recorded on the job once per distinct error (`JobRetrying`, the
//!   list's `last_error`) and then handled by the one error policy: a transient one is
//!   retried with back-off; a refusal (a 4xx) fails the job (`JobFailed`) rather than
//!   parking its event, since trying again cannot help.
//! - Resync (at start, then every five minutes): every live job of the log whose
//!   Deployment or Service is missing is applied again, and every object labelled with this
//!   instance whose job is not live is deleted. Another instance's objects are never
//!   listed.

use std::collections::BTreeSet;

use command::job::{Job, JobCommand};
use events::{DomainEvent, Envelope, Event, JobEvent, job::JobLaunched};
use futures::future::BoxFuture;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service};
use kube::{
    Api, Resource,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};
use serde::{Serialize, de::DeserializeOwned};
use tracing::{info, warn};

use crate::{
    Error,
    job_objects::{self, JOB_LABEL, object_name},
    log_scan,
    reconciler::{Action, Context, Incoming, Reconciler, Resynced, report},
};

pub struct JobReconciler;

impl JobReconciler {
    pub const NAME: &'static str = "jobs";
    pub const AGGREGATE: &'static str = JobEvent::AGGREGATE;
}

fn api<K>(ctx: &Context) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    Api::namespaced(ctx.cluster.client.clone(), &ctx.cluster.namespace)
}

async fn apply<K>(ctx: &Context, object: &K) -> Result<(), kube::Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let name = object.meta().name.clone().unwrap_or_default();
    api::<K>(ctx)
        .patch(
            &name,
            &PatchParams::apply(job_objects::FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
        .map(|_| ())
}

async fn delete<K>(ctx: &Context, name: &str) -> Result<bool, Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    match api::<K>(ctx)
        .delete(name, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Removes both objects of job `id`; absent ones are fine.
async fn remove_objects(ctx: &Context, id: &str) -> Result<usize, Error> {
    let name = object_name(id);
    let deployment = delete::<Deployment>(ctx, &name).await?;
    let service = delete::<Service>(ctx, &name).await?;
    Ok(usize::from(deployment) + usize::from(service))
}

/// Makes the objects of launched job `id` exist and reports `JobScheduled`.
async fn schedule(
    ctx: &Context,
    id: &str,
    launched: &JobLaunched,
    cause: Option<&Envelope>,
) -> Result<(), Error> {
    let course = ctx
        .courses
        .load(&launched.course_id)
        .await
        .map_err(|e| match e {
            command::CommandError::Store(e) => Error::Log(e),
            other => Error::Invalid(other.to_string()),
        })?;
    if course.status != command::course::Status::Active {
        info!(job = id, course = %launched.course_id, "the job's course is gone: deleting the job");
        report(
            &ctx.jobs,
            JobReconciler::NAME,
            id,
            &JobCommand::DeleteWithCourse,
            cause,
        )
        .await?
        .ok();
        return Ok(());
    }
    let namespace = ctx.cluster.namespace.clone();
    let invalid = |e: serde_json::Error| Error::Invalid(format!("job {id}: {e}"));
    let deployment =
        job_objects::deployment(id, &ctx.instance, &namespace, launched).map_err(invalid)?;
    let service = job_objects::service(id, &ctx.instance, &namespace, launched).map_err(invalid)?;
    // The Service first: by the time the pod is ready, its endpoints can be read.
    let applied = async {
        apply(ctx, &service).await?;
        apply(ctx, &deployment).await
    }
    .await;
    if let Err(e) = applied {
        let error = Error::from(e);
        let said = error.describe();
        report(
            &ctx.jobs,
            JobReconciler::NAME,
            id,
            &JobCommand::RecordError {
                error: said.clone(),
            },
            cause,
        )
        .await?
        .ok();
        if error.is_transient() {
            return Err(error);
        }
        warn!(job = id, error = %said, "the cluster refused the job");
        report(
            &ctx.jobs,
            JobReconciler::NAME,
            id,
            &JobCommand::Fail {
                reason: format!("the cluster refused the job: {said}"),
            },
            cause,
        )
        .await?
        .ok();
        return Ok(());
    }
    let name = object_name(id);
    let scheduled = JobCommand::Schedule {
        namespace,
        deployment: name.clone(),
        service: name,
    };
    match report(&ctx.jobs, JobReconciler::NAME, id, &scheduled, cause).await? {
        Ok(_) => Ok(()),
        Err(refused) => {
            info!(job = id, %refused, "the job went while its objects were made: removing them");
            remove_objects(ctx, id).await.map(|_| ())
        }
    }
}

impl Reconciler for JobReconciler {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn reconcile<'a>(
        &'a self,
        incoming: &'a Incoming,
        ctx: &'a Context,
    ) -> BoxFuture<'a, Result<Action, Error>> {
        Box::pin(async move {
            let id = incoming.envelope.aggregate_id.as_str();
            match &incoming.event {
                Event::Job(JobEvent::JobLaunched(_)) => {
                    // Decided on the job as it is now: a job deleted since is not made.
                    let job = ctx.jobs.load(id).await.map_err(|e| match e {
                        command::CommandError::Store(e) => Error::Log(e),
                        other => Error::Invalid(other.to_string()),
                    })?;
                    match (&job.launched, job.is_live()) {
                        (Some(launched), true) => {
                            schedule(ctx, id, launched, Some(&incoming.envelope)).await?
                        }
                        _ => {
                            remove_objects(ctx, id).await?;
                        }
                    }
                }
                Event::Job(JobEvent::JobDeleted(_)) => {
                    let removed = remove_objects(ctx, id).await?;
                    info!(job = id, removed, "removed the deleted job's objects");
                }
                _ => {}
            }
            Ok(Action::Done)
        })
    }

    fn resync<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Resynced, Error>> {
        Box::pin(async move {
            let jobs = log_scan::read_all::<Job>(ctx).await?;
            let selector =
                ListParams::default().labels(&job_objects::instance_jobs_selector(&ctx.instance));
            let deployments = labelled_jobs(&api::<Deployment>(ctx).list(&selector).await?.items);
            let services = labelled_jobs(&api::<Service>(ctx).list(&selector).await?.items);
            let mut resynced = Resynced::default();
            for (id, job) in &jobs {
                let Some(launched) = job.launched.as_ref().filter(|_| job.is_live()) else {
                    continue;
                };
                if deployments.contains(id) && services.contains(id) {
                    continue;
                }
                match schedule(ctx, id, launched, None).await {
                    Ok(()) => resynced.fixed += 1,
                    Err(e) if e.is_transient() => return Err(e),
                    Err(e) => resynced.failures.push(e),
                }
            }
            for id in deployments.union(&services) {
                if jobs.get(id).is_some_and(Job::is_live) {
                    continue;
                }
                let removed = remove_objects(ctx, id).await?;
                info!(job = %id, removed, "resync removed the objects of a job that is gone");
                resynced.fixed += removed;
            }
            Ok(resynced)
        })
    }
}

/// The job ids named by these objects' labels.
fn labelled_jobs<K: Resource>(objects: &[K]) -> BTreeSet<String> {
    objects
        .iter()
        .filter_map(|o| o.meta().labels.as_ref()?.get(JOB_LABEL).cloned())
        .collect()
}
