//! What operators rely on: `GET /metrics` in the Prometheus text format, and logs as text
//! without colour codes on a pipe or as JSON lines carrying each request's id.
//!
//! The exact counts are taken from a `gantry serve` subprocess: the metrics recorder is
//! one per process, and the other tests of this binary share theirs.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use prometheus_parse::{Sample, Scrape, Value};
use serde_json::Value as Json;
use tokio::sync::mpsc;

use crate::helpers::{fresh_instance, remove_instance, settings, spawn_gantry};

/// A `gantry serve` subprocess on a free port, its stderr read line by line. Killed, and
/// its instance removed, when dropped.
struct Served {
    child: Child,
    settings: gantry::Settings,
    base: String,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every stderr line read so far.
    seen: Vec<String>,
}

impl Served {
    /// Starts `gantry serve` with `log_format` as `GANTRY_LOG_FORMAT` (unset when `None`)
    /// and waits for its "serving" line, which names the address.
    async fn start(log_format: Option<&str>) -> Self {
        let settings = settings(&fresh_instance());
        let mut command = Command::new(env!("CARGO_BIN_EXE_gantry"));
        command
            .arg("serve")
            .env("GANTRY_INSTANCE", &settings.instance)
            .env("GANTRY_NATS_URL", &settings.nats_url)
            .env("GANTRY_DATABASE_URL", &settings.database_url)
            .env("GANTRY_HTTP_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .env_remove("GANTRY_ADMIN_USER")
            .env_remove("GANTRY_ADMIN_PASSWORD")
            .env_remove("GANTRY_LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(format) = log_format {
            command.env("GANTRY_LOG_FORMAT", format);
        }
        let mut child = command.spawn().expect("gantry serve starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (send, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut served = Served {
            child,
            settings,
            base: String::new(),
            lines,
            seen: Vec::new(),
        };
        let serving = served
            .wait_for_line(|line| line.contains("serving") && address_in(line).is_some())
            .await;
        let addr = address_in(&serving).unwrap_or_else(|| panic!("no address in {serving:?}"));
        served.base = format!("http://{addr}");
        served
    }

    /// The next stderr line that `matches`, within 20 s.
    async fn wait_for_line(&mut self, matches: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("no such line in time; read: {:#?}", self.seen))
                .unwrap_or_else(|| panic!("gantry serve ended; it wrote: {:#?}", self.seen));
            self.seen.push(line.clone());
            if matches(&line) {
                return line;
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        remove_instance(&self.settings);
    }
}

/// `127.0.0.1:PORT` from the "serving" line, text (`addr=…`) or JSON (`"addr":"…"`).
fn address_in(line: &str) -> Option<String> {
    let start = line.find("127.0.0.1:")?;
    let port: String = line[start + "127.0.0.1:".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!port.is_empty()).then(|| format!("127.0.0.1:{port}"))
}

/// Scrapes `/metrics`, checks the content type, and parses it as Prometheus text.
async fn scrape(http: &reqwest::Client, url: &str) -> Scrape {
    let response = http.get(url).send().await.expect("/metrics answers");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "content type {content_type:?}"
    );
    let text = response.text().await.expect("body");
    let lines = text.lines().map(|l| Ok(l.to_string()));
    Scrape::parse(lines).unwrap_or_else(|e| panic!("not Prometheus text ({e}):\n{text}"))
}

fn has_labels(sample: &Sample, labels: &[(&str, &str)]) -> bool {
    labels
        .iter()
        .all(|(name, value)| sample.labels.get(name) == Some(*value))
}

/// The value of counter `metric` with `labels`, 0 when it has none yet.
fn counter(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && has_labels(s, labels))
        .map(|s| match s.value {
            Value::Counter(v) | Value::Untyped(v) => v,
            ref other => panic!("{metric} is not a counter: {other:?}"),
        })
        .sum()
}

/// The (upper bound, cumulative count) buckets and the count of histogram `metric` with
/// `labels`.
fn histogram(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> (Vec<(f64, f64)>, u64) {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && has_labels(s, labels))
        .unwrap_or_else(|| panic!("no {metric} with {labels:?}"));
    match &sample.value {
        Value::Histogram(buckets) => (
            buckets.iter().map(|b| (b.less_than, b.count)).collect(),
            buckets.last().map_or(0, |b| b.count as u64),
        ),
        other => panic!("{metric} is not a histogram: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_each_request_by_door_route_and_status() {
    let served = Served::start(Some("json")).await;
    let http = reqwest::Client::new();
    let metrics = served.url("/metrics");
    const REQUESTS: &str = "gantry_http_requests_total";
    let info = [("door", "pai"), ("route", "/api/v1"), ("status", "200")];
    let unmatched = [("door", "none"), ("route", "unmatched"), ("status", "404")];
    let course_get = [("door", "courses"), ("route", "/v1/course/get/:id")];

    let before = scrape(&http, &metrics).await;
    for path in ["/api/v1", "/api/v1/", "/rest-server/api/v1"] {
        let response = http.get(served.url(path)).send().await.expect("answer");
        assert_eq!(response.status(), 200, "{path}");
    }
    for path in ["/no/such/path", "/v2/course/get"] {
        let response = http.get(served.url(path)).send().await.expect("answer");
        assert_eq!(response.status(), 404, "{path}");
    }
    // Two ids, one route: the label is the template, not the path.
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let id = uuid::Uuid::new_v4();
        let response = http
            .get(served.url(&format!("/v1/course/get/{id}")))
            .send()
            .await
            .expect("answer");
        statuses.push(response.status().as_u16().to_string());
    }
    assert_eq!(statuses[0], statuses[1], "no token, the same answer twice");
    let get_status = [
        course_get[0],
        course_get[1],
        ("status", statuses[0].as_str()),
    ];
    let after = scrape(&http, &metrics).await;

    let delta = |labels: &[(&str, &str)]| {
        counter(&after, REQUESTS, labels) - counter(&before, REQUESTS, labels)
    };
    assert_eq!(
        delta(&info),
        3.0,
        "GET /api/v1, with and without the prefix"
    );
    assert_eq!(delta(&unmatched), 2.0, "unknown paths");
    assert_eq!(delta(&get_status), 2.0, "two course ids under one route");
    assert!(
        !after.samples.iter().any(|s| s
            .labels
            .get("route")
            .is_some_and(|r| r.contains("/v1/course/get/") && r != "/v1/course/get/:id")),
        "no raw path is a label"
    );

    let duration = "gantry_http_request_duration_seconds";
    let (buckets, count) = histogram(&after, duration, &[info[0], info[1]]);
    let bounds: Vec<f64> = buckets.iter().map(|(le, _)| *le).collect();
    assert!(
        bounds.contains(&0.0005) && bounds.contains(&5.0),
        "{bounds:?}"
    );
    assert_eq!(bounds.last(), Some(&f64::INFINITY), "{bounds:?}");
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "cumulative: {buckets:?}"
    );
    assert_eq!(count, 3, "the histogram counts the same requests");
    let (_, get_count) = histogram(&after, duration, &course_get);
    assert_eq!(get_count, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_serve_of_one_process_answers_metrics() {
    // Two instances in this process: the recorder is installed once and both render it.
    let first = spawn_gantry().await;
    let second = spawn_gantry().await;
    for app in [&first, &second] {
        let scrape = scrape(&app.http, &app.url("/metrics")).await;
        let logins = counter(
            &scrape,
            "gantry_http_requests_total",
            &[
                ("door", "pai"),
                ("route", "/api/v1/token"),
                ("status", "200"),
            ],
        );
        assert!(logins >= 2.0, "both logins are counted: {logins}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_carry_the_request_id_of_each_request_line() {
    let mut served = Served::start(Some("json")).await;
    let request_id = format!("ops-{}", uuid::Uuid::new_v4());
    let response = reqwest::Client::new()
        .get(served.url("/api/v1"))
        .header("X-Request-Id", &request_id)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some(request_id.as_str())
    );
    let line = served
        .wait_for_line(|line| line.contains(&request_id))
        .await;
    let json: Json = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(json["message"], "answered", "{line}");
    assert_eq!(json["status"], 200, "{line}");
    assert_eq!(json["span"]["request_id"], request_id.as_str(), "{line}");
    assert_eq!(json["span"]["method"], "GET", "{line}");
    assert_eq!(json["span"]["path"], "/api/v1", "{line}");
    for line in &served.seen {
        let parsed: Result<Json, _> = serde_json::from_str(line);
        assert!(
            parsed.is_ok_and(|j| j["level"].is_string() && j["timestamp"].is_string()),
            "every line is a JSON log record: {line:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn text_logs_to_a_pipe_have_no_colour_codes() {
    let mut served = Served::start(None).await;
    let request_id = format!("ops-{}", uuid::Uuid::new_v4());
    let response = reqwest::Client::new()
        .get(served.url("/api/v1"))
        .header("X-Request-Id", &request_id)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    let line = served
        .wait_for_line(|line| line.contains(&request_id))
        .await;
    assert!(line.contains("answered"), "{line}");
    assert!(
        serde_json::from_str::<Json>(&line).is_err(),
        "text, not JSON: {line}"
    );
    for line in &served.seen {
        assert!(!line.contains("\x1b["), "colour codes in {line:?}");
    }
}
