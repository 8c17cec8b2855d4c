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
        http_addr: "127.0.0.1:0".parse().expect("address"),
        nats_url: std::env::var("GANTRY_NATS_URL")
            .unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
        database_url: std::env::var("GANTRY_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/gantry_test".into()),
        instance: instance.to_string(),
        admin_user: Some(ADMIN.into()),
        admin_password: Some(ADMIN_PASSWORD.into()),
        read_your_writes_ms: 5000,
        kubeconfig: None,
        jobs_namespace: "default".into(),
        login_max_failures: 5,
        login_lockout_ms: 1000,
        shutdown_grace_ms: 30_000,
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

/// Deletes an instance's stream and schema (from a thread of its own: this runs in Drop).
pub fn remove_instance(settings: &Settings) {
    let settings = settings.clone();
    let cleanup = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async move {
            if let Ok(client) = async_nats::connect(&settings.nats_url).await {
                let js = async_nats::jetstream::new(client);
                let _ = js
                    .delete_stream(format!("{}_EVENTS", settings.instance.to_uppercase()))
                    .await;
            }
            if let Ok(db) =
                projection::Database::connect(&settings.database_url, &settings.instance).await
            {
                let _ = db.drop_schema().await;
            }
        });
    });
    let _ = cleanup.join();
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
