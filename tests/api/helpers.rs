//! `spawn_gantry()`: a whole Gantry (serve, project, work) on port 0 under a fresh
//! `GANTRY_INSTANCE`, against the real NATS and PostgreSQL. Its stream and schema are
//! removed when the test ends, pass or fail.

use std::time::Duration;

use gantry::{Roles, Running, Settings};
use serde_json::Value;

pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub admin_token: String,
    pub settings: Settings,
    running: Option<Running>,
}

pub fn settings(instance: &str) -> Settings {
    Settings {
        token_key: None,
        http_addr: "127.0.0.1:0".parse().expect("address"),
        nats_url: std::env::var("GANTRY_NATS_URL")
            .unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
        database_url: std::env::var("GANTRY_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/gantry_test".into()),
        instance: instance.to_string(),
        admin_user: Some(ADMIN.into()),
        admin_password: Some(ADMIN_PASSWORD.into()),
        read_your_writes_ms: 5000,
        duplicate_window_secs: 600,
        kubeconfig: None,
        jobs_namespace: "default".into(),
        jobs_public_host: None,
        login_max_failures: 5,
        login_lockout_ms: 1000,
        shutdown_grace_ms: 30_000,
        oauth_clients: None,
        oauth_code_ttl_ms: 60_000,
        accounting_refuse_overdraft: String::new(),
    }
}

/// Whether `needle` stands in `haystack`, byte for byte.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// The context of a command sent by `actor` from a test.
pub fn ctx(actor: &str) -> command::Context {
    command::Context {
        actor: actor.into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    }
}

pub fn fresh_instance() -> String {
    format!("t_{}", &uuid::Uuid::new_v4().simple().to_string()[..16])
}

pub async fn spawn_gantry() -> TestApp {
    spawn_with(settings(&fresh_instance()), Roles::DEV).await
}

pub async fn spawn_with(settings: Settings, roles: Roles) -> TestApp {
    let running = gantry::start(&settings, roles)
        .await
        .expect("gantry starts");
    let addr = running.http_addr.expect("serves HTTP");
    let mut app = TestApp {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        admin_token: String::new(),
        settings,
        running: Some(running),
    };
    // The bootstrap admin shows up once the projector (maybe another process) applied it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(token) = app.try_login(ADMIN, ADMIN_PASSWORD, 3600).await {
            app.admin_token = token;
            return app;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bootstrap admin never could log in"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn try_login(
        &self,
        username: &str,
        password: &str,
        expiration: u64,
    ) -> Option<String> {
        let response = self
            .http
            .post(self.url("/api/v1/token"))
            .json(&serde_json::json!({ "username": username, "password": password, "expiration": expiration }))
            .send()
            .await
            .ok()?;
        let body: Value = response.json().await.ok()?;
        body["token"].as_str().map(str::to_string)
    }

    pub async fn login(&self, username: &str, password: &str, expiration: u64) -> String {
        let (status, body) = self
            .send(
                self.http
                    .post(self.url("/api/v1/token"))
                    .json(&serde_json::json!({
                        "username": username, "password": password, "expiration": expiration
                    })),
            )
            .await;
        assert_eq!(status, 200, "login of {username}: {body}");
        body["token"].as_str().expect("token").to_string()
    }

    /// Sends a request and returns its status and JSON body.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("request is answered");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("status {status}, body is not JSON: {text:?}"));
        (status, body)
    }

    pub fn admin(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.bearer_auth(&self.admin_token)
    }

    /// Creates a course and returns its id (found through the owner's list).
    pub async fn create_course(&self, owner: &str, name: &str, level: &str) -> String {
        let (status, body) = self
            .send(self.admin(self.http.post(self.url("/v1/course/create"))).body(
                serde_json::json!({
                    "user": owner, "name": name, "introduction": "intro", "image": "nvidia/caffe:latest",
                    "level": level, "GPU": 1, "datasets": ["mnist"]
                })
                .to_string(),
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        let courses = self.courses_of(owner).await;
        courses
            .iter()
            .rev()
            .find(|c| c["name"] == name)
            .and_then(|c| c["id"].as_str())
            .expect("created course is listed")
            .to_string()
    }

    pub async fn courses_of(&self, owner: &str) -> Vec<Value> {
        let (status, body) = self
            .send(
                self.admin(self.http.post(self.url("/v1/course/list")))
                    .body(format!("{{\"user\":\"{owner}\"}}")),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["courses"].as_array().expect("courses").clone()
    }

    /// Stops every role of this process.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }

    /// Stops every role of this process and starts `roles` again (on a new port).
    pub async fn restart(&mut self, roles: Roles) {
        self.stop().await;
        let running = gantry::start(&self.settings, roles)
            .await
            .expect("gantry restarts");
        self.base = format!("http://{}", running.http_addr.expect("serves HTTP"));
        self.running = Some(running);
    }

    /// A connection to the instance's schema, to look under the read models.
    pub async fn database(&self) -> projection::Database {
        projection::Database::connect(&self.settings.database_url, &self.settings.instance)
            .await
            .expect("database")
    }

    /// The effective admins of the user directory, as the admins roster counts them.
    pub async fn seen_admins(&self) -> Vec<command::admins::SeenAdmin> {
        let db = self.database().await;
        projection::users::effective_admins(&db.pool)
            .await
            .expect("admins")
            .into_iter()
            .map(|a| command::admins::SeenAdmin {
                username: a.username,
                release: a.admin_release,
            })
            .collect()
    }

    /// Every message of the instance's stream, as raw bytes.
    pub async fn whole_log(&self) -> Vec<Vec<u8>> {
        let js = self.jetstream().await;
        let stream = js
            .get_stream(format!("{}_EVENTS", self.settings.instance.to_uppercase()))
            .await
            .expect("stream");
        let every = format!("{}.ev.>", self.settings.instance);
        let mut messages = Vec::new();
        let mut next = 1;
        while let Ok(message) = stream
            .direct_get_next_for_subject(every.as_str(), Some(next))
            .await
        {
            next = message.sequence + 1;
            messages.push(message.payload.to_vec());
        }
        messages
    }

    /// The instance's event store, as another process would open it.
    pub async fn event_store(&self) -> command::JetStreamStore {
        command::JetStreamStore::open(
            async_nats::connect(&self.settings.nats_url)
                .await
                .expect("nats"),
            &self.settings.instance,
            Duration::from_secs(600),
        )
        .await
        .expect("event store")
    }

    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        let client = async_nats::connect(&self.settings.nats_url)
            .await
            .expect("nats");
        async_nats::jetstream::new(client)
    }

    /// The events recorded on one aggregate's subject, as JSON envelopes.
    pub async fn events_of(&self, aggregate: &str, id: &str) -> Vec<Value> {
        let js = self.jetstream().await;
        let stream = js
            .get_stream(format!("{}_EVENTS", self.settings.instance.to_uppercase()))
            .await
            .expect("stream");
        let subject = format!("{}.ev.{aggregate}.{id}", self.settings.instance);
        let mut events = Vec::new();
        let mut next = 1;
        while let Ok(message) = stream
            .direct_get_next_for_subject(subject.as_str(), Some(next))
            .await
        {
            next = message.sequence + 1;
            events.push(serde_json::from_slice(&message.payload).expect("envelope"));
        }
        events
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        drop(self.running.take());
        remove_instance(&self.settings);
    }
}

/// Deletes an instance's stream and schema (from a thread of its own: this runs in Drop),
/// after checking every event of its log against `schemas/` ([`crate::schemas`]): a test
/// whose log breaks a schema fails here, unless it is failing already.
pub fn remove_instance(settings: &Settings) {
    let instance = settings.instance.clone();
    let settings = settings.clone();
    let cleanup = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return Vec::new();
        };
        runtime.block_on(async move {
            let mut violations = Vec::new();
            if let Ok(client) = async_nats::connect(&settings.nats_url).await {
                let js = async_nats::jetstream::new(client);
                let stream = format!("{}_EVENTS", settings.instance.to_uppercase());
                violations = crate::schemas::violations(&js, &stream).await;
                let _ = js.delete_stream(stream).await;
            }
            if let Ok(db) =
                projection::Database::connect(&settings.database_url, &settings.instance).await
            {
                let _ = db.drop_schema().await;
            }
            violations
        })
    });
    let violations = cleanup.join().unwrap_or_default();
    if !violations.is_empty() && !std::thread::panicking() {
        panic!(
            "{} event(s) of instance {} break their schema:\n{}",
            violations.len(),
            instance,
            violations.join("\n")
        );
    }
}

/// Polls `check` until it returns true or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `gantry` subprocess, killed (SIGKILL) when dropped, also when a test fails.
pub struct GantryProcess {
    pub child: std::process::Child,
    /// Where it serves, for `serve` and `dev`.
    pub base: Option<String>,
}

impl Drop for GantryProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts the real binary as `gantry <role>` for the instance of `settings`; a serving role
/// is waited for until it answers.
pub async fn gantry_process(role: &str, settings: &Settings) -> GantryProcess {
    gantry_process_logging(role, settings, "error", std::process::Stdio::null()).await
}

/// [`gantry_process`] with the log filter `rust_log`, its log lines going to `log`.
pub async fn gantry_process_logging(
    role: &str,
    settings: &Settings,
    rust_log: &str,
    log: std::process::Stdio,
) -> GantryProcess {
    let port = free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg(role)
        .env("GANTRY_INSTANCE", &settings.instance)
        .env("GANTRY_NATS_URL", &settings.nats_url)
        .env("GANTRY_DATABASE_URL", &settings.database_url)
        .env("GANTRY_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", rust_log)
        .envs(settings.admin_user.iter().map(|u| ("GANTRY_ADMIN_USER", u)))
        .envs(
            settings
                .admin_password
                .iter()
                .map(|p| ("GANTRY_ADMIN_PASSWORD", p)),
        )
        .env_remove("KUBECONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("gantry starts");
    let mut process = GantryProcess { child, base: None };
    if matches!(role, "serve" | "dev") {
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let up = eventually(Duration::from_secs(20), || async {
            http.get(format!("{base}/api/v1")).send().await.is_ok()
        })
        .await;
        assert!(up, "gantry {role} answers");
        process.base = Some(base);
    }
    process
}

impl TestApp {
    /// Publishes `payload` straight onto the log, as an older build or a person with NATS
    /// access could; returns its stream sequence.
    pub async fn publish_raw(&self, aggregate: &str, id: &str, payload: String) -> u64 {
        let subject = format!("{}.ev.{aggregate}.{id}", self.settings.instance);
        self.jetstream()
            .await
            .publish(subject, payload.into())
            .await
            .expect("publish")
            .await
            .expect("ack")
            .sequence
    }

    /// `(last_seq, halted_at_seq)` of projection `name`.
    pub async fn checkpoint(&self, name: &str) -> Option<(i64, Option<i64>)> {
        let db = self.database().await;
        let client = db.pool.get().await.expect("connection");
        client
            .query_opt(
                "SELECT last_seq, halted_at_seq FROM projection_checkpoint WHERE name = $1",
                &[&name],
            )
            .await
            .expect("checkpoint query")
            .map(|r| (r.get(0), r.get(1)))
    }

    /// `(consumer, seq, event_type, error)` of every parked event.
    pub async fn parked(&self) -> Vec<(String, i64, Option<String>, String)> {
        let db = self.database().await;
        let client = db.pool.get().await.expect("connection");
        client
            .query(
                "SELECT consumer, seq, event_type, error FROM parked_events ORDER BY seq",
                &[],
            )
            .await
            .expect("parked query")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    }

    pub async fn get_course(&self, id: &str) -> (u16, Value) {
        self.send(self.admin(self.http.get(self.url(&format!("/v1/course/get/{id}")))))
            .await
    }
}

/// A course event's envelope as JSON, as the log holds it.
pub fn course_envelope(id: &str, event_type: &str, version: u32, data: Value) -> String {
    raw_envelope("course", id, event_type, version, data)
}

/// An envelope of any aggregate as JSON, as the log holds it.
pub fn raw_envelope(
    aggregate: &str,
    id: &str,
    event_type: &str,
    version: u32,
    data: Value,
) -> String {
    serde_json::json!({
        "event_id": uuid::Uuid::new_v4(),
        "aggregate": aggregate,
        "aggregate_id": id,
        "type": event_type,
        "version": version,
        "data": data,
        "meta": {"actor": "user:test", "request_id": "raw", "occurred_at": chrono::Utc::now()}
    })
    .to_string()
}
