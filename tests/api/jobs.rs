//! Jobs from the course door, run by `gantry work` on the Kubernetes simulator through the
//! real kube client: launch, watch, delete; datasets, images and the cluster health check.

use std::time::Duration;

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service};
use kube::{Api, api::ListParams};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, eventually, fresh_instance, settings, spawn_with},
    workers::{NO_WORK, SimDir, WorkProcess, free_addr, read, start_sim},
};

/// Creates a course of `owner` and returns its id.
async fn course(app: &TestApp, name: &str, image: &str, gpu: u32, datasets: &[&str]) -> String {
    let (status, body) = app
        .send(
            app.admin(app.http.post(app.url("/v1/course/create"))).body(
                json!({
                    "user": "jimmy@nchc", "name": name, "introduction": "intro", "image": image,
                    "level": "basic", "GPU": gpu, "datasets": datasets
                })
                .to_string(),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.courses_of("jimmy@nchc")
        .await
        .iter()
        .find(|c| c["name"] == name)
        .and_then(|c| c["id"].as_str())
        .expect("the course is listed")
        .to_string()
}

async fn launch(app: &TestApp, course: &str) -> (u16, Value) {
    app.send(
        app.admin(app.http.post(app.url("/v1/job/launch")))
            .body(json!({ "course_id": course, "user": "jimmy@nchc" }).to_string()),
    )
    .await
}

/// Launches a job of `course` for jimmy and returns its id.
async fn launched(app: &TestApp, course: &str) -> String {
    let (status, body) = launch(app, course).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["error"], false);
    assert_eq!(body["job"]["ready"], false, "{body}");
    assert_eq!(body["job"]["status"], "Created", "{body}");
    body["job"]["job_id"].as_str().expect("job id").to_string()
}

async fn jobs_of(app: &TestApp, user: &str) -> Vec<Value> {
    let (status, body) = app
        .send(
            app.admin(app.http.post(app.url("/v1/job/list")))
                .body(json!({ "user": user }).to_string()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["jobs"].as_array().expect("jobs").clone()
}

async fn job(app: &TestApp, id: &str) -> Option<Value> {
    jobs_of(app, "jimmy@nchc")
        .await
        .into_iter()
        .find(|j| j["id"] == id)
}

/// Waits until job `id` is listed with `status`; returns it.
async fn wait_for_status(app: &TestApp, id: &str, status: &str, within: Duration) -> Value {
    let reached = eventually(within, || async {
        job(app, id).await.is_some_and(|j| j["status"] == status)
    })
    .await;
    let last = job(app, id).await;
    assert!(reached, "job {id} never became {status}: {last:?}");
    last.expect("listed")
}

/// The datasets read model is fed by the worker's PVC watcher: wait for it.
async fn wait_for_datasets(app: &TestApp) {
    let seen = eventually(Duration::from_secs(30), || async {
        let (status, body) = app
            .send(app.admin(app.http.get(app.url("/v1/datasets/"))))
            .await;
        status == 200 && body["datasets"].as_array().is_some_and(|d| d.len() == 3)
    })
    .await;
    assert!(seen, "the simulator's datasets were never listed");
}

struct Cluster {
    deployments: Api<Deployment>,
    services: Api<Service>,
}

impl Cluster {
    async fn new(dir: &SimDir) -> Self {
        let cluster = workers::Cluster::from_kubeconfig(&dir.kubeconfig(), "default")
            .await
            .unwrap();
        Self {
            deployments: Api::namespaced(cluster.client.clone(), "default"),
            services: Api::namespaced(cluster.client, "default"),
        }
    }

    /// The Deployments and Services of one job.
    async fn of_job(&self, id: &str) -> (Vec<Deployment>, Vec<Service>) {
        let selector = ListParams::default().labels(&format!("gantry.io/job-id={id}"));
        (
            self.deployments.list(&selector).await.unwrap().items,
            self.services.list(&selector).await.unwrap().items,
        )
    }

    async fn counts(&self, id: &str) -> (usize, usize) {
        let (d, s) = self.of_job(id).await;
        (d.len(), s.len())
    }

    /// How many job Deployments an instance has.
    async fn deployments_of(&self, instance: &str) -> usize {
        let selector = ListParams::default()
            .labels(&format!("gantry.io/job-id,gantry.io/instance={instance}"));
        self.deployments.list(&selector).await.unwrap().items.len()
    }
}

fn with_cluster(dir: &SimDir) -> gantry::Settings {
    let mut settings = settings(&fresh_instance());
    settings.kubeconfig = Some(dir.kubeconfig());
    settings
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_runs_fails_waits_and_goes_as_the_cluster_says() {
    let dir = SimDir::new();
    let sim = start_sim(&dir, free_addr(), false).await;
    let settings = with_cluster(&dir);
    let instance = settings.instance.clone();
    let app = spawn_with(settings, gantry::Roles::DEV).await;
    let cluster = Cluster::new(&dir).await;
    wait_for_datasets(&app).await;

    // Health and datasets come from the read models the watchers feed.
    let (status, body) = app
        .send(app.http.get(app.url("/v1/health/kubernetes")))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["message"],
        json!([{ "name": "gpu-node-1", "status": "Ready" }, { "name": "gpu-node-2", "status": "Ready" }])
    );
    let (status, auth) = app
        .send(app.admin(app.http.get(app.url("/v1/health/kubernetesAuth/"))))
        .await;
    assert_eq!((status, &auth), (200, &body));
    let (status, body) = app
        .send(app.http.get(app.url("/v1/health/kubernetesAuth")))
        .await;
    assert_eq!(status, 401, "{body}");
    let (_, body) = app
        .send(app.admin(app.http.get(app.url("/v1/datasets"))))
        .await;
    assert_eq!(
        body,
        json!({ "error": false, "datasets": [
            { "label": "caltech256", "value": "caltech256" },
            { "label": "cifar-10", "value": "cifar-10" },
            { "label": "mnist", "value": "mnist" },
        ]})
    );

    // Launch → Deployment and Service with the image, GPUs, volumes and labels → Ready.
    let digits = course(
        &app,
        "digits",
        "nvidia/digits:6.0",
        2,
        &["mnist", "cifar-10"],
    )
    .await;
    let id = launched(&app, &digits).await;
    let listed = job(&app, &id).await.expect("listed at once");
    assert_eq!(listed["course_id"], digits.as_str());
    assert_eq!(listed["name"], "digits");
    assert_eq!(listed["image"], "nvidia/digits:6.0");
    assert_eq!(listed["gpu"], 2);
    assert_eq!(listed["dataset"], json!(["mnist", "cifar-10"]));
    let ready = wait_for_status(&app, &id, "Ready", Duration::from_secs(30)).await;
    assert_eq!(ready["reason"], "");
    let (deployments, services) = cluster.of_job(&id).await;
    assert_eq!((deployments.len(), services.len()), (1, 1));
    let d = serde_json::to_value(&deployments[0]).unwrap();
    assert_eq!(d["metadata"]["name"], format!("job-{id}"));
    let labels = &d["metadata"]["labels"];
    assert_eq!(labels["gantry.io/job-id"], id.as_str());
    assert_eq!(labels["gantry.io/instance"], instance.as_str());
    let owner = labels["gantry.io/owner"].as_str().unwrap();
    assert!(owner.starts_with("jimmy-nchc-"), "{owner}");
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["image"], "nvidia/digits:6.0");
    assert_eq!(
        pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"],
        "2"
    );
    let claims: Vec<&str> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["persistentVolumeClaim"]["claimName"].as_str().unwrap())
        .collect();
    assert_eq!(claims, ["dataset-mnist", "dataset-cifar-10"]);
    let s = serde_json::to_value(&services[0]).unwrap();
    assert_eq!(s["spec"]["type"], "NodePort");
    assert_eq!(s["metadata"]["labels"]["gantry.io/owner"], owner);
    let node_ports: Vec<(i64, i64)> = s["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["port"].as_i64().unwrap(), p["nodePort"].as_i64().unwrap()))
        .collect();
    let service = ready["service"].as_array().unwrap();
    assert_eq!(service.len(), 2, "{ready}");
    for (endpoint, (port, node_port)) in service.iter().zip(&node_ports) {
        let label = if *port == 8888 { "jupyter" } else { "digits" };
        assert_eq!(endpoint["label"], label);
        let value = endpoint["value"].as_str().unwrap();
        assert!(
            value.starts_with("http://") && value.ends_with(&format!(":{node_port}")),
            "{value}"
        );
    }

    // A failing image → Failed with its reason; too many GPUs → Pending, and it says why.
    let broken = course(&app, "broken", "example/fail-image:1", 1, &[]).await;
    let failed = launched(&app, &broken).await;
    let greedy = course(&app, "greedy", "nvidia/caffe:latest", 64, &[]).await;
    let pending = launched(&app, &greedy).await;
    let failed = wait_for_status(&app, &failed, "Failed", Duration::from_secs(30)).await;
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("example/fail-image:1"),
        "{failed}"
    );
    let says_why = eventually(Duration::from_secs(30), || async {
        job(&app, &pending).await.is_some_and(|j| {
            j["status"] == "Pending"
                && j["reason"]
                    .as_str()
                    .unwrap()
                    .contains("Insufficient nvidia.com/gpu")
        })
    })
    .await;
    assert!(says_why, "{:?}", job(&app, &pending).await);

    // Someone else may neither list nor delete jimmy's jobs.
    let (status, body) = app
        .send(
            app.admin(app.http.post(app.url("/api/v2/user")))
                .json(&json!({ "username": "eve", "password": "a-secret-word", "admin": false })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let eve = app.login("eve", "a-secret-word", 3600).await;
    let as_eve = |r: reqwest::RequestBuilder| r.header("Authorization", format!("Bearer {eve}"));
    let (status, body) = app
        .send(as_eve(app.http.post(app.url("/v1/job/list"))).body(r#"{"user":"jimmy@nchc"}"#))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], true);
    let (status, body) = app
        .send(as_eve(
            app.http.delete(app.url(&format!("/v1/job/delete/{id}"))),
        ))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app
        .send(as_eve(app.http.post(app.url("/v1/job/list"))).body(r#"{"user":"eve"}"#))
        .await;
    assert_eq!((status, body), (200, json!({ "error": false, "jobs": [] })));

    // Delete → gone from the list at once, its objects soon.
    let (status, body) = app
        .send(app.admin(app.http.delete(app.url(&format!("/v1/job/delete/{id}/")))))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], format!("job {id} is deleted successfully"));
    assert!(job(&app, &id).await.is_none());
    let gone = eventually(Duration::from_secs(20), || async {
        cluster.counts(&id).await == (0, 0)
    })
    .await;
    assert!(gone, "the deleted job's objects are gone");
    let (status, body) = app
        .send(app.admin(app.http.delete(app.url(&format!("/v1/job/delete/{id}")))))
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app
        .send(app.admin(app.http.delete(app.url("/v1/job/delete/"))))
        .await;
    assert_eq!(
        (status, body["message"].clone()),
        (400, json!("Job Id is empty"))
    );

    // Course deleted → its jobs and their objects go.
    let (status, body) = app
        .send(
            app.admin(
                app.http
                    .delete(app.url(&format!("/v1/course/delete/{broken}"))),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let failed_id = failed["id"].as_str().unwrap().to_string();
    let went = eventually(Duration::from_secs(20), || async {
        job(&app, &failed_id).await.is_none() && cluster.counts(&failed_id).await == (0, 0)
    })
    .await;
    assert!(went, "the deleted course's job and objects are gone");
    assert!(
        job(&app, &pending).await.is_some(),
        "another course's job stays"
    );

    // Bad input: the course envelope, 4xx, and nothing made in the cluster.
    let before = cluster.deployments_of(&instance).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let (status, body) = launch(&app, &unknown).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({ "error": true, "message": "Course Id is not found" })
        )
    );
    let (status, body) = launch(&app, "not-a-uuid").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .send(
            app.admin(app.http.post(app.url("/v1/job/launch")))
                .body(json!({ "course_id": digits, "user": "" }).to_string()),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({ "error": true, "message": "user field in request cannot be empty" })
        )
    );
    let (status, body) = app
        .send(
            app.admin(app.http.post(app.url("/v1/job/launch")))
                .body("{not json"),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Failed to parse spec request request")
    );
    let no_claim = course(&app, "no claim", "nvidia/caffe:latest", 1, &["imagenet"]).await;
    let (status, body) = launch(&app, &no_claim).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("dataset imagenet"),
        "{body}"
    );
    let (status, body) = app
        .send(app.http.post(app.url("/v1/job/launch")).body("{}"))
        .await;
    assert_eq!(
        (status, body["message"].clone()),
        (401, json!("Authorization header is missing"))
    );
    let (status, body) = app
        .send(
            app.admin(app.http.post(app.url("/v1/job/list")))
                .body(r#"{"user":""}"#),
        )
        .await;
    assert_eq!(
        (status, body),
        (400, json!({ "error": true, "message": "Empty user name" }))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        cluster.deployments_of(&instance).await,
        before,
        "no object was made"
    );

    drop(app);
    sim.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_change_the_images_everyone_signed_in_lists_them() {
    let app = spawn_with(settings(&fresh_instance()), NO_WORK).await;
    let (status, body) = app
        .send(app.admin(app.http.get(app.url("/v1/images/"))))
        .await;
    assert_eq!(
        (status, body),
        (200, json!({ "error": false, "images": [] }))
    );
    for image in [
        "tensorflow/tensorflow:1.5.1",
        "nvidia/digits5.0",
        "nvidia/digits5.0",
    ] {
        let (status, body) = app
            .send(
                app.admin(app.http.post(app.url("/v1/images")))
                    .body(json!({ "image": image }).to_string()),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], format!("Image {image} added successfully"));
    }
    let (_, body) = app
        .send(app.admin(app.http.get(app.url("/v1/images"))))
        .await;
    assert_eq!(
        body["images"],
        json!([
            { "label": "nvidia/digits5.0", "value": "nvidia/digits5.0" },
            { "label": "tensorflow/tensorflow:1.5.1", "value": "tensorflow/tensorflow:1.5.1" },
        ])
    );
    let (status, _) = app
        .send(
            app.admin(app.http.post(app.url("/api/v2/user"))).json(
                &json!({ "username": "student", "password": "a-secret-word", "admin": false }),
            ),
        )
        .await;
    assert_eq!(status, 201);
    let student = app.login("student", "a-secret-word", 3600).await;
    let bearer = format!("Bearer {student}");
    let (status, body) = app
        .send(
            app.http
                .get(app.url("/v1/images/"))
                .header("Authorization", &bearer),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .send(
            app.http
                .delete(app.url("/v1/images/"))
                .header("Authorization", &bearer)
                .body(r#"{"image":"nvidia/digits5.0"}"#),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app
        .send(
            app.admin(app.http.delete(app.url("/v1/images/")))
                .body(r#"{"image":"nvidia/digits5.0"}"#),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .send(
            app.admin(app.http.delete(app.url("/v1/images/")))
                .body(r#"{"image":"nvidia/digits5.0"}"#),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app
        .send(
            app.admin(app.http.post(app.url("/v1/images/")))
                .body(r#"{"image":"bad image"}"#),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app.send(app.http.get(app.url("/v1/images/"))).await;
    assert_eq!(status, 401, "{body}");
    // Without a worker, no node was ever seen: the health check says so.
    let (status, body) = app
        .send(app.http.get(app.url("/v1/health/kubernetes")))
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("List Node fail")
    );
}

/// A job's log and objects are the test's to look at after `gantry work` processes come and
/// go.
async fn until_ready(app: &TestApp, ids: &[String], within: Duration) -> bool {
    eventually(within, || async {
        let jobs = jobs_of(app, "jimmy@nchc").await;
        ids.iter().all(|id| {
            jobs.iter()
                .any(|j| j["id"] == id.as_str() && j["status"] == "Ready")
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_before_its_kubernetes_call_leaves_the_job_to_the_next_one() {
    let dir = SimDir::new();
    std::fs::create_dir_all(&dir.0).unwrap();
    let addr = free_addr();
    // The simulator writes the kubeconfig, then goes away: the first worker's calls fail.
    let sim = start_sim(&dir, addr, true).await;
    let settings = with_cluster(&dir);
    let instance = settings.instance.clone();
    let app = spawn_with(settings.clone(), NO_WORK).await;
    let log = dir.0.join("work-1.log");
    let mut first = WorkProcess::start(&settings, &log);
    wait_for_datasets(&app).await;
    sim.shutdown().await.unwrap();

    let caffe = course(&app, "caffe", "nvidia/caffe:latest", 1, &["mnist"]).await;
    let id = launched(&app, &caffe).await;
    // It took the JobLaunched and is retrying its Kubernetes call: SIGKILL it there.
    let retrying = eventually(Duration::from_secs(30), || async {
        read(&log).contains("transient failure; retrying")
    })
    .await;
    assert!(retrying, "{}", read(&log));
    let noted = eventually(Duration::from_secs(10), || async {
        job(&app, &id).await.is_some_and(|j| j["last_error"] != "")
    })
    .await;
    assert!(
        noted,
        "the job shows its last error: {:?}",
        job(&app, &id).await
    );
    assert!(first.is_running());
    drop(first);

    let sim = start_sim(&dir, addr, true).await;
    let second = WorkProcess::start(&settings, &dir.0.join("work-2.log"));
    assert!(
        until_ready(&app, std::slice::from_ref(&id), Duration::from_secs(60)).await,
        "{:?}",
        job(&app, &id).await
    );
    let cluster = Cluster::new(&dir).await;
    assert_eq!(cluster.counts(&id).await, (1, 1));
    assert_eq!(
        cluster.deployments_of(&instance).await,
        1,
        "exactly one Deployment"
    );
    assert_eq!(
        job(&app, &id).await.unwrap()["last_error"],
        "",
        "cleared once scheduled"
    );
    drop(second);
    drop(app);
    sim.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workers_make_one_deployment_per_job() {
    let dir = SimDir::new();
    std::fs::create_dir_all(&dir.0).unwrap();
    let sim = start_sim(&dir, free_addr(), false).await;
    let settings = with_cluster(&dir);
    let instance = settings.instance.clone();
    let app = spawn_with(settings.clone(), NO_WORK).await;
    let one = WorkProcess::start(&settings, &dir.0.join("work-1.log"));
    let two = WorkProcess::start(&settings, &dir.0.join("work-2.log"));
    wait_for_datasets(&app).await;
    let caffe = course(&app, "caffe", "nvidia/caffe:latest", 0, &["mnist"]).await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(launched(&app, &caffe).await);
    }
    assert!(
        until_ready(&app, &ids, Duration::from_secs(60)).await,
        "{:?}",
        jobs_of(&app, "jimmy@nchc").await
    );
    let cluster = Cluster::new(&dir).await;
    for id in &ids {
        assert_eq!(cluster.counts(id).await, (1, 1), "job {id}");
    }
    assert_eq!(cluster.deployments_of(&instance).await, ids.len());
    // Both watched and reported; the log holds each job's Ready once.
    for id in &ids {
        let readies = app
            .events_of("job", id)
            .await
            .iter()
            .filter(|e| e["type"] == "JobReady")
            .count();
        assert_eq!(readies, 1, "job {id}");
    }
    drop((one, two));
    drop(app);
    sim.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_launched_while_the_cluster_is_down_for_a_minute_then_complete() {
    let dir = SimDir::new();
    std::fs::create_dir_all(&dir.0).unwrap();
    let addr = free_addr();
    let sim = start_sim(&dir, addr, true).await;
    let settings = with_cluster(&dir);
    let app = spawn_with(settings.clone(), NO_WORK).await;
    let log = dir.0.join("work.log");
    let mut worker = WorkProcess::start(&settings, &log);
    wait_for_datasets(&app).await;
    let caffe = course(&app, "caffe", "nvidia/caffe:latest", 1, &["mnist"]).await;

    sim.shutdown().await.unwrap();
    let ids = vec![launched(&app, &caffe).await, launched(&app, &caffe).await];
    tokio::time::sleep(Duration::from_secs(60)).await;
    for id in &ids {
        let waiting = job(&app, id).await.expect("listed");
        assert_eq!(waiting["status"], "Created", "{waiting}");
    }
    assert!(worker.is_running(), "{}", read(&log));
    let sim = start_sim(&dir, addr, true).await;
    assert!(
        until_ready(&app, &ids, Duration::from_secs(90)).await,
        "{:?}\n{}",
        jobs_of(&app, "jimmy@nchc").await,
        read(&log)
    );
    let text = read(&log);
    for give_up in ["permanent failure", "event parked"] {
        assert!(!text.contains(give_up), "no {give_up:?} line: {text}");
    }
    drop(worker);
    drop(app);
    sim.shutdown().await.unwrap();
}
