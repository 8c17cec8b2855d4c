//! The real `gantry` binary stops cleanly on SIGTERM: the doors stop accepting, answer the
//! request in hand, the other roles finish what they hold, and the process exits 0. Past
//! its grace period, or on a second signal, it exits 1 at once.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use gantry::{Roles, Settings};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{
    ADMIN, ADMIN_PASSWORD, eventually, fresh_instance, remove_instance, settings, spawn_with,
};

/// Removes the instance's stream and schema when the test ends, pass or fail.
struct Instance(Settings);

impl Drop for Instance {
    fn drop(&mut self) {
        remove_instance(&self.0);
    }
}

/// Settings for a subprocess: a fresh instance on a free port.
fn process_settings() -> (Instance, Settings) {
    let mut settings = settings(&fresh_instance());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    settings.http_addr = SocketAddr::from(([127, 0, 0, 1], port));
    (Instance(settings.clone()), settings)
}

/// A `gantry <role>` process and what it logged; killed when dropped.
struct Gantry {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Gantry {
    fn spawn(role: &str, settings: &Settings, env: &[(&str, &str)]) -> Self {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gantry"));
        command
            .arg(role)
            .env("GANTRY_INSTANCE", &settings.instance)
            .env("GANTRY_NATS_URL", &settings.nats_url)
            .env("GANTRY_DATABASE_URL", &settings.database_url)
            .env("GANTRY_HTTP_ADDR", settings.http_addr.to_string())
            .env("GANTRY_ADMIN_USER", ADMIN)
            .env("GANTRY_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RUST_LOG", "info,tokio_postgres=warn,async_nats=warn")
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("gantry starts");
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut output = output.lock().unwrap();
                    output.push_str(&line);
                    output.push('\n');
                }
            });
        }
        Self { child, output }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    async fn wait_for_output(&self, needle: &str) {
        let found = eventually(Duration::from_secs(30), || async {
            self.output().contains(needle)
        })
        .await;
        assert!(found, "no {needle:?} in:\n{}", self.output());
    }

    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// The exit status, if the process ends within `within`.
    async fn exit_within(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running {within:?} after the signal:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Gantry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The admin's token, once the process answers and the admin can log in.
async fn admin_token(settings: &Settings) -> String {
    let http = reqwest::Client::new();
    let url = format!("http://{}/api/v1/token", settings.http_addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = http
            .post(&url)
            .json(&json!({ "username": ADMIN, "password": ADMIN_PASSWORD }))
            .send()
            .await;
        if let Ok(response) = answer
            && let Ok(body) = response.json::<Value>().await
            && let Some(token) = body["token"].as_str()
        {
            return token.to_string();
        }
        assert!(Instant::now() < deadline, "the admin never could log in");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A course create whose body is half sent: the request is in the server's hands.
async fn start_slow_create(addr: SocketAddr, token: &str, name: &str) -> (TcpStream, String) {
    let body = json!({ "user": "lifecycle", "name": name }).to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /v1/course/create HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{head}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // Give the server time to read the headers and start on the body.
    tokio::time::sleep(Duration::from_millis(300)).await;
    (stream, tail.to_string())
}

/// Sends the rest of the body and reads the whole answer: status line and JSON body.
async fn finish_slow_create(mut stream: TcpStream, tail: &str) -> (String, Value) {
    stream.write_all(tail.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut answer))
        .await
        .expect("answered before the connection closed")
        .expect("read");
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole HTTP answer");
    let status = head.lines().next().unwrap_or_default().to_string();
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"));
    (status, body)
}

async fn refuses_connections(addr: SocketAddr) -> bool {
    eventually(Duration::from_secs(10), || async {
        TcpStream::connect(addr).await.is_err()
    })
    .await
}

/// SIGTERM while a write is in hand: it is answered in full, new connections are refused,
/// and the process exits 0.
async fn sigterm_during_a_write(gantry: &mut Gantry, settings: &Settings, name: &str) {
    let token = admin_token(settings).await;
    let (stream, tail) = start_slow_create(settings.http_addr, &token, name).await;
    gantry.signal("TERM");
    assert!(
        refuses_connections(settings.http_addr).await,
        "the doors stopped accepting"
    );
    let (status, body) = finish_slow_create(stream, &tail).await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    // The projector still ran for the doors' last request (it stops after them).
    assert!(
        !gantry.output().contains("did not catch up"),
        "{}",
        gantry.output()
    );
    assert_eq!(
        body,
        json!({ "error": false, "message": format!("Course {name} created successfully") })
    );
    let status = gantry.exit_within(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0), "{}", gantry.output());
    assert!(gantry.output().contains("stopped"), "{}", gantry.output());
}

/// The course `name` is in the log: a fresh process of the same instance lists it, and
/// its subject in the stream holds its `CourseCreated`.
async fn is_in_the_log(instance: &str, name: &str, roles: Roles) {
    let app = spawn_with(settings(instance), roles).await;
    let courses = app.courses_of("lifecycle").await;
    let id = courses
        .iter()
        .find(|c| c["name"] == name)
        .and_then(|c| c["id"].as_str())
        .unwrap_or_else(|| panic!("{name:?} is not listed: {courses:?}"));
    let events = app.events_of("course", id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "CourseCreated");
    assert_eq!(events[0]["data"]["name"], name);
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_answers_the_write_in_hand_then_exits_0_on_sigterm() {
    let (_instance, settings) = process_settings();
    let mut gantry = Gantry::spawn("dev", &settings, &[("GANTRY_READ_YOUR_WRITES_MS", "10000")]);
    sigterm_during_a_write(&mut gantry, &settings, "written while stopping").await;
    drop(gantry);
    is_in_the_log(&settings.instance, "written while stopping", Roles::DEV).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_answers_the_write_in_hand_then_exits_0_on_sigterm() {
    let (_instance, settings) = process_settings();
    let mut in_process = settings.clone();
    in_process.http_addr = "127.0.0.1:0".parse().unwrap();
    let projector = gantry::start(&in_process, Roles::PROJECT)
        .await
        .expect("projector");
    let mut gantry = Gantry::spawn("serve", &settings, &[]);
    sigterm_during_a_write(&mut gantry, &settings, "served while stopping").await;
    drop(gantry);
    assert_eq!(projector.shutdown().await, gantry::Stopped::Clean);
    is_in_the_log(&settings.instance, "served while stopping", Roles::SERVE).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn project_exits_0_on_sigterm() {
    let (_instance, settings) = process_settings();
    let mut gantry = Gantry::spawn("project", &settings, &[]);
    gantry.wait_for_output("started").await;
    gantry.wait_for_output("projecting").await;
    gantry.signal("TERM");
    let status = gantry.exit_within(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0), "{}", gantry.output());
}

#[tokio::test(flavor = "multi_thread")]
async fn work_exits_0_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("gantry-kubesim-{}", uuid::Uuid::new_v4()));
    let kubeconfig = dir.join("kubeconfig");
    let sim = kubesim::start(kubesim::Args {
        kubeconfig: Some(kubeconfig.clone()),
        ..Default::default()
    })
    .await
    .expect("kubesim starts");
    let (_instance, settings) = process_settings();
    let kubeconfig_text = kubeconfig.to_string_lossy().to_string();
    let mut gantry = Gantry::spawn("work", &settings, &[("KUBECONFIG", &kubeconfig_text)]);
    gantry.wait_for_output("started").await;
    gantry.signal("TERM");
    let status = gantry.exit_within(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0), "{}", gantry.output());
    sim.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_that_never_ends_holds_the_process_no_longer_than_its_grace() {
    let (_instance, settings) = process_settings();
    let mut gantry = Gantry::spawn("dev", &settings, &[("GANTRY_SHUTDOWN_GRACE_MS", "500")]);
    let token = admin_token(&settings).await;
    let (_stream, _tail) = start_slow_create(settings.http_addr, &token, "never sent").await;
    let signalled = Instant::now();
    gantry.signal("TERM");
    let status = gantry.exit_within(Duration::from_secs(20)).await;
    assert!(signalled.elapsed() >= Duration::from_millis(500));
    assert_eq!(status.code(), Some(1), "{}", gantry.output());
    assert!(
        gantry.output().contains("grace period ended"),
        "{}",
        gantry.output()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_stops_at_once() {
    let (_instance, settings) = process_settings();
    let mut gantry = Gantry::spawn("dev", &settings, &[]);
    let token = admin_token(&settings).await;
    let (_stream, _tail) = start_slow_create(settings.http_addr, &token, "never sent").await;
    gantry.signal("TERM");
    assert!(refuses_connections(settings.http_addr).await);
    gantry.signal("INT");
    let status = gantry.exit_within(Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(1), "{}", gantry.output());
    assert!(
        gantry.output().contains("second signal"),
        "{}",
        gantry.output()
    );
}
