//! The write path end to end: concurrency, idempotency, read-your-writes, several `serve`
//! processes, a projector killed at random moments, and NATS going away and coming back.

use std::{collections::BTreeMap, process::Stdio, time::Duration};

use futures::future::join_all;
use gantry::Roles;
use serde_json::{Value, json};

use crate::helpers::{eventually, fresh_instance, settings, spawn_gantry, spawn_with};

#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_updates_all_land_and_the_last_one_shows() {
    let first = spawn_gantry().await;
    // A second `serve` of the same instance: the updates race across processes too.
    let second = spawn_with(first.settings.clone(), Roles::SERVE).await;
    let id = first.create_course("jimmy", "contended", "basic").await;

    let updates = (0..50).map(|i| {
        let app = if i % 2 == 0 { &first } else { &second };
        let body = json!({ "id": id, "name": format!("name {i}"), "gpu": i % 8 + 1 }).to_string();
        app.send(
            app.admin(app.http.put(app.url("/v1/course/update")))
                .body(body),
        )
    });
    for (status, body) in join_all(updates).await {
        assert_eq!(status, 200, "{body}");
    }

    let events = first.events_of("course", &id).await;
    assert_eq!(events.len(), 51, "one CourseCreated and 50 CourseUpdated");
    let mut names: Vec<&str> = events[1..]
        .iter()
        .map(|e| e["data"]["name"].as_str().unwrap())
        .collect();
    let last = *names.last().unwrap();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 50, "no update was lost");
    for app in [&first, &second] {
        let (_, body) = app
            .send(app.admin(app.http.get(app.url(&format!("/v1/course/get/{id}")))))
            .await;
        assert_eq!(
            body["course"]["name"], last,
            "both servers show the last update"
        );
    }
    let event = &events[50];
    assert_eq!(event["type"], "CourseUpdated");
    assert_eq!(event["meta"]["actor"], "user:admin");
    assert!(
        event["meta"]["request_id"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    assert!(event["meta"]["occurred_at"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_request_with_an_idempotency_key_writes_once() {
    let app = spawn_gantry().await;
    let create = || {
        app.admin(app.http.post(app.url("/v1/course/create")))
            .header("Idempotency-Key", "create-42")
            .body(r#"{"user":"idem","name":"once"}"#)
    };
    let first = app.send(create()).await;
    let again = app.send(create()).await;
    assert_eq!(first, again, "the same answer");
    assert_eq!(first.0, 200);
    let courses = app.courses_of("idem").await;
    assert_eq!(courses.len(), 1, "one course");
    let id = courses[0]["id"].as_str().unwrap().to_string();

    let update = || {
        app.admin(app.http.put(app.url("/v1/course/update")))
            .header("Idempotency-Key", "rename-1")
            .body(json!({ "id": id, "name": "renamed" }).to_string())
    };
    assert_eq!(app.send(update()).await.0, 200);
    // Someone else renames it; the repeat of the first rename must not undo that.
    let (status, _) = app
        .send(
            app.admin(app.http.put(app.url("/v1/course/update")))
                .body(json!({ "id": id, "name": "other" }).to_string()),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.send(update()).await.0, 200);
    let events = app.events_of("course", &id).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["CourseCreated", "CourseUpdated", "CourseUpdated"]);
    assert_eq!(app.courses_of("idem").await[0]["name"], "other");

    // The same key from another route is another request.
    let (status, _) = app
        .send(
            app.admin(app.http.post(app.url("/v1/course/create")))
                .header("Idempotency-Key", "rename-1")
                .body(r#"{"user":"idem","name":"second"}"#),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.courses_of("idem").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn create_then_list_never_misses_the_new_course() {
    let app = spawn_gantry().await;
    for i in 0..100 {
        let name = format!("course {i}");
        let (status, _) = app
            .send(
                app.admin(app.http.post(app.url("/v1/course/create")))
                    .body(json!({ "user": "ryw", "name": name }).to_string()),
            )
            .await;
        assert_eq!(status, 200);
        let courses = app.courses_of("ryw").await;
        assert_eq!(courses.len(), i + 1, "after create {i}");
        assert_eq!(courses.last().unwrap()["name"], name);
    }
}

/// Current state of owner `k`'s courses, as the catalogue lists them: id → name.
async fn catalogue(app: &crate::helpers::TestApp) -> BTreeMap<String, String> {
    let (_, body) = app.send(app.http.get(app.url("/v1/course/list"))).await;
    body["courses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A `gantry project` process, killed (SIGKILL) when dropped or replaced.
struct ProjectorProcess(std::process::Child);

impl Drop for ProjectorProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_projector(settings: &gantry::Settings) -> ProjectorProcess {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("project")
        .env("GANTRY_INSTANCE", &settings.instance)
        .env("GANTRY_NATS_URL", &settings.nats_url)
        .env("GANTRY_DATABASE_URL", &settings.database_url)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gantry project starts");
    ProjectorProcess(child)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_projector_killed_at_any_moment_resumes_exactly_where_it_stopped() {
    let mut settings = settings(&fresh_instance());
    settings.read_your_writes_ms = 20;
    let projector = std::sync::Arc::new(std::sync::Mutex::new(start_projector(&settings)));
    let app = spawn_with(settings.clone(), Roles::SERVE).await;

    let stop = tokio_util::sync::CancellationToken::new();
    let killer = {
        let projector = projector.clone();
        let stop = stop.clone();
        let settings = settings.clone();
        tokio::spawn(async move {
            let mut kills = 0;
            let mut delay = 7u64;
            while !stop.is_cancelled() {
                delay = (delay * 31 + 17) % 120 + 10;
                tokio::time::sleep(Duration::from_millis(delay)).await;
                // SIGKILL: no chance to finish a batch.
                *projector.lock().unwrap() = start_projector(&settings);
                kills += 1;
            }
            kills
        })
    };

    let mut expected = BTreeMap::new();
    for round in 0..4 {
        let creates = (0..50).map(|i| {
            let body = json!({ "user": "k", "name": format!("r{round} c{i}") }).to_string();
            app.send(
                app.admin(app.http.post(app.url("/v1/course/create")))
                    .body(body),
            )
        });
        let answers = join_all(creates).await;
        assert!(
            answers.iter().all(|(status, _)| *status == 200),
            "{:?}",
            answers.iter().find(|(status, _)| *status != 200)
        );
        let visible = eventually(Duration::from_secs(30), || async {
            catalogue(&app).await.len() >= expected.len() + 50
        })
        .await;
        assert!(visible, "every create reached the read model");
        let now = catalogue(&app).await;
        let fresh: Vec<String> = now
            .keys()
            .filter(|id| !expected.contains_key(*id))
            .cloned()
            .collect();
        let renames = fresh.iter().enumerate().map(|(i, id)| {
            let body = json!({ "id": id, "name": format!("r{round} renamed {i}") }).to_string();
            app.send(
                app.admin(app.http.put(app.url("/v1/course/update")))
                    .body(body),
            )
        });
        assert!(
            join_all(renames)
                .await
                .iter()
                .all(|(status, _)| *status == 200)
        );
        for (i, id) in fresh.iter().enumerate() {
            expected.insert(id.clone(), format!("r{round} renamed {i}"));
        }
        let doomed: Vec<String> = fresh.iter().step_by(5).cloned().collect();
        let deletes = doomed.iter().map(|id| {
            app.send(app.admin(app.http.delete(app.url(&format!("/v1/course/delete/{id}")))))
        });
        assert!(
            join_all(deletes)
                .await
                .iter()
                .all(|(status, _)| *status == 200)
        );
        for id in &doomed {
            expected.remove(id);
        }
    }
    stop.cancel();
    let kills = killer.await.unwrap();
    assert!(kills >= 3, "the projector was killed {kills} times");

    let caught_up = eventually(Duration::from_secs(30), || async {
        catalogue(&app).await == expected
    })
    .await;
    drop(projector);
    assert!(
        caught_up,
        "the read model equals what was written: {} expected, {} listed",
        expected.len(),
        catalogue(&app).await.len()
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private nats-server, killed when dropped (also when the test fails).
struct Nats(std::process::Child);

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_nats(port: u16, dir: &std::path::Path) -> Nats {
    let child = std::process::Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server is installed (scripts/test installs it)");
    Nats(child)
}

#[tokio::test(flavor = "multi_thread")]
async fn while_nats_is_down_writes_get_503_and_everything_recovers_by_itself() {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("gantry-nats-{}", uuid::Uuid::new_v4()));
    let nats = start_nats(port, &dir);
    let mut settings = settings(&fresh_instance());
    settings.nats_url = format!("nats://127.0.0.1:{port}");
    let up = eventually(Duration::from_secs(10), || async {
        async_nats::connect(&settings.nats_url).await.is_ok()
    })
    .await;
    assert!(up, "private nats-server started");
    let app = spawn_with(settings, Roles::DEV).await;
    app.create_course("outage", "before", "basic").await;

    drop(nats);
    let (status, body) = app
        .send(
            app.admin(app.http.post(app.url("/v1/course/create")))
                .body(r#"{"user":"outage","name":"during"}"#),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], true);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Failed to create course information: "),
        "{body}"
    );
    // Reads come from PostgreSQL and keep working.
    assert_eq!(app.courses_of("outage").await.len(), 1);

    let nats = start_nats(port, &dir);
    let recovered = eventually(Duration::from_secs(60), || async {
        let (status, _) = app
            .send(
                app.admin(app.http.post(app.url("/v1/course/create")))
                    .body(r#"{"user":"outage","name":"after"}"#),
            )
            .await;
        status == 200
    })
    .await;
    assert!(recovered, "writes work again once NATS is back");
    let started = std::time::Instant::now();
    let projected = eventually(Duration::from_secs(60), || async {
        let names: Vec<Value> = app
            .courses_of("outage")
            .await
            .iter()
            .map(|c| c["name"].clone())
            .collect();
        names.first() == Some(&json!("before")) && names.last() == Some(&json!("after"))
    })
    .await;
    assert!(projected, "the projector resumed too");
    eprintln!("projector resumed {:?} after the write", started.elapsed());
    drop(app);
    drop(nats);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_read_models_rebuild_from_the_log_alone() {
    let mut app = spawn_gantry().await;
    let a = app.create_course("rebuild", "a", "basic").await;
    let b = app.create_course("rebuild", "b", "advance").await;
    app.create_course("rebuild", "c", "basic").await;
    let (status, _) = app
        .send(
            app.admin(app.http.put(app.url("/v1/course/update")))
                .body(json!({ "id": a, "name": "a2", "datasets": [] }).to_string()),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .send(app.admin(app.http.delete(app.url(&format!("/v1/course/delete/{b}")))))
        .await;
    assert_eq!(status, 200);
    let before = app.courses_of("rebuild").await;

    // Throw the read models away while nothing runs, then start again.
    let db = app.database().await;
    app.stop().await;
    let client = db.pool.get().await.unwrap();
    client
        .batch_execute("DELETE FROM course; DELETE FROM users; DELETE FROM projection_checkpoint;")
        .await
        .unwrap();
    drop(client);
    app.restart(Roles::DEV).await;

    let rebuilt = eventually(Duration::from_secs(20), || async {
        app.try_login("admin", "admin-password", 60).await.is_some()
    })
    .await;
    assert!(rebuilt, "users are back");
    assert_eq!(
        app.courses_of("rebuild").await,
        before,
        "the same courses, to the field and the time"
    );
}
