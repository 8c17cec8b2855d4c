//! Workers against the Kubernetes simulator, through the real kube client.

use std::time::Duration;

use gantry::Roles;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service};
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use serde_json::json;

use crate::helpers::{eventually, fresh_instance, settings, spawn_with};

fn deployment(name: &str, course: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "gantry.io/course": course } },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "jupyter", "image": "nvidia/caffe:latest" }] }
            }
        }
    }))
    .unwrap()
}

fn service(name: &str, course: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "gantry.io/course": course } },
        "spec": { "type": "NodePort", "selector": { "app": name }, "ports": [{ "port": 8888 }] }
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_course_deletes_its_jobs_deployments_and_services() {
    let dir = std::env::temp_dir().join(format!("gantry-kubesim-{}", uuid::Uuid::new_v4()));
    let kubeconfig = dir.join("kubeconfig");
    let sim = kubesim::start(kubesim::Args {
        kubeconfig: Some(kubeconfig.clone()),
        ready_ms: 10,
        ..Default::default()
    })
    .await
    .expect("kubesim starts");
    let mut settings = settings(&fresh_instance());
    settings.kubeconfig = Some(kubeconfig.clone());
    let app = spawn_with(settings, Roles::DEV).await;

    let doomed = app.create_course("teacher", "doomed", "basic").await;
    let kept = app.create_course("teacher", "kept", "basic").await;
    let cluster = workers::Cluster::from_kubeconfig(&kubeconfig, "default")
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "default");
    let services: Api<Service> = Api::namespaced(cluster.client.clone(), "default");
    for (name, course) in [("job-a", &doomed), ("job-b", &doomed), ("job-c", &kept)] {
        deployments
            .create(&PostParams::default(), &deployment(name, course))
            .await
            .unwrap();
        services
            .create(&PostParams::default(), &service(name, course))
            .await
            .unwrap();
    }

    let (status, _) = app
        .send(
            app.admin(
                app.http
                    .delete(app.url(&format!("/v1/course/delete/{doomed}"))),
            ),
        )
        .await;
    assert_eq!(status, 200);
    let labelled =
        |course: &str| ListParams::default().labels(&format!("gantry.io/course={course}"));
    let gone = eventually(Duration::from_secs(20), || async {
        deployments
            .list(&labelled(&doomed))
            .await
            .unwrap()
            .items
            .is_empty()
            && services
                .list(&labelled(&doomed))
                .await
                .unwrap()
                .items
                .is_empty()
    })
    .await;
    assert!(
        gone,
        "the deleted course's deployments and services are gone"
    );
    assert_eq!(
        deployments
            .list(&labelled(&kept))
            .await
            .unwrap()
            .items
            .len(),
        1,
        "other courses keep theirs"
    );
    assert_eq!(
        services.list(&labelled(&kept)).await.unwrap().items.len(),
        1
    );

    drop(app);
    sim.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
