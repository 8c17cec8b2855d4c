//! `gantry-bench accounting`: charges per second through the epilogue's NATS subject and
//! through HTTP PATCH of a job's amount, spread over many accounts and all on one account,
//! then `GET /accounting/jobs/:n/` per second; and the balances checked exact at the end.
//!
//! Each charge names a new total for a job of its client, so every request moves the
//! balance (the NATS phases record a new job per charge; the PATCH phases raise the total of
//! the client's own job by 0.01 SU at a time). The expected balance of each account is
//! summed on the client side and compared with what the door shows.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use http_body_util::Full;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::{
    conn::Connection,
    report::{self, Summary, verdict},
    seconds,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The Gantry to drive, e.g. `http://127.0.0.1:8080`.
    #[arg(long)]
    base: String,
    #[arg(long, env = "GANTRY_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// The instance of that Gantry (names the charge subject).
    #[arg(long, env = "GANTRY_INSTANCE")]
    instance: String,
    #[command(flatten)]
    admin: crate::login::Admin,
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Accounts the spread phases charge.
    #[arg(long, default_value_t = 100)]
    accounts: usize,
    /// Seconds measured per phase.
    #[arg(long, default_value = "10", value_parser = seconds)]
    duration: Duration,
    /// `pgbench -S` transactions per second measured in the same run (0: not known).
    #[arg(long, default_value_t = 0.0)]
    pgbench_tps: f64,
}

const SPREAD_TARGET: f64 = 3000.0;
const ONE_ACCOUNT_TARGET: f64 = 1000.0;
const GET_RATIO_TARGET: f64 = 0.5;
/// Every account's allocation, in SUs: no phase overdraws it.
const ALLOCATION: i64 = 1_000_000_000;

struct Setup {
    http: reqwest::Client,
    base: String,
    token: String,
    accounts: Vec<(i64, String)>,
}

async fn admin_send(
    setup: &Setup,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let mut request = setup
        .http
        .request(method, format!("{}/accounting/{path}", setup.base))
        .header("authorization", format!("Token {}", setup.token));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        bail!("{path}: {status} {body}");
    }
    Ok(body)
}

async fn setup(args: &Args) -> anyhow::Result<Setup> {
    let http = reqwest::Client::new();
    let token =
        crate::login::admin_token(&http, &args.base, &args.admin.user, &args.admin.password)
            .await?;
    let mut setup = Setup {
        http,
        base: args.base.clone(),
        token,
        accounts: Vec::new(),
    };
    admin_send(
        &setup,
        reqwest::Method::POST,
        "users/",
        Some(json!({"username": "bench", "usermetadata": "bench", "email": "bench@example.org", "ldapuid": 1})),
    )
    .await?;
    for i in 0..args.accounts.max(1) {
        let name = format!("bench_{i}");
        let body = admin_send(
            &setup,
            reqwest::Method::POST,
            "accounts/",
            Some(json!({"accountname": name, "accountallocation": ALLOCATION, "type": "FCA", "description": "bench"})),
        )
        .await?;
        let number = body["accountid"].as_i64().context("accountid")?;
        setup.accounts.push((number, name));
    }
    Ok(setup)
}

fn charge(job: i64, account: &str, hundredths: i64) -> Value {
    json!({
        "cluster": "bench", "slurm_job_id": job, "user": "bench", "account": account,
        "partition": "cpu", "su": hundredths as f64 / 100.0, "cpus": 1, "gpus": 0, "nodes": 1,
        "start": "2026-11-30T10:00:00Z", "end": "2026-11-30T11:00:00Z"
    })
}

/// What one client did: charges accepted (and the hundredths they moved, per account),
/// latencies, failures.
struct Tally {
    ok: u64,
    failed: u64,
    moved: HashMap<usize, i64>,
    latencies: hdrhistogram::Histogram<u64>,
}

/// Runs `clients` loops of NATS charges for `duration`; `account_of(client)` picks the
/// account. Job ids start at `first_job`, each client its own range.
async fn nats_phase(
    args: &Args,
    setup: &Setup,
    nats: &async_nats::Client,
    first_job: i64,
    spread: bool,
) -> anyhow::Result<(f64, Tally)> {
    let subject = format!("{}.cmd.accounting.charge", args.instance);
    let deadline = Instant::now() + args.duration;
    let mut set = JoinSet::new();
    for client in 0..args.clients {
        let nats = nats.clone();
        let subject = subject.clone();
        let accounts = setup.accounts.clone();
        set.spawn(async move {
            let mut tally = Tally {
                ok: 0,
                failed: 0,
                moved: HashMap::new(),
                latencies: report::histogram()?,
            };
            let mut n: i64 = 0;
            while Instant::now() < deadline {
                let slot = if spread {
                    (client + n as usize) % accounts.len()
                } else {
                    0
                };
                let job = first_job + client as i64 * 1_000_000 + n;
                let hundredths = 1 + n % 100;
                let bytes = serde_json::to_vec(&charge(job, &accounts[slot].1, hundredths))?;
                let started = Instant::now();
                let reply = nats.request(subject.clone(), bytes.into()).await;
                report::record(&mut tally.latencies, started.elapsed());
                match reply
                    .ok()
                    .and_then(|m| serde_json::from_slice::<Value>(&m.payload).ok())
                {
                    Some(reply) if reply["ok"] == true => {
                        tally.ok += 1;
                        *tally.moved.entry(slot).or_default() += hundredths;
                    }
                    _ => tally.failed += 1,
                }
                n += 1;
            }
            anyhow::Ok(tally)
        });
    }
    collect(set, args.duration).await
}

async fn collect(
    mut set: JoinSet<anyhow::Result<Tally>>,
    duration: Duration,
) -> anyhow::Result<(f64, Tally)> {
    let mut all = Tally {
        ok: 0,
        failed: 0,
        moved: HashMap::new(),
        latencies: report::histogram()?,
    };
    while let Some(done) = set.join_next().await {
        let tally = done??;
        all.ok += tally.ok;
        all.failed += tally.failed;
        for (k, v) in tally.moved {
            *all.moved.entry(k).or_default() += v;
        }
        let _ = all.latencies.add(&tally.latencies);
    }
    Ok((all.ok as f64 / duration.as_secs_f64(), all))
}

/// Each client's own job (recorded by one charge first), its total raised by 0.01 SU per
/// PATCH.
async fn patch_phase(
    args: &Args,
    setup: &Setup,
    nats: &async_nats::Client,
    first_job: i64,
    spread: bool,
) -> anyhow::Result<(f64, Tally)> {
    let subject = format!("{}.cmd.accounting.charge", args.instance);
    let mut jobs = Vec::new();
    let mut seeded: HashMap<usize, i64> = HashMap::new();
    for client in 0..args.clients {
        let slot = if spread {
            client % setup.accounts.len()
        } else {
            0
        };
        let job = first_job + client as i64;
        let bytes = serde_json::to_vec(&charge(job, &setup.accounts[slot].1, 1))?;
        let reply = nats.request(subject.clone(), bytes.into()).await?;
        let reply: Value = serde_json::from_slice(&reply.payload)?;
        if reply["ok"] != true {
            bail!("cannot seed job {job}: {reply}");
        }
        *seeded.entry(slot).or_default() += 1;
        let listed = admin_send(
            setup,
            reqwest::Method::GET,
            &format!("jobs/?slurmjobid={job}&cluster=bench"),
            None,
        )
        .await?;
        let number = listed["results"]["jobnumber"][0]
            .as_i64()
            .context("the seeded job is listed")?;
        jobs.push((number, slot));
    }
    let deadline = Instant::now() + args.duration;
    let mut set = JoinSet::new();
    for (number, slot) in jobs {
        let mut connection = Connection::new(&args.base)?;
        let token = setup.token.clone();
        set.spawn(async move {
            let mut tally = Tally {
                ok: 0,
                failed: 0,
                moved: HashMap::new(),
                latencies: report::histogram()?,
            };
            let mut total: i64 = 1;
            while Instant::now() < deadline {
                let next = total + 1;
                let body = format!("{{\"amount\": {}}}", next as f64 / 100.0);
                let request = connection
                    .request(hyper::Method::PATCH, &format!("/accounting/jobs/{number}/"))
                    .header("authorization", format!("Token {token}"))
                    .header("content-type", "application/json")
                    .body(Full::new(bytes::Bytes::from(body)))?;
                let started = Instant::now();
                let status = connection.send(request).await;
                report::record(&mut tally.latencies, started.elapsed());
                if status == Ok(200) {
                    tally.ok += 1;
                    *tally.moved.entry(slot).or_default() += next - total;
                    total = next;
                } else {
                    tally.failed += 1;
                }
            }
            anyhow::Ok(tally)
        });
    }
    let (rate, mut tally) = collect(set, args.duration).await?;
    for (slot, n) in seeded {
        *tally.moved.entry(slot).or_default() += n;
    }
    Ok((rate, tally))
}

async fn get_phase(args: &Args, setup: &Setup) -> anyhow::Result<(f64, Tally)> {
    let listed = admin_send(setup, reqwest::Method::GET, "jobs/", None).await?;
    let numbers: Arc<Vec<i64>> = Arc::new(
        listed["results"]["jobnumber"]
            .as_array()
            .context("jobs")?
            .iter()
            .filter_map(Value::as_i64)
            .collect(),
    );
    if numbers.is_empty() {
        bail!("no job to read");
    }
    let deadline = Instant::now() + args.duration;
    let mut set = JoinSet::new();
    for client in 0..args.clients {
        let mut connection = Connection::new(&args.base)?;
        let token = setup.token.clone();
        let numbers = numbers.clone();
        set.spawn(async move {
            let mut tally = Tally {
                ok: 0,
                failed: 0,
                moved: HashMap::new(),
                latencies: report::histogram()?,
            };
            let mut i = client;
            while Instant::now() < deadline {
                let number = numbers[i % numbers.len()];
                i += 1;
                let request = connection
                    .request(hyper::Method::GET, &format!("/accounting/jobs/{number}/"))
                    .header("authorization", format!("Token {token}"))
                    .body(Full::new(bytes::Bytes::new()))?;
                let started = Instant::now();
                let status = connection.send(request).await;
                report::record(&mut tally.latencies, started.elapsed());
                if status == Ok(200) {
                    tally.ok += 1;
                } else {
                    tally.failed += 1;
                }
            }
            anyhow::Ok(tally)
        });
    }
    collect(set, args.duration).await
}

pub async fn run(args: Args, summary: &Summary) -> anyhow::Result<()> {
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let setup = setup(&args).await?;
    let nats = async_nats::connect(args.nats_url.as_str())
        .await
        .with_context(|| format!("cannot reach NATS at {}", args.nats_url))?;
    let mut expected: HashMap<usize, i64> = HashMap::new();
    let mut add = |tally: &Tally| {
        for (slot, h) in &tally.moved {
            *expected.entry(*slot).or_default() += h;
        }
    };
    let phases: [(&str, &str, f64); 4] = [
        (
            "nats_spread",
            "charges/s over NATS, 100 accounts",
            SPREAD_TARGET,
        ),
        (
            "nats_one",
            "charges/s over NATS, one account",
            ONE_ACCOUNT_TARGET,
        ),
        (
            "patch_spread",
            "charges/s by HTTP PATCH, 100 accounts",
            SPREAD_TARGET,
        ),
        (
            "patch_one",
            "charges/s by HTTP PATCH, one account",
            ONE_ACCOUNT_TARGET,
        ),
    ];
    for (i, (key, label, target)) in phases.iter().enumerate() {
        // Slurm job ids stay below 2^31: 100 million per phase, a million per client.
        let first_job = (i as i64 + 1) * 100_000_000;
        let spread = key.ends_with("spread");
        let (rate, tally) = if key.starts_with("nats") {
            nats_phase(&args, &setup, &nats, first_job, spread).await?
        } else {
            patch_phase(&args, &setup, &nats, first_job, spread).await?
        };
        add(&tally);
        println!(
            "{label}: {rate:.0}/s, {} failed; {}",
            tally.failed,
            report::latency_line(&tally.latencies)
        );
        summary.figure(
            &format!("accounting {label} ({} clients)", args.clients),
            &format!(
                "{rate:.0}/s (p99 {:.1} ms)",
                report::ms(&tally.latencies, 0.99)
            ),
            &format!("≥ {target:.0}/s"),
            verdict(rate >= *target && tally.failed == 0),
        );
        summary.value(&format!("accounting_{key}_rate"), rate);
    }
    let (rate, tally) = get_phase(&args, &setup).await?;
    println!(
        "GET /accounting/jobs/:n/: {rate:.0}/s, {} failed; {}",
        tally.failed,
        report::latency_line(&tally.latencies)
    );
    let (target, met) = if args.pgbench_tps > 0.0 {
        let ratio = rate / args.pgbench_tps;
        (
            format!(
                "≥ {GET_RATIO_TARGET} × pgbench -S ({:.0}/s): {ratio:.2}",
                args.pgbench_tps
            ),
            ratio >= GET_RATIO_TARGET,
        )
    } else {
        ("beside pgbench -S".to_string(), true)
    };
    summary.figure(
        &format!(
            "accounting GET /accounting/jobs/:n/ ({} clients)",
            args.clients
        ),
        &format!(
            "{rate:.0}/s (p99 {:.1} ms)",
            report::ms(&tally.latencies, 0.99)
        ),
        &target,
        verdict(met && tally.failed == 0),
    );
    summary.value("accounting_get_rate", rate);

    // The balances, exact.
    let mut wrong = 0;
    for (slot, (number, name)) in setup.accounts.iter().enumerate() {
        let body = admin_send(
            &setup,
            reqwest::Method::GET,
            &format!("accounts/{number}/"),
            None,
        )
        .await?;
        let moved = expected.get(&slot).copied().unwrap_or(0);
        let want = (ALLOCATION * 100 - moved + 50).div_euclid(100);
        if body["accountbalance"] != want {
            wrong += 1;
            eprintln!(
                "{name}: balance {} but {want} expected",
                body["accountbalance"]
            );
        }
    }
    summary.figure(
        "accounting balances exact after every phase",
        &format!(
            "{} of {} accounts",
            setup.accounts.len() - wrong,
            setup.accounts.len()
        ),
        "all",
        verdict(wrong == 0),
    );
    Ok(())
}
