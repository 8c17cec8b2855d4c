//! Workers against the Kubernetes simulator, through the real kube client.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use gantry::{Roles, Settings};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service};
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use serde_json::json;

use crate::helpers::{TestApp, eventually, fresh_instance, settings, spawn_with};

/// Serves HTTP and projects, but runs no worker.
pub(crate) const NO_WORK: Roles = Roles {
    serve: true,
    project: true,
    work: false,
};

fn labels(course: &str, instance: &str) -> serde_json::Value {
    json!({ "gantry.io/course": course, "gantry.io/instance": instance })
}

fn deployment(name: &str, course: &str, instance: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": { "name": name, "labels": labels(course, instance) },
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

fn service(name: &str, course: &str, instance: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": { "name": name, "labels": labels(course, instance) },
        "spec": { "type": "NodePort", "selector": { "app": name }, "ports": [{ "port": 8888 }] }
    }))
    .unwrap()
}

/// A simulator's files: its kubeconfig and, for restarts, its state directory.
pub(crate) struct SimDir(pub(crate) PathBuf);

impl SimDir {
    pub(crate) fn new() -> Self {
        Self(std::env::temp_dir().join(format!("gantry-kubesim-{}", uuid::Uuid::new_v4())))
    }
    pub(crate) fn kubeconfig(&self) -> PathBuf {
        self.0.join("kubeconfig")
    }
    fn state(&self) -> PathBuf {
        self.0.join("state")
    }
}

impl Drop for SimDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) async fn start_sim(dir: &SimDir, addr: SocketAddr, persistent: bool) -> kubesim::Handle {
    kubesim::start(kubesim::Args {
        addr,
        kubeconfig: Some(dir.kubeconfig()),
        state_dir: persistent.then(|| dir.state()),
        ready_ms: 10,
        ..Default::default()
    })
    .await
    .expect("kubesim starts")
}

/// The jobs namespace's Deployments and Services, as a test sees them.
struct Objects {
    deployments: Api<Deployment>,
    services: Api<Service>,
}

impl Objects {
    async fn new(kubeconfig: &Path) -> Self {
        let cluster = workers::Cluster::from_kubeconfig(kubeconfig, "default")
            .await
            .unwrap();
        Self {
            deployments: Api::namespaced(cluster.client.clone(), "default"),
            services: Api::namespaced(cluster.client, "default"),
        }
    }

    async fn create(&self, name: &str, course: &str, instance: &str) {
        self.deployments
            .create(&PostParams::default(), &deployment(name, course, instance))
            .await
            .unwrap();
        self.services
            .create(&PostParams::default(), &service(name, course, instance))
            .await
            .unwrap();
    }

    /// How many Deployments and Services the course has in `instance`.
    async fn count(&self, course: &str, instance: &str) -> (usize, usize) {
        self.try_count(course, instance)
            .await
            .expect("the simulator answers")
    }

    /// Like [`Objects::count`], `None` while the simulator does not answer.
    async fn try_count(&self, course: &str, instance: &str) -> Option<(usize, usize)> {
        let selector = ListParams::default().labels(&workers::course_selector(instance, course));
        Some((
            self.deployments.list(&selector).await.ok()?.items.len(),
            self.services.list(&selector).await.ok()?.items.len(),
        ))
    }
}

async fn delete_course(app: &TestApp, id: &str) {
    let (status, body) = app
        .send(app.admin(app.http.delete(app.url(&format!("/v1/course/delete/{id}")))))
        .await;
    assert_eq!(status, 200, "{body}");
}

pub(crate) fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_course_deletes_its_jobs_deployments_and_services() {
    let dir = SimDir::new();
    let sim = start_sim(&dir, free_addr(), false).await;
    let mut settings = settings(&fresh_instance());
    settings.kubeconfig = Some(dir.kubeconfig());
    let instance = settings.instance.clone();
    let app = spawn_with(settings, Roles::DEV).await;

    let doomed = app.create_course("teacher", "doomed", "basic").await;
    let kept = app.create_course("teacher", "kept", "basic").await;
    let objects = Objects::new(&dir.kubeconfig()).await;
    for (name, course) in [("job-a", &doomed), ("job-b", &doomed), ("job-c", &kept)] {
        objects.create(name, course, &instance).await;
    }

    delete_course(&app, &doomed).await;
    let gone = eventually(Duration::from_secs(20), || async {
        objects.count(&doomed, &instance).await == (0, 0)
    })
    .await;
    assert!(
        gone,
        "the deleted course's deployments and services are gone"
    );
    assert_eq!(
        objects.count(&kept, &instance).await,
        (1, 1),
        "other courses keep theirs"
    );

    drop(app);
    sim.shutdown().await.unwrap();
}

/// A `gantry work` process whose output goes to a file; killed when dropped, also when the
/// test fails.
pub(crate) struct WorkProcess(std::process::Child);

impl WorkProcess {
    pub(crate) fn start(settings: &Settings, log: &Path) -> Self {
        let out = std::fs::File::create(log).unwrap();
        let err = out.try_clone().unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
            .arg("work")
            .env("GANTRY_INSTANCE", &settings.instance)
            .env("GANTRY_NATS_URL", &settings.nats_url)
            .env("GANTRY_DATABASE_URL", &settings.database_url)
            .env(
                "KUBECONFIG",
                settings.kubeconfig.as_ref().expect("a kubeconfig"),
            )
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("gantry work starts");
        Self(child)
    }

    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for WorkProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_down_for_three_minutes_still_loses_every_deleted_courses_jobs() {
    let dir = SimDir::new();
    std::fs::create_dir_all(&dir.0).unwrap();
    let addr = free_addr();
    let sim = start_sim(&dir, addr, true).await;
    let mut settings = settings(&fresh_instance());
    settings.kubeconfig = Some(dir.kubeconfig());
    let instance = settings.instance.clone();
    let app = spawn_with(settings.clone(), NO_WORK).await;
    let log = dir.0.join("work.log");
    let mut worker = WorkProcess::start(&settings, &log);
    let consuming = eventually(Duration::from_secs(30), || async {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("worker consuming"))
    })
    .await;
    assert!(consuming, "the worker started: {}", read(&log));

    let mut doomed = Vec::new();
    for i in 0..3 {
        doomed.push(
            app.create_course("teacher", &format!("doomed {i}"), "basic")
                .await,
        );
    }
    let kept = app.create_course("teacher", "kept", "basic").await;
    let objects = Objects::new(&dir.kubeconfig()).await;
    for (i, course) in doomed.iter().enumerate() {
        objects
            .create(&format!("job-{i}-a"), course, &instance)
            .await;
        objects
            .create(&format!("job-{i}-b"), course, &instance)
            .await;
    }
    objects.create("job-kept", &kept, &instance).await;

    // An upgrade of the control plane: the API server is away for three minutes, longer
    // than any fixed redelivery budget would last.
    sim.shutdown().await.unwrap();
    for course in &doomed {
        delete_course(&app, course).await;
    }
    tokio::time::sleep(Duration::from_secs(180)).await;
    assert!(
        worker.is_running(),
        "the worker is still up: {}",
        read(&log)
    );
    let sim = start_sim(&dir, addr, true).await;

    let all_gone = eventually(Duration::from_secs(90), || async {
        for course in &doomed {
            if objects.try_count(course, &instance).await != Some((0, 0)) {
                return false;
            }
        }
        true
    })
    .await;
    let text = read(&log);
    assert!(
        all_gone,
        "every deleted course's deployments and services are gone: {text}"
    );
    assert_eq!(
        objects.count(&kept, &instance).await,
        (1, 1),
        "the course that stays keeps its job"
    );
    assert!(
        text.contains("transient failure; retrying"),
        "the worker retried: {text}"
    );
    for give_up in ["giving up", "permanent failure", "event parked"] {
        assert!(!text.contains(give_up), "no {give_up:?} line: {text}");
    }

    drop(worker);
    drop(app);
    sim.shutdown().await.unwrap();
}

pub(crate) fn read(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_resync_at_start_deletes_what_a_missed_deletion_left_behind() {
    let dir = SimDir::new();
    let sim = start_sim(&dir, free_addr(), false).await;
    let mut settings = settings(&fresh_instance());
    settings.kubeconfig = Some(dir.kubeconfig());
    let instance = settings.instance.clone();
    let app = spawn_with(settings.clone(), NO_WORK).await;

    let doomed = app.create_course("teacher", "doomed", "basic").await;
    let live = app.create_course("teacher", "live", "basic").await;
    let objects = Objects::new(&dir.kubeconfig()).await;
    objects.create("job-doomed", &doomed, &instance).await;
    objects.create("job-live", &live, &instance).await;
    // Another instance sharing the cluster, with a course of the same id: not ours.
    objects.create("job-other", &doomed, "other_instance").await;
    // Objects of a course this instance's log never had.
    let stray = uuid::Uuid::new_v4().to_string();
    objects.create("job-stray", &stray, &instance).await;
    delete_course(&app, &doomed).await;

    // The deletion was consumed by a worker that did not do its work: the worker that
    // starts now is never handed that event.
    let js = app.jetstream().await;
    let stream = js
        .get_stream(format!("{}_EVENTS", instance.to_uppercase()))
        .await
        .unwrap();
    let name = format!("{instance}_course_cleanup");
    let mut consumer = stream
        .get_or_create_consumer(
            &name,
            pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: format!("{instance}.ev.course.>"),
                ack_policy: AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                deliver_policy: DeliverPolicy::New,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(consumer.info().await.unwrap().num_pending, 0);

    let worker = gantry::start(&settings, Roles::WORK)
        .await
        .expect("worker starts");
    let gone = eventually(Duration::from_secs(30), || async {
        objects.count(&doomed, &instance).await == (0, 0)
            && objects.count(&stray, &instance).await == (0, 0)
    })
    .await;
    assert!(gone, "the deleted course's and the stray objects are gone");
    assert_eq!(objects.count(&live, &instance).await, (1, 1), "live course");
    assert_eq!(
        objects.count(&doomed, "other_instance").await,
        (1, 1),
        "another instance's objects are left alone"
    );

    worker.shutdown().await;
    drop(app);
    sim.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_and_a_refused_event_are_parked_and_the_worker_goes_on() {
    let dir = SimDir::new();
    let sim = start_sim(&dir, free_addr(), false).await;
    let mut settings = settings(&fresh_instance());
    settings.kubeconfig = Some(dir.kubeconfig());
    let instance = settings.instance.clone();
    let app = spawn_with(settings, Roles::DEV).await;

    let doomed = app.create_course("teacher", "doomed", "basic").await;
    let objects = Objects::new(&dir.kubeconfig()).await;
    objects.create("job-doomed", &doomed, &instance).await;

    let js = app.jetstream().await;
    let subject = format!("{instance}.ev.course.{}", uuid::Uuid::new_v4());
    let garbage = js
        .publish(subject, "not json".into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence;
    // A well-formed deletion whose id the API server refuses in a label selector (400): a
    // permanent failure, parked with the server's reason.
    let refused = "not,=a-label";
    let envelope = events::Envelope::new(
        refused,
        &events::CourseEvent::CourseDeleted(events::course::CourseDeleted {}),
        events::Meta {
            actor: "test".into(),
            request_id: "r".into(),
            causation_id: None,
            occurred_at: chrono::Utc::now(),
            idempotency_key: None,
            request_digest: None,
        },
    )
    .unwrap();
    let rejected = js
        .publish(
            format!("{instance}.ev.course.{refused}"),
            envelope.to_bytes().unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence;
    delete_course(&app, &doomed).await;

    let gone = eventually(Duration::from_secs(30), || async {
        objects.count(&doomed, &instance).await == (0, 0)
    })
    .await;
    assert!(gone, "the event after the garbage was reconciled");
    let db = app.database().await;
    let parked = projection::parked::parked(&db.pool).await.unwrap();
    let row = parked
        .iter()
        .find(|r| r.event.consumer == "course_cleanup")
        .unwrap_or_else(|| panic!("the worker parked the garbage: {parked:?}"));
    assert_eq!(row.event.seq, garbage);
    assert_eq!(row.event.aggregate, None);
    assert!(
        row.event.error.contains("not an event envelope"),
        "{}",
        row.event.error
    );
    let row = parked
        .iter()
        .find(|r| r.event.consumer == "course_cleanup" && r.event.seq == rejected)
        .unwrap_or_else(|| panic!("the worker parked the refused deletion: {parked:?}"));
    assert_eq!(row.event.aggregate_id.as_deref(), Some(refused));
    assert_eq!(row.event.event_type.as_deref(), Some("CourseDeleted"));
    assert!(
        row.event.error.contains("unable to parse requirement"),
        "{}",
        row.event.error
    );

    drop(app);
    sim.shutdown().await.unwrap();
}
