//! `gantry-bench rebuild`: every read model rebuilt from a log of every aggregate type by
//! `gantry replay`, beside a raw ordered-consumer read of the same stream in the same run.
//!
//! The log is the fixture log `tests/fixtures/log.current.ndjson` (every event type of
//! every aggregate: users, groups, the admin roster, courses, the image catalogue, the
//! cluster's nodes and datasets, jobs, accounts, Slurm users and Slurm jobs) repeated in
//! cohorts: cohort k gives each of its users, groups, accounts, nodes, datasets, images and
//! its Slurm job a name of its own (`alice` → `alice<k>`, Slurm job id k) and derives every
//! UUID from the fixture's and k, so that what refers to what holds within each cohort.
//!
//! The log is filled to `--first` events and measured, then to `--events` and measured
//! again, so the two peaks of memory can be set side by side. Each measurement is:
//! 1. the raw read: one ordered consumer over the whole stream, counting to its end (what
//!    a replay cannot beat, since it reads the same way);
//! 2. `gantry replay --projection all` as a child process, timed from spawn to exit, its
//!    peak resident memory from `wait4(2)`;
//! 3. the checks: every read model's checkpoint at the log's end, nothing parked, and the
//!    row counts of courses, users, groups, jobs, nodes, accounts and Slurm jobs that the
//!    log implies.
//!
//! Events/s is the log's length over the child's whole life (start, migrations and every
//! read model in turn), so it is what an admin waits for.

use std::{
    collections::HashSet,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull};
use futures::StreamExt;
use serde_json::Value;
use uuid::Uuid;

use crate::{
    instance::{self, Target, check_name, connect_db, connect_nats},
    publish::{self, Message},
    report::{Summary, verdict},
    seconds,
    table::thousands,
};

const FIXTURE: &str = include_str!("../../tests/fixtures/log.current.ndjson");

/// Names of the fixture that must be unique per cohort; each gets the cohort's number.
const NAMES: &[&str] = &[
    "veteran",
    "alice",
    "bob",
    "carol",
    "research",
    "visitors",
    "vision",
    "spare",
    "gpu-node-1",
    "gpu-node-2",
    "mnist",
    "cifar-10",
    "12.4-runtime",
    "caffe:latest",
];

/// Targets of the issue: events/s, the share of the raw read, the peak memory.
const EVENTS_PER_SEC: f64 = 50_000.0;
const OF_RAW: f64 = 0.5;
const PEAK_MIB: f64 = 300.0;
/// "The same" peak at both sizes: the larger log may cost at most this much more.
const SAME_MIB: f64 = 32.0;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// A fresh instance name (its stream and schema must not exist yet).
    #[arg(long)]
    instance: String,
    /// The log's length at the first measurement.
    #[arg(long, default_value_t = 100_000)]
    first: u64,
    /// The log's length at the second.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Publishes in flight at once while filling the log.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// The `gantry` binary whose `replay` is measured (default: next to this one).
    #[arg(long)]
    gantry: Option<PathBuf>,
    /// How long one rebuild may take before the run fails.
    #[arg(long, default_value = "900", value_parser = seconds)]
    timeout: Duration,
    /// Keep the instance's stream and schema afterwards.
    #[arg(long)]
    keep: bool,
}

pub async fn run(args: Args, summary: &Summary) -> anyhow::Result<()> {
    check_name(&args.instance)?;
    if args.first == 0 || args.events <= args.first {
        bail!("--first must be at least 1 and --events larger than --first");
    }
    let gantry = instance::gantry_binary(args.gantry.as_ref())?;
    let result = measure(&args, &gantry, summary).await;
    instance::remove_unless_kept(&args.target, &args.instance, args.keep).await;
    result
}

async fn measure(args: &Args, gantry: &PathBuf, summary: &Summary) -> anyhow::Result<()> {
    let log = Log::parse(&args.instance)?;
    if publish::open(&args.target, &args.instance).await? != 0 {
        bail!(
            "instance {} already has events: pick a fresh name",
            args.instance
        );
    }
    let mut peaks = Vec::new();
    let mut filled = 0;
    for size in [args.first, args.events] {
        println!("rebuild: filling the log to {size} events");
        let (published, secs) = publish::publish(
            &args.target,
            args.in_flight,
            log.messages()
                .skip(filled as usize)
                .take((size - filled) as usize),
        )
        .await?;
        println!(
            "rebuild: published {published} in {secs:.1} s ({:.0}/s)",
            published as f64 / secs
        );
        filled = publish::open(&args.target, &args.instance).await?;
        if filled != size {
            bail!("the stream holds {filled} events, not {size} (was it fresh?)");
        }
        let raw = raw_read(args, filled).await?;
        let rebuild = replay(args, gantry).await?;
        check(args, &log, filled).await?;
        let rate = filled as f64 / rebuild.secs;
        let ratio = rate / raw;
        let peak = rebuild.peak_kib as f64 / 1024.0;
        println!(
            "rebuild: {filled} events in {:.1} s ({rate:.0}/s, {ratio:.2} × the raw read of \
             {raw:.0}/s), peak {peak:.0} MiB, {:.2} cores",
            rebuild.secs,
            rebuild.cpu_secs / rebuild.secs
        );
        let label = thousands(filled as f64);
        summary.figure(
            &format!("raw ordered read of {label} events, events/s"),
            &format!("{raw:.0}"),
            "-",
            "-",
        );
        summary.figure(
            &format!("rebuild of all read models from {label} events, events/s"),
            &format!(
                "{rate:.0} ({:.1} s, {:.2} cores)",
                rebuild.secs,
                rebuild.cpu_secs / rebuild.secs
            ),
            &format!("≥ {EVENTS_PER_SEC:.0}"),
            verdict(rate >= EVENTS_PER_SEC),
        );
        summary.figure(
            &format!("rebuild beside the raw read, {label} events"),
            &format!("{ratio:.2} ×"),
            &format!("≥ {OF_RAW} ×"),
            verdict(ratio >= OF_RAW),
        );
        summary.figure(
            &format!("rebuild peak memory, {label} events"),
            &format!("{peak:.0} MiB"),
            &format!("< {PEAK_MIB:.0} MiB"),
            verdict(peak < PEAK_MIB),
        );
        peaks.push(peak);
    }
    if let [small, large] = peaks[..] {
        summary.figure(
            "rebuild peak memory, larger log beside smaller",
            &format!("{:+.0} MiB", large - small),
            &format!("≤ +{SAME_MIB:.0} MiB"),
            verdict(large - small <= SAME_MIB),
        );
    }
    Ok(())
}

/// How the child's rebuild went.
struct Rebuild {
    secs: f64,
    cpu_secs: f64,
    peak_kib: i64,
}

/// Runs `gantry replay --projection all` and waits for it with `wait4`, for its peak memory.
async fn replay(args: &Args, gantry: &PathBuf) -> anyhow::Result<Rebuild> {
    println!("rebuild: gantry replay --projection all");
    let started = Instant::now();
    let child = std::process::Command::new(gantry)
        .args(["replay", "--projection", "all"])
        .env("GANTRY_INSTANCE", &args.instance)
        .env("GANTRY_NATS_URL", &args.target.nats_url)
        .env("GANTRY_DATABASE_URL", &args.target.database_url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", gantry.display()))?;
    let pid = i32::try_from(child.id()).context("a pid out of range")?;
    let waited = tokio::task::spawn_blocking(move || {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value of that plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4(2) on our own child's pid, with pointers to live locals.
        let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        (waited, status, usage)
    });
    let (waited, status, usage) = match tokio::time::timeout(args.timeout, waited).await {
        Ok(joined) => joined.context("the waiting thread failed")?,
        Err(_) => {
            // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            bail!(
                "gantry replay took longer than {:.0} s",
                args.timeout.as_secs_f64()
            );
        }
    };
    let secs = started.elapsed().as_secs_f64();
    drop(child);
    if waited != pid {
        bail!(
            "cannot wait for gantry replay: {}",
            std::io::Error::last_os_error()
        );
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("gantry replay failed (wait status {status})");
    }
    let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Rebuild {
        secs,
        cpu_secs: cpu(usage.ru_utime) + cpu(usage.ru_stime),
        peak_kib: usage.ru_maxrss,
    })
}

/// Reads the whole stream with one ordered consumer; answers events/s.
async fn raw_read(args: &Args, last: u64) -> anyhow::Result<f64> {
    let js = jetstream::new(connect_nats(&args.target.nats_url).await?);
    let stream = js
        .get_stream(format!("{}_EVENTS", args.instance.to_uppercase()))
        .await
        .context("cannot find the instance's stream")?;
    let started = Instant::now();
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: format!("{}.ev.>", args.instance),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .context("cannot create an ordered consumer")?;
    let mut messages = consumer
        .messages()
        .await
        .context("cannot read the stream")?;
    let mut count = 0u64;
    while let Some(message) = messages.next().await {
        let message = message.context("the ordered read failed")?;
        count += 1;
        let seq = message
            .info()
            .map_err(|e| anyhow::anyhow!("a message without its stream position: {e}"))?
            .stream_sequence;
        if seq >= last {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    if count != last {
        bail!("the raw read got {count} events of {last}");
    }
    let rate = count as f64 / secs;
    println!("rebuild: raw read of {count} events in {secs:.2} s ({rate:.0}/s)");
    Ok(rate)
}

/// Every checkpoint at the log's end, nothing parked, and the rows the log implies.
async fn check(args: &Args, log: &Log, last: u64) -> anyhow::Result<()> {
    let db = connect_db(&args.target.database_url).await?;
    let schema = format!("\"{}\"", args.instance);
    let behind: Vec<(String, i64)> = db
        .query(
            &format!(
                "SELECT name, last_seq FROM {schema}.projection_checkpoint WHERE last_seq <> $1"
            ),
            &[&(last as i64)],
        )
        .await
        .context("cannot read the checkpoints")?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    if !behind.is_empty() {
        bail!("read models not at the log's end ({last}): {behind:?}");
    }
    let parked: i64 = db
        .query_one(&format!("SELECT count(*) FROM {schema}.parked_events"), &[])
        .await
        .context("cannot count the parked events")?
        .get(0);
    if parked != 0 {
        bail!("{parked} events were parked in the rebuild");
    }
    for (table, creates, deletes) in ROWS {
        let expected = log.live(last, creates, deletes);
        let rows: i64 = db
            .query_one(&format!("SELECT count(*) FROM {schema}.{table}"), &[])
            .await
            .with_context(|| format!("cannot count {table}"))?
            .get(0);
        if rows != expected {
            bail!("{table} holds {rows} rows after the rebuild, not {expected}");
        }
    }
    println!("rebuild: checkpoints, parked events and row counts as the log implies");
    Ok(())
}

/// Read-model tables and the event types that add and remove one of their rows.
const ROWS: &[(&str, &[&str], &[&str])] = &[
    ("course", &["CourseCreated"], &["CourseDeleted"]),
    (
        "users",
        &["UserCreated", "UserRegistered"],
        &["UserDeleted"],
    ),
    ("groups", &["GroupCreated"], &["GroupDeleted"]),
    ("jobs", &["JobLaunched"], &["JobDeleted"]),
    ("nodes", &["NodeObserved"], &["NodeRemoved"]),
    ("acct_account", &["AccountOpened"], &[]),
    ("acct_job", &["SlurmJobRecorded"], &[]),
];

/// The fixture log, as the template of every cohort.
struct Log {
    instance: String,
    templates: Vec<Value>,
}

impl Log {
    fn parse(instance: &str) -> anyhow::Result<Self> {
        let templates = FIXTURE
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<Vec<Value>, _>>()
            .context("the fixture log is not JSON lines")?;
        if templates.is_empty() {
            bail!("the fixture log is empty");
        }
        Ok(Self {
            instance: instance.to_string(),
            templates,
        })
    }

    /// Cohort after cohort, without end.
    fn messages(&self) -> impl Iterator<Item = Message> + '_ {
        (1u64..).flat_map(move |k| {
            self.templates.iter().map(move |template| {
                let mut event = template.clone();
                rename(&mut event, k);
                let subject = format!(
                    "{}.ev.{}.{}",
                    self.instance,
                    event["aggregate"].as_str().unwrap_or_default(),
                    event["aggregate_id"].as_str().unwrap_or_default()
                );
                (subject, event.to_string().into_bytes())
            })
        })
    }

    /// How many aggregates the first `len` events leave between `creates` and `deletes`.
    fn live(&self, len: u64, creates: &[&str], deletes: &[&str]) -> i64 {
        let per_cohort = self.templates.len() as u64;
        let count = |events: &[Value]| {
            let mut live = HashSet::new();
            for event in events {
                let id = event["aggregate_id"].as_str().unwrap_or_default();
                let kind = event["type"].as_str().unwrap_or_default();
                if creates.contains(&kind) {
                    live.insert(id);
                } else if deletes.contains(&kind) {
                    live.remove(id);
                }
            }
            live.len() as i64
        };
        let whole = (len / per_cohort) as i64;
        let rest = (len % per_cohort) as usize;
        whole * count(&self.templates) + count(&self.templates[..rest])
    }
}

/// Gives cohort `k` its own names and ids throughout an event.
fn rename(value: &mut Value, k: u64) {
    match value {
        Value::String(text) => *text = renamed(text, k),
        Value::Array(items) => items.iter_mut().for_each(|v| rename(v, k)),
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                if key == "slurm_job_id" {
                    *field = Value::from(k);
                } else {
                    rename(field, k);
                }
            }
        }
        _ => {}
    }
}

fn renamed(text: &str, k: u64) -> String {
    if let Ok(id) = Uuid::parse_str(text) {
        return Uuid::new_v5(&id, k.to_string().as_bytes()).to_string();
    }
    if let Some(cluster) = text.strip_suffix("/4242") {
        return format!("{cluster}/{k}");
    }
    let mut out = text.to_string();
    for name in NAMES {
        if out.contains(name) {
            out = out.replace(name, &format!("{name}{k}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cohort_renames_consistently_and_differs_from_the_next() -> anyhow::Result<()> {
        let log = Log::parse("bench")?;
        let per = log.templates.len();
        let first: Vec<Message> = log.messages().take(per).collect();
        let second: Vec<Message> = log.messages().skip(per).take(per).collect();
        let text = |m: &Message| String::from_utf8_lossy(&m.1).to_string();
        assert!(
            text(&first[1]).contains("\"alice1\""),
            "{}",
            text(&first[1])
        );
        assert!(text(&second[1]).contains("\"alice2\""));
        assert_ne!(first[0].0, second[0].0, "each cohort has its own subjects");
        // A job of cohort 1 names the course of cohort 1.
        let course = first
            .iter()
            .find(|m| text(m).contains("\"CourseCreated\""))
            .map(|m| m.0.rsplit('.').next().unwrap_or_default().to_string())
            .unwrap_or_default();
        let job = first
            .iter()
            .find(|m| text(m).contains("\"JobLaunched\""))
            .map(text)
            .unwrap_or_default();
        assert!(!course.is_empty() && job.contains(&course), "{job}");
        Ok(())
    }

    #[test]
    fn live_rows_follow_creates_and_deletes() -> anyhow::Result<()> {
        let log = Log::parse("bench")?;
        let per = log.templates.len() as u64;
        // Per cohort: two courses created, one deleted.
        assert_eq!(log.live(per, &["CourseCreated"], &["CourseDeleted"]), 1);
        assert_eq!(log.live(3 * per, &["CourseCreated"], &["CourseDeleted"]), 3);
        Ok(())
    }
}
