//! When a course is deleted (`CourseDeleted`), its jobs' Deployments and Services go too,
//! as the course platform did. Jobs label their objects with [`COURSE_LABEL`].

use events::{CourseEvent, DomainEvent, Envelope, Event};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service};
use kube::{
    Api, Resource,
    api::{DeleteParams, ListParams},
};
use serde::de::DeserializeOwned;
use tracing::info;

use crate::{Cluster, consumer::Reconciler};

/// The label that ties a Kubernetes object to the course it was launched from.
pub const COURSE_LABEL: &str = "gantry.io/course";

pub struct CourseCleanup {
    cluster: Cluster,
}

impl CourseCleanup {
    pub fn new(cluster: Cluster) -> Self {
        Self { cluster }
    }

    /// Deletes every object of kind `K` labelled with the course; absent ones are fine.
    async fn delete_all<K>(&self, course: &str) -> Result<usize, kube::Error>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(self.cluster.client.clone(), &self.cluster.namespace);
        let objects = api
            .list(&ListParams::default().labels(&format!("{COURSE_LABEL}={course}")))
            .await?;
        let mut deleted = 0;
        for name in objects.items.iter().filter_map(|o| o.meta().name.clone()) {
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => deleted += 1,
                Err(kube::Error::Api(status)) if status.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }
}

impl Reconciler for CourseCleanup {
    const NAME: &'static str = "course_cleanup";
    const AGGREGATE: &'static str = CourseEvent::AGGREGATE;

    async fn reconcile(&self, envelope: &Envelope, event: &Event) -> Result<(), String> {
        if !matches!(event, Event::Course(CourseEvent::CourseDeleted(_))) {
            return Ok(());
        }
        let course = envelope.aggregate_id.as_str();
        let deployments = self
            .delete_all::<Deployment>(course)
            .await
            .map_err(|e| e.to_string())?;
        let services = self
            .delete_all::<Service>(course)
            .await
            .map_err(|e| e.to_string())?;
        info!(course, deployments, services, "deleted the course's jobs");
        Ok(())
    }
}
