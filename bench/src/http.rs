//! `gantry-bench http`: course creates, then course reads, then user reads and logins,
//! against a running Gantry.
//!
//! Every create answers only after the read models hold it, so the create phase measures
//! the whole write path: HTTP, command, JetStream append, projector, PostgreSQL, notify.
//! The user reads (`GET /api/v2/user/:username`) are authenticated like every request
//! (signature, then the user's current state from memory) and read one row. The logins
//! (`POST /api/v1/token`) are bound by argon2 on purpose: hashing runs at most once per core
//! at a time.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use hyper::{
    Method, Request,
    header::{self, HeaderValue},
};

use crate::{
    conn::{self, Connection},
    cpu,
    report::{self, Summary, verdict},
    seconds, table,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The Gantry to drive, e.g. `http://127.0.0.1:8080`.
    #[arg(long)]
    base: String,
    #[command(flatten)]
    admin: crate::login::Admin,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds of load before measuring (each phase).
    #[arg(long, default_value = "2", value_parser = seconds)]
    warmup: Duration,
    /// Seconds measured (each phase).
    #[arg(long, default_value = "10", value_parser = seconds)]
    duration: Duration,
    /// How many users the created courses belong to.
    #[arg(long, default_value_t = 8)]
    owners: usize,
    /// Skip the creates and read the courses already there (`GET /v1/course/list`).
    #[arg(long)]
    reads_only: bool,
    /// Users created for the user reads and the logins (0: skip those phases).
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Concurrent clients of the login phase.
    #[arg(long, default_value_t = 8)]
    login_clients: usize,
    /// How long to wait for the admin to be able to log in.
    #[arg(long, default_value = "60", value_parser = seconds)]
    login_timeout: Duration,
}

/// Target of the create phase: creates per second and p99 in milliseconds.
const CREATE_TARGET: (Option<f64>, f64) =
    (Some(table::CREATE_RATE_TARGET), table::CREATE_P99_TARGET_MS);
/// Target of the read phase: its rate is judged against `pgbench -S` by `table`.
const GET_TARGET: (Option<f64>, f64) = (None, table::GET_P99_TARGET_MS);
/// The user reads' rate is judged against `pgbench -S` too; their p99 beside the GETs'.
const USER_GET_TARGET: (Option<f64>, f64) = (None, table::GET_P99_TARGET_MS);
/// Logins are reported, not judged: argon2 bounds them by design.
const LOGIN_TARGET: (Option<f64>, f64) = (None, f64::INFINITY);
/// The password of the users the bench creates.
const USER_PASSWORD: &str = "bench-user-password";

/// What one client saw.
struct Tally {
    /// Latencies of the requests that started inside the measured window.
    latencies: Histogram<u64>,
    /// 200 answers inside the measured window.
    measured_ok: u64,
    /// 200 answers in all, warm-up and the last request in flight included.
    total_ok: u64,
    /// Other answers by status, or `error: …` for requests that got no answer.
    failures: BTreeMap<String, u64>,
}

impl Tally {
    /// An empty tally recording into `latencies` (an empty histogram).
    fn new(latencies: Histogram<u64>) -> Self {
        Self {
            latencies,
            measured_ok: 0,
            total_ok: 0,
            failures: BTreeMap::new(),
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latencies
            .add(&other.latencies)
            .unwrap_or_else(|e| eprintln!("cannot merge latencies: {e}"));
        self.measured_ok += other.measured_ok;
        self.total_ok += other.total_ok;
        for (k, v) in other.failures {
            *self.failures.entry(k).or_default() += v;
        }
    }

    fn failures_line(&self) -> String {
        if self.failures.is_empty() {
            return "none".into();
        }
        self.failures
            .iter()
            .map(|(k, v)| format!("{v}× {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// When the clients warm up, measure, and stop.
#[derive(Clone, Copy)]
struct Window {
    measure_from: Instant,
    stop_at: Instant,
}

impl Window {
    fn starting_now(warmup: Duration, duration: Duration) -> Self {
        let measure_from = Instant::now() + warmup;
        Self {
            measure_from,
            stop_at: measure_from + duration,
        }
    }
}

/// What every client shares: reqwest for the set-up (login, lists), the base URL, and the
/// admin's `Authorization` header for the load.
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    authorization: HeaderValue,
}

pub async fn run(args: Args, summary: &Summary) -> anyhow::Result<()> {
    if args.clients == 0 || args.owners == 0 {
        bail!("--clients and --owners must be at least 1");
    }
    if args.duration.is_zero() {
        bail!("--duration must be above 0");
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients.max(64) * 2)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")?;
    let base = args.base.trim_end_matches('/').to_string();
    let token = crate::login::admin_token_within(
        &http,
        &base,
        &args.admin.user,
        &args.admin.password,
        args.login_timeout,
    )
    .await?;
    let authorization = HeaderValue::from_str(&format!("Bearer {token}"))
        .context("the token does not fit in a header")?;
    let client = Arc::new(Client {
        http,
        base,
        token,
        authorization,
    });
    let (ids, consistent, creates_ok) = if args.reads_only {
        let ids = list_all_ids(&client).await?;
        (ids, true, 0)
    } else {
        create_phase(&args, &client, summary).await?
    };
    if ids.is_empty() {
        bail!("no course was created, so there is nothing to read");
    }

    println!(
        "GETs: {} clients over {} courses, {:.1} s warm-up, {:.1} s measured",
        args.clients,
        ids.len(),
        args.warmup.as_secs_f64(),
        args.duration.as_secs_f64()
    );
    let listed = ids.len();
    let ids = Arc::new(ids);

    let window = Window::starting_now(args.warmup, args.duration);
    let reads = load(&client, args.clients, window, {
        let client = client.clone();
        move |conn, _worker, _n, rng| {
            let id = &ids[rng.random_range(0..ids.len())];
            get(conn, &client, id)
        }
    })
    .await?;
    report(
        summary,
        "get",
        args.clients,
        args.duration,
        &reads,
        GET_TARGET,
    );
    if args.users > 0 {
        identity_phases(&args, &client, summary).await?;
    }
    if !consistent {
        bail!("{creates_ok} creates answered 200 but {listed} courses are listed");
    }
    Ok(())
}

/// Creates `--users` users, then reads them (`GET /api/v2/user/:username`, as the admin)
/// and logs them in (`POST /api/v1/token`).
async fn identity_phases(
    args: &Args,
    client: &Arc<Client>,
    summary: &Summary,
) -> anyhow::Result<()> {
    let run_id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let names: Arc<Vec<String>> = Arc::new(
        (0..args.users)
            .map(|i| format!("bench{run_id}u{i}"))
            .collect(),
    );
    println!("users: creating {}", names.len());
    let mut creates = JoinSet::new();
    for chunk in names.chunks(names.len().div_ceil(8)) {
        let (client, chunk) = (client.clone(), chunk.to_vec());
        creates.spawn(async move {
            for name in chunk {
                create_user(&client, &name).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = creates.join_next().await {
        done.context("a user-creating task failed")??;
    }

    println!(
        "user GETs: {} clients over {} users, {:.1} s warm-up, {:.1} s measured",
        args.clients,
        names.len(),
        args.warmup.as_secs_f64(),
        args.duration.as_secs_f64()
    );
    let window = Window::starting_now(args.warmup, args.duration);
    let reads = load(client, args.clients, window, {
        let (client, names) = (client.clone(), names.clone());
        move |conn, _worker, _n, rng| {
            let name = &names[rng.random_range(0..names.len())];
            get_user(conn, &client, name)
        }
    })
    .await?;
    report(
        summary,
        "user_get",
        args.clients,
        args.duration,
        &reads,
        USER_GET_TARGET,
    );

    let clients = args.login_clients.max(1);
    println!(
        "logins: {clients} clients, {:.1} s warm-up, {:.1} s measured",
        args.warmup.as_secs_f64(),
        args.duration.as_secs_f64()
    );
    let window = Window::starting_now(args.warmup, args.duration);
    let logins = load(client, clients, window, move |conn, worker, n, _rng| {
        let name = &names[(worker + n as usize) % names.len()];
        log_in(conn, name)
    })
    .await?;
    report(
        summary,
        "login",
        clients,
        args.duration,
        &logins,
        LOGIN_TARGET,
    );
    Ok(())
}

/// `POST /api/v2/user` of a user named `name`, as the admin.
async fn create_user(client: &Client, name: &str) -> anyhow::Result<()> {
    let response = client
        .http
        .post(format!("{}/api/v2/user", client.base))
        .bearer_auth(&client.token)
        .json(&json!({ "username": name, "password": USER_PASSWORD }))
        .send()
        .await
        .with_context(|| format!("cannot create user {name}"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        bail!("creating user {name} answered HTTP {status}: {body}");
    }
    Ok(())
}

/// `GET /api/v2/user/:username`, as the admin.
fn get_user(conn: &Connection, client: &Client, name: &str) -> Result<Request<conn::Body>, String> {
    conn.request(Method::GET, &format!("/api/v2/user/{name}"))
        .header(header::AUTHORIZATION, &client.authorization)
        .body(conn::Body::default())
        .map_err(|e| format!("error: {e}"))
}

/// `POST /api/v1/token` of user `name`.
fn log_in(conn: &Connection, name: &str) -> Result<Request<conn::Body>, String> {
    let body = json!({ "username": name, "password": USER_PASSWORD, "expiration": 3600 });
    conn.request(Method::POST, "/api/v1/token")
        .header(header::CONTENT_TYPE, "application/json")
        .body(conn::Body::from(body.to_string()))
        .map_err(|e| format!("error: {e}"))
}

/// The create phase; the ids of the courses it created, whether as many are listed as
/// were answered 200, and how many were.
async fn create_phase(
    args: &Args,
    client: &Arc<Client>,
    summary: &Summary,
) -> anyhow::Result<(Vec<String>, bool, u64)> {
    // Owners unique to this run, so that the lists hold only what this run created.
    let run_id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let owners: Arc<Vec<String>> = Arc::new(
        (0..args.owners)
            .map(|i| format!("bench{run_id}o{i}"))
            .collect(),
    );
    println!(
        "creates: {} clients, {:.1} s warm-up, {:.1} s measured",
        args.clients,
        args.warmup.as_secs_f64(),
        args.duration.as_secs_f64()
    );
    let window = Window::starting_now(args.warmup, args.duration);
    let creates = load(client, args.clients, window, {
        let client = client.clone();
        let owners = owners.clone();
        move |conn, worker, n, _rng| {
            let owner = &owners[(worker + n as usize) % owners.len()];
            create(conn, &client, owner, &format!("c{worker}n{n}"))
        }
    })
    .await?;
    report(
        summary,
        "create",
        args.clients,
        args.duration,
        &creates,
        CREATE_TARGET,
    );

    let ids = list_ids(client, &owners).await?;
    let consistent = ids.len() as u64 == creates.tally.total_ok;
    println!(
        "creates: {} answered 200 (warm-up included), {} listed",
        creates.tally.total_ok,
        ids.len()
    );
    summary.figure(
        "courses listed = creates answered 200",
        &format!("{} = {}", ids.len(), creates.tally.total_ok),
        "equal",
        verdict(consistent),
    );
    Ok((ids, consistent, creates.tally.total_ok))
}

/// Up to 100,000 ids of the courses already there, through `GET /v1/course/list`.
async fn list_all_ids(client: &Client) -> anyhow::Result<Vec<String>> {
    let response = client
        .http
        .get(format!("{}/v1/course/list", client.base))
        .send()
        .await
        .context("cannot list the courses")?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .context("the course list is not JSON")?;
    let Some(courses) = body["courses"].as_array().filter(|_| status.is_success()) else {
        bail!("listing the courses answered HTTP {status}");
    };
    Ok(courses
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_string))
        .take(100_000)
        .collect())
}

/// Prints a phase's figures: the rate, the latencies, the failures, the CPU breakdown;
/// keeps the rate and latencies as `gantry_<what>_…` results.
fn report(
    summary: &Summary,
    what: &str,
    clients: usize,
    duration: Duration,
    phase: &Phase,
    (target_rate, target_p99): (Option<f64>, f64),
) {
    let latencies = &phase.tally.latencies;
    let rate = phase.tally.measured_ok as f64 / duration.as_secs_f64();
    let p99 = report::ms(latencies, 0.99);
    let name = match what {
        "create" => "course creates",
        "user_get" => "user GETs",
        "login" => "logins",
        _ => "course GETs",
    };
    println!("{name}: {rate:.0}/s, {}", report::latency_line(latencies));
    println!("{name}: failures {}", phase.tally.failures_line());
    summary.figure(
        &format!("CPU cores used during {name}"),
        &phase.cpu,
        "-",
        "-",
    );
    let (target, met) = match target_rate {
        Some(target) => (format!("≥ {target:.0}"), verdict(rate >= target)),
        None => ("see the baselines".to_string(), "-"),
    };
    summary.figure(
        &format!("{name}/s ({clients} clients)"),
        &format!("{rate:.0}"),
        &target,
        met,
    );
    let (p99_target, p99_met) = if target_p99.is_finite() {
        (
            format!("p99 ≤ {target_p99:.0} ms"),
            verdict(p99 <= target_p99),
        )
    } else {
        ("-".to_string(), "-")
    };
    summary.figure(
        &format!("{name} latency p50 / p90 / p99 / max"),
        &format!(
            "{:.2} / {:.2} / {p99:.2} / {:.2} ms",
            report::ms(latencies, 0.5),
            report::ms(latencies, 0.9),
            report::max_ms(latencies)
        ),
        &p99_target,
        p99_met,
    );
    summary.value(&format!("gantry_{what}_rate"), rate);
    summary.value(&format!("gantry_{what}_p50_ms"), report::ms(latencies, 0.5));
    summary.value(&format!("gantry_{what}_p99_ms"), p99);
    summary.value(&format!("gantry_{what}_clients"), clients as f64);
}

/// What one phase measured.
struct Phase {
    tally: Tally,
    /// Who used the CPU during the measured window.
    cpu: String,
}

/// Runs `clients` tasks, each on its own connection sending `request(conn, worker, n, rng)`
/// back to back until the window closes. A request answers `Ok(status)` or `Err(reason)`
/// when no answer came.
async fn load<F>(
    client: &Client,
    clients: usize,
    window: Window,
    request: F,
) -> anyhow::Result<Phase>
where
    F: Fn(&Connection, usize, u64, &mut StdRng) -> Result<Request<conn::Body>, String>
        + Clone
        + Send
        + 'static,
{
    let empty = report::histogram()?;
    let mut tasks = JoinSet::new();
    for worker in 0..clients {
        let request = request.clone();
        let latencies = empty.clone();
        let mut conn = Connection::new(&client.base)?;
        tasks.spawn(async move {
            let mut tally = Tally::new(latencies);
            let mut rng = StdRng::seed_from_u64(worker as u64);
            let mut n = 0u64;
            loop {
                let started = Instant::now();
                if started >= window.stop_at {
                    break;
                }
                let answer = match request(&conn, worker, n, &mut rng) {
                    Ok(request) => conn.send(request).await,
                    Err(reason) => Err(reason),
                };
                n += 1;
                let measured = started >= window.measure_from;
                match answer {
                    Ok(200) => {
                        tally.total_ok += 1;
                        if measured {
                            tally.measured_ok += 1;
                            report::record(&mut tally.latencies, started.elapsed());
                        }
                    }
                    Ok(status) => *tally.failures.entry(format!("HTTP {status}")).or_default() += 1,
                    Err(reason) => *tally.failures.entry(reason).or_default() += 1,
                }
            }
            tally
        });
    }
    // The CPU breakdown covers the measured window only.
    tokio::time::sleep_until(window.measure_from.into()).await;
    let before = cpu::snapshot();
    tokio::time::sleep_until(window.stop_at.into()).await;
    let after = cpu::snapshot();
    let mut tally = Tally::new(empty);
    while let Some(done) = tasks.join_next().await {
        tally.merge(done.context("a client task failed")?);
    }
    Ok(Phase {
        tally,
        cpu: cpu::breakdown(&before, &after),
    })
}

/// `POST /v1/course/create` of a course named `name` for `owner`.
fn create(
    conn: &Connection,
    client: &Client,
    owner: &str,
    name: &str,
) -> Result<Request<conn::Body>, String> {
    let body = json!({
        "user": owner,
        "name": name,
        "introduction": "A course created by gantry-bench.",
        "image": "nvidia/cuda:12.4.0-runtime-ubuntu22.04",
        "level": "basic",
        "GPU": 1,
        "datasets": ["mnist"],
    });
    conn.request(Method::POST, "/v1/course/create")
        .header(header::AUTHORIZATION, &client.authorization)
        .header(header::CONTENT_TYPE, "application/json")
        .body(conn::Body::from(body.to_string()))
        .map_err(|e| format!("error: {e}"))
}

/// `GET /v1/course/get/:id`.
fn get(conn: &Connection, client: &Client, id: &str) -> Result<Request<conn::Body>, String> {
    conn.request(Method::GET, &format!("/v1/course/get/{id}"))
        .header(header::AUTHORIZATION, &client.authorization)
        .body(conn::Body::default())
        .map_err(|e| format!("error: {e}"))
}

/// The ids of every course of `owners`, through `POST /v1/course/list`.
async fn list_ids(client: &Client, owners: &[String]) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    for owner in owners {
        let response = client
            .http
            .post(format!("{}/v1/course/list", client.base))
            .bearer_auth(&client.token)
            .json(&json!({ "user": owner }))
            .send()
            .await
            .with_context(|| format!("cannot list the courses of {owner}"))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .with_context(|| format!("the course list of {owner} is not JSON"))?;
        let Some(courses) = body["courses"].as_array().filter(|_| status.is_success()) else {
            bail!("listing the courses of {owner} answered HTTP {status}: {body}");
        };
        for course in courses {
            let Some(id) = course["id"].as_str() else {
                bail!("a course of {owner} has no id: {course}");
            };
            ids.push(id.to_string());
        }
    }
    Ok(ids)
}
