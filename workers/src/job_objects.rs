//! The Kubernetes objects of a job: one Deployment and one NodePort Service, both named
//! [`object_name`] from the job id so that a retry, a restart or a second worker finds and
//! reuses them (server-side apply), and labelled with the job, the instance, the owner and
//! the course.
//!
//! Decisions where the course platform is silent:
//! - Ports: every job serves Jupyter on 8888; an image whose name contains `digits` also
//!   serves DIGITS on 5000. The Service exposes each as a NodePort.
//! - Datasets are mounted read-only at `/datasets/<name>` from the claim `dataset-<name>`
//!   (volumes are named `dataset-<n>` by position: a dataset name may be longer than a
//!   volume name can be).
//! - GPUs are `nvidia.com/gpu` limits (none for a course of 0 GPUs); no CPU or memory
//!   request is set, as the platform set none.
//! - The owner label is the username lower-cased, every character a label value cannot
//!   hold replaced by `-`, cut to 54 characters and followed by `-` and 8 hex digits of a
//!   hash of the exact username, so `Jimmy@nchc` and `jimmy-nchc` never share a label.

use events::job::JobLaunched;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service};
use serde_json::{Value, json};

use crate::{COURSE_LABEL, INSTANCE_LABEL};

/// The label that ties a Kubernetes object to its job.
pub const JOB_LABEL: &str = "gantry.io/job-id";
/// The label that names the user a job runs for (see [`owner_label`]).
pub const OWNER_LABEL: &str = "gantry.io/owner";
/// The field manager of Gantry's server-side applies.
pub const FIELD_MANAGER: &str = "gantry";

const OWNER_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x51c3_08aa_6e2f_4d17_9b84_0f3e_a2c6_d951);

/// The name of both objects of job `id` (a UUID, so a valid DNS-1035 label with the prefix).
pub fn object_name(id: &str) -> String {
    format!("job-{id}")
}

/// The label selector of every job object of one instance.
pub fn instance_jobs_selector(instance: &str) -> String {
    format!("{JOB_LABEL},{INSTANCE_LABEL}={instance}")
}

/// `username` as a label value that no other username shares.
pub fn owner_label(username: &str) -> String {
    let mut clean: String = username
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(54)
        .collect();
    // A label value begins and ends with an alphanumeric character.
    while clean.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        clean.pop();
    }
    let clean = clean.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let hash = uuid::Uuid::new_v5(&OWNER_NAMESPACE, username.as_bytes())
        .simple()
        .to_string();
    if clean.is_empty() {
        format!("u-{}", &hash[..8])
    } else {
        format!("{clean}-{}", &hash[..8])
    }
}

/// The ports a job's image serves, with the label of each endpoint.
pub fn ports(image: &str) -> Vec<(u16, &'static str)> {
    let mut ports = vec![(8888, "jupyter")];
    if image.to_lowercase().contains("digits") {
        ports.push((5000, "digits"));
    }
    ports
}

/// The label of the endpoint of `port`: `jupyter`, `digits`, else the port number.
pub fn endpoint_label(port: i32) -> String {
    match port {
        8888 => "jupyter".into(),
        5000 => "digits".into(),
        other => other.to_string(),
    }
}

fn labels(id: &str, instance: &str, job: &JobLaunched) -> Value {
    json!({
        JOB_LABEL: id,
        INSTANCE_LABEL: instance,
        OWNER_LABEL: owner_label(&job.owner),
        COURSE_LABEL: job.course_id,
    })
}

/// The Deployment of job `id`.
pub fn deployment(
    id: &str,
    instance: &str,
    namespace: &str,
    job: &JobLaunched,
) -> Result<Deployment, serde_json::Error> {
    let labels = labels(id, instance, job);
    let selector = json!({ JOB_LABEL: id, INSTANCE_LABEL: instance });
    let ports: Vec<Value> = ports(&job.image)
        .into_iter()
        .map(|(port, name)| json!({ "name": name, "containerPort": port }))
        .collect();
    let mut container = json!({
        "name": "job",
        "image": job.image,
        "ports": ports,
        "volumeMounts": job.datasets.iter().enumerate().map(|(i, d)| json!({
            "name": format!("dataset-{i}"), "mountPath": format!("/datasets/{d}"), "readOnly": true,
        })).collect::<Vec<_>>(),
    });
    if job.gpu > 0 {
        container["resources"] = json!({ "limits": { "nvidia.com/gpu": job.gpu.to_string() } });
    }
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": object_name(id), "namespace": namespace, "labels": labels },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": selector },
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "containers": [container],
                    "volumes": job.datasets.iter().enumerate().map(|(i, d)| json!({
                        "name": format!("dataset-{i}"),
                        "persistentVolumeClaim": { "claimName": format!("dataset-{d}"), "readOnly": true },
                    })).collect::<Vec<_>>(),
                },
            },
        },
    }))
}

/// The NodePort Service of job `id`.
pub fn service(
    id: &str,
    instance: &str,
    namespace: &str,
    job: &JobLaunched,
) -> Result<Service, serde_json::Error> {
    let ports: Vec<Value> = ports(&job.image)
        .into_iter()
        .map(|(port, name)| json!({ "name": name, "port": port, "targetPort": port }))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": object_name(id), "namespace": namespace, "labels": labels(id, instance, job) },
        "spec": {
            "type": "NodePort",
            "selector": { JOB_LABEL: id, INSTANCE_LABEL: instance },
            "ports": ports,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> JobLaunched {
        JobLaunched {
            course_id: "c1".into(),
            owner: "jimmy@nchc".into(),
            name: "n".into(),
            introduction: String::new(),
            level: "basic".into(),
            image: "nvidia/digits:6.0".into(),
            gpu: 2,
            datasets: vec!["mnist".into()],
        }
    }

    #[test]
    fn owner_labels_are_valid_and_never_shared() {
        let a = owner_label("jimmy@nchc");
        assert!(a.starts_with("jimmy-nchc-"), "{a}");
        assert_ne!(a, owner_label("jimmy-nchc"));
        assert_ne!(owner_label("Jimmy"), owner_label("jimmy"));
        for name in ["@@@", &"x".repeat(300), "-a-"] {
            let label = owner_label(name);
            assert!(label.len() <= 63, "{label}");
            assert!(
                label.starts_with(|c: char| c.is_ascii_alphanumeric()),
                "{label}"
            );
            assert!(
                label.ends_with(|c: char| c.is_ascii_alphanumeric()),
                "{label}"
            );
        }
    }

    #[test]
    fn the_deployment_runs_the_image_with_its_gpus_and_datasets() {
        let d = serde_json::to_value(deployment("1", "prod", "default", &job()).unwrap()).unwrap();
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], "nvidia/digits:6.0");
        assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], "2");
        assert_eq!(c["volumeMounts"][0]["mountPath"], "/datasets/mnist");
        let v = &d["spec"]["template"]["spec"]["volumes"][0];
        assert_eq!(v["persistentVolumeClaim"]["claimName"], "dataset-mnist");
        assert_eq!(d["metadata"]["name"], "job-1");
        assert_eq!(d["metadata"]["labels"][JOB_LABEL], "1");
        assert_eq!(
            d["spec"]["template"]["metadata"]["labels"][INSTANCE_LABEL],
            "prod"
        );
        let s = serde_json::to_value(service("1", "prod", "default", &job()).unwrap()).unwrap();
        assert_eq!(s["spec"]["type"], "NodePort");
        assert_eq!(s["spec"]["ports"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn endpoints_are_labelled_by_port() {
        assert_eq!(endpoint_label(8888), "jupyter");
        assert_eq!(endpoint_label(5000), "digits");
        assert_eq!(endpoint_label(6006), "6006");
        assert_eq!(
            ports("tensorflow/tensorflow:1.5.1"),
            vec![(8888, "jupyter")]
        );
    }
}
