//! `gantry-bench jobs`: 1,000 jobs launched through the course door of a running `gantry
//! dev` whose workers drive the Kubernetes simulator; launches per second, launch-to-`Ready`
//! latencies, and how many times the simulator saw each job's objects created.
//!
//! - Launches come from `--clients` concurrent clients, each `POST /v1/job/launch` timed
//!   from the moment it is sent.
//! - A job is `Ready` when `POST /v1/job/list` first shows it so: the list is read every
//!   `--poll` (100 ms), as a user's page would, so each latency is late by at most one poll
//!   and one list read. That is the figure a user sees, not the moment of the `JobReady`
//!   event.
//! - A watch on the simulator's Deployments and Services of the instance, opened before the
//!   first launch, counts `ADDED` and `DELETED` per object: every job must have one
//!   Deployment and one Service added once and never deleted.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::{
    login,
    report::{self, Summary, verdict},
    seconds,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The Gantry to drive, e.g. `http://127.0.0.1:8080`; its `gantry work` must drive the
    /// simulator at `--kube-url`.
    #[arg(long)]
    base: String,
    /// The simulator's API server, e.g. `http://127.0.0.1:6443` (no authentication).
    #[arg(long)]
    kube_url: String,
    /// The namespace jobs run in (`GANTRY_JOBS_NAMESPACE` of that Gantry).
    #[arg(long, env = "GANTRY_JOBS_NAMESPACE", default_value = "default")]
    namespace: String,
    /// The instance of that Gantry (its objects carry `gantry.io/instance=<instance>`).
    #[arg(long, env = "GANTRY_INSTANCE")]
    instance: String,
    #[command(flatten)]
    admin: crate::login::Admin,
    #[arg(long, default_value_t = 1000)]
    jobs: usize,
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// How often the job list is read while waiting for `Ready`.
    #[arg(long, default_value = "0.1", value_parser = seconds)]
    poll: Duration,
    /// How long to wait for every job to be `Ready` before giving up.
    #[arg(long, default_value = "120", value_parser = seconds)]
    timeout: Duration,
}

/// All 1,000 jobs `Ready` within this long of the first launch.
const ALL_READY_TARGET: Duration = Duration::from_secs(10);
const USER: &str = "bench@nchc";

struct Door {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Door {
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let body = response
            .json()
            .await
            .with_context(|| format!("{path}: not JSON"))?;
        Ok((status, body))
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        Ok(response.json().await?)
    }

    /// Every job of the benchmark's user: id → status.
    async fn statuses(&self) -> anyhow::Result<HashMap<String, String>> {
        let (status, body) = self.post("/v1/job/list", json!({ "user": USER })).await?;
        if status != 200 {
            bail!("/v1/job/list: {status} {body}");
        }
        let jobs = body["jobs"].as_array().context("jobs")?;
        Ok(jobs
            .iter()
            .filter_map(|j| {
                Some((
                    j["id"].as_str()?.to_string(),
                    j["status"].as_str()?.to_string(),
                ))
            })
            .collect())
    }
}

/// Waits until `check` holds, reading it every 100 ms for at most `within`.
async fn until<F, Fut>(within: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await.unwrap_or(false) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what} within {within:?}")
}

/// `ADDED` and `DELETED` counts per object name, from one watch.
#[derive(Default)]
struct Sightings {
    added: HashMap<String, u32>,
    deleted: HashMap<String, u32>,
}

/// Watches `path` (a collection of the simulator) and counts what it sees until aborted.
async fn watch(
    http: reqwest::Client,
    url: String,
    into: Arc<Mutex<Sightings>>,
) -> anyhow::Result<()> {
    let mut response = http.get(&url).send().await?.error_for_status()?;
    let mut pending = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            let Some(name) = event["object"]["metadata"]["name"].as_str() else {
                continue;
            };
            let mut seen = into.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            match event["type"].as_str() {
                Some("ADDED") => *seen.added.entry(name.to_string()).or_default() += 1,
                Some("DELETED") => *seen.deleted.entry(name.to_string()).or_default() += 1,
                _ => {}
            }
        }
    }
    Ok(())
}

pub async fn run(args: Args, summary: &Summary) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let token =
        login::admin_token(&http, &args.base, &args.admin.user, &args.admin.password).await?;
    let door = Arc::new(Door {
        http: http.clone(),
        base: args.base.clone(),
        token,
    });

    // The worker's watchers must have seen the cluster before the first launch: the nodes
    // (health) and the dataset PVCs (a course's datasets are checked at launch).
    until(
        Duration::from_secs(60),
        "the workers never listed the nodes",
        || async {
            let body = door.get("/v1/health/kubernetes").await?;
            Ok(body["message"].as_array().is_some_and(|n| !n.is_empty()))
        },
    )
    .await?;
    until(
        Duration::from_secs(60),
        "the workers never listed the datasets",
        || async {
            let body = door.get("/v1/datasets/").await?;
            Ok(body["datasets"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| d["value"] == "mnist")))
        },
    )
    .await?;

    let (status, body) = door
        .post(
            "/v1/course/create",
            json!({
                "user": USER, "name": "bench", "introduction": "benchmark", "image": "nvidia/cuda:12.4-runtime",
                "level": "basic", "GPU": 1, "datasets": ["mnist"]
            }),
        )
        .await?;
    if status != 200 {
        bail!("cannot create the course: {status} {body}");
    }
    let (_, courses) = door
        .post("/v1/course/list", json!({ "user": USER }))
        .await?;
    let course = courses["courses"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "bench"))
        .and_then(|c| c["id"].as_str())
        .context("the benchmark course is listed")?
        .to_string();

    let selector = format!("gantry.io/job-id,gantry.io/instance={}", args.instance);
    let deployments = Arc::new(Mutex::new(Sightings::default()));
    let services = Arc::new(Mutex::new(Sightings::default()));
    let mut watches = JoinSet::new();
    for (collection, into) in [
        (
            format!("apis/apps/v1/namespaces/{}/deployments", args.namespace),
            &deployments,
        ),
        (
            format!("api/v1/namespaces/{}/services", args.namespace),
            &services,
        ),
    ] {
        let url = format!(
            "{}/{collection}?watch=true&labelSelector={selector}",
            args.kube_url
        );
        watches.spawn(watch(http.clone(), url, into.clone()));
    }
    // The watches are open once the simulator answered their requests; give them a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let launched: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = JoinSet::new();
    for _ in 0..args.clients.max(1) {
        let door = door.clone();
        let course = course.clone();
        let launched = launched.clone();
        let next = next.clone();
        let jobs = args.jobs;
        clients.spawn(async move {
            let mut failed = 0u64;
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < jobs {
                let sent = Instant::now();
                let answer = door
                    .post(
                        "/v1/job/launch",
                        json!({ "course_id": course, "user": USER }),
                    )
                    .await;
                match answer {
                    Ok((200, body)) if body["job"]["status"] == "Created" => {
                        if let Some(id) = body["job"]["job_id"].as_str() {
                            launched
                                .lock()
                                .map_err(|_| anyhow::anyhow!("poisoned"))?
                                .insert(id.to_string(), sent);
                        }
                    }
                    _ => failed += 1,
                }
            }
            anyhow::Ok(failed)
        });
    }

    // Read the list while the launches go on and after, until every launched job is Ready.
    let mut ready_at: HashMap<String, Instant> = HashMap::new();
    let mut launches_done: Option<Duration> = None;
    let mut failed = 0u64;
    loop {
        if launches_done.is_none() && clients.is_empty() {
            launches_done = Some(started.elapsed());
        }
        while let Some(done) = clients.try_join_next() {
            failed += done??;
            if clients.is_empty() {
                launches_done = Some(started.elapsed());
            }
        }
        let statuses = door.statuses().await?;
        let seen = Instant::now();
        for (id, status) in statuses {
            if status == "Ready" {
                ready_at.entry(id).or_insert(seen);
            }
        }
        let expected = launched
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .len();
        if launches_done.is_some() && ready_at.len() >= expected {
            break;
        }
        if started.elapsed() > args.timeout {
            bail!(
                "{} of {expected} jobs Ready after {:?}",
                ready_at.len(),
                args.timeout
            );
        }
        tokio::time::sleep(args.poll).await;
    }
    let all_ready = started.elapsed();
    let launch_time = launches_done.unwrap_or(all_ready);
    let launched = launched
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();

    let mut latencies = report::histogram()?;
    for (id, sent) in &launched {
        if let Some(ready) = ready_at.get(id) {
            report::record(&mut latencies, ready.saturating_duration_since(*sent));
        }
    }
    // Let the watches hear the last objects, then count.
    tokio::time::sleep(Duration::from_secs(1)).await;
    watches.abort_all();
    let once = |seen: &Mutex<Sightings>| -> anyhow::Result<(usize, usize, usize)> {
        let seen = seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let exactly_once = seen.added.values().filter(|n| **n == 1).count();
        let more = seen.added.values().filter(|n| **n > 1).count();
        let deleted = seen.deleted.values().sum::<u32>() as usize;
        Ok((exactly_once, more, deleted))
    };
    let (d_once, d_more, d_deleted) = once(&deployments)?;
    let (s_once, s_more, s_deleted) = once(&services)?;

    let n = launched.len();
    println!(
        "jobs: {n} launched ({failed} failed) by {} clients in {:.2} s; all Ready {:.2} s after the first launch",
        args.clients,
        launch_time.as_secs_f64(),
        all_ready.as_secs_f64()
    );
    println!(
        "  launch to Ready (seen in /v1/job/list): {}",
        report::latency_line(&latencies)
    );
    println!(
        "  simulator: deployments added once {d_once}, more than once {d_more}, deleted {d_deleted}; services added once {s_once}, more than once {s_more}, deleted {s_deleted}"
    );
    let rate = n as f64 / launch_time.as_secs_f64();
    summary.figure("job launches/s", &format!("{rate:.0}"), "-", "-");
    summary.figure(
        "job launch to Ready p50 / p99",
        &format!(
            "{:.0} ms / {:.0} ms",
            report::ms(&latencies, 0.5),
            report::ms(&latencies, 0.99)
        ),
        "-",
        "-",
    );
    let met = failed == 0 && n == args.jobs && all_ready < ALL_READY_TARGET;
    summary.figure(
        &format!("{} jobs all Ready", args.jobs),
        &format!("{:.2} s", all_ready.as_secs_f64()),
        "< 10 s",
        verdict(met),
    );
    let exact = d_once == n && s_once == n && d_more + s_more + d_deleted + s_deleted == 0;
    summary.figure(
        "job objects created exactly once",
        &format!("{d_once} deployments, {s_once} services of {n} jobs"),
        "all",
        verdict(exact),
    );
    summary.value("jobs_launch_per_s", rate);
    summary.value("jobs_all_ready_s", all_ready.as_secs_f64());
    if !exact {
        bail!("the simulator saw objects created more than once, deleted, or missing");
    }
    Ok(())
}
