//! `gantry-bench catchup`: fill a fresh instance's log straight through JetStream, then
//! start a projector on it and time how long the read models take to catch up.

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use events::{
    CourseEvent, Envelope, Meta,
    course::{CourseCreated, CourseDeleted, CourseUpdated},
};
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::{
    cpu,
    instance::{self, Target, check_name, connect_db},
    publish,
    report::{Summary, verdict},
    seconds,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// A fresh instance name (its stream and schema must not exist yet).
    #[arg(long)]
    instance: String,
    /// Courses created; 80 % of them are then updated and 20 % deleted.
    #[arg(long, default_value_t = 50_000)]
    courses: usize,
    /// Publishes in flight at once.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// The `gantry` binary to run as the projector (default: next to this one).
    #[arg(long)]
    gantry: Option<PathBuf>,
    /// How long the projector may take before the run fails.
    #[arg(long, default_value = "600", value_parser = seconds)]
    timeout: Duration,
    /// Keep the instance's stream and schema afterwards.
    #[arg(long)]
    keep: bool,
}

/// Target: events projected per second.
const TARGET: f64 = 20_000.0;
const POLL: Duration = Duration::from_millis(20);

pub async fn run(args: Args, summary: &Summary) -> anyhow::Result<()> {
    check_name(&args.instance)?;
    if args.courses == 0 || args.in_flight == 0 {
        bail!("--courses and --in-flight must be at least 1");
    }
    let gantry = instance::gantry_binary(args.gantry.as_ref())?;
    let result = measure(&args, &gantry, summary).await;
    instance::remove_unless_kept(&args.target, &args.instance, args.keep).await;
    result
}

async fn measure(args: &Args, gantry: &PathBuf, summary: &Summary) -> anyhow::Result<()> {
    let events = course_events(args.courses)?;
    let total = events.len() as u64;
    let last_seq = publish(args, events).await?;
    if last_seq != total {
        bail!("the stream holds {last_seq} events, not the {total} published (was it fresh?)");
    }

    let db = connect_db(&args.target.database_url).await?;
    println!("catchup: starting the projector ({})", gantry.display());
    let before = cpu::snapshot();
    let started = Instant::now();
    let mut projector = Command::new(gantry)
        .arg("project")
        .env("GANTRY_INSTANCE", &args.instance)
        .env("GANTRY_NATS_URL", &args.target.nats_url)
        .env("GANTRY_DATABASE_URL", &args.target.database_url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", gantry.display()))?;
    let progress = wait_for_checkpoint(args, &db, &mut projector, last_seq, started).await;
    let after = cpu::snapshot();
    stop(&mut projector).await;
    let Progress { first, done } = progress?;

    let elapsed = done.duration_since(started).as_secs_f64();
    let overall = total as f64 / elapsed;
    let (first_at, first_seq) = first;
    let steady_secs = done.duration_since(first_at).as_secs_f64();
    let steady = if steady_secs > 0.0 {
        (last_seq - first_seq) as f64 / steady_secs
    } else {
        f64::INFINITY
    };
    println!(
        "catchup: {total} events in {elapsed:.2} s from process start ({overall:.0}/s); \
         first checkpoint {first_seq} after {:.2} s, then {:.0}/s",
        first_at.duration_since(started).as_secs_f64(),
        steady
    );
    summary.figure(
        "CPU cores used during catch-up",
        &cpu::breakdown(&before, &after),
        "-",
        "-",
    );
    summary.figure(
        "projector catch-up, events/s from process start",
        &format!("{overall:.0} ({total} in {elapsed:.2} s)"),
        &format!("≥ {TARGET:.0}"),
        verdict(overall >= TARGET),
    );
    summary.figure(
        "projector catch-up, events/s from first checkpoint",
        &format!("{steady:.0}"),
        &format!("≥ {TARGET:.0}"),
        verdict(steady >= TARGET),
    );

    let expected = (args.courses - args.courses / 5) as i64;
    let rows: i64 = db
        .query_one(
            &format!("SELECT count(*) FROM \"{}\".course", args.instance),
            &[],
        )
        .await
        .context("cannot count the course rows")?
        .get(0);
    summary.figure(
        "course rows after catch-up",
        &rows.to_string(),
        &format!("= {expected}"),
        verdict(rows == expected),
    );
    if rows != expected {
        bail!("the read model holds {rows} courses, not {expected}");
    }
    Ok(())
}

/// The log: every course created, then updates (4 in 5 courses) and deletes (the 5th)
/// interleaved, each on the course's own subject.
fn course_events(courses: usize) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let ids: Vec<String> = (0..courses).map(|_| Uuid::new_v4().to_string()).collect();
    let mut events = Vec::with_capacity(courses * 2);
    for (i, id) in ids.iter().enumerate() {
        let event = CourseEvent::CourseCreated(CourseCreated {
            owner: format!("user{}", i % 100),
            name: format!("course {i}"),
            introduction: "An introduction to GPU programming, with exercises.".into(),
            image: "nvidia/cuda:12.4.0-runtime-ubuntu22.04".into(),
            level: if i % 2 == 0 { "basic" } else { "advance" }.into(),
            gpu: 1 + (i % 4) as u32,
            datasets: vec!["mnist".into(), "cifar10".into()],
        });
        events.push(envelope(id, &event)?);
    }
    for (i, id) in ids.iter().enumerate() {
        let event = if i % 5 == 4 {
            CourseEvent::CourseDeleted(CourseDeleted {})
        } else {
            CourseEvent::CourseUpdated(CourseUpdated {
                name: Some(format!("course {i}, second edition")),
                gpu: Some(2),
                ..Default::default()
            })
        };
        events.push(envelope(id, &event)?);
    }
    Ok(events)
}

fn envelope(id: &str, event: &CourseEvent) -> anyhow::Result<(String, Vec<u8>)> {
    let meta = Meta {
        actor: "admin".into(),
        request_id: Uuid::new_v4().to_string(),
        causation_id: None,
        occurred_at: chrono::Utc::now(),
        idempotency_key: None,
        request_digest: None,
    };
    let bytes = Envelope::new(id, event, meta)
        .and_then(|e| e.to_bytes())
        .context("cannot encode an event")?;
    Ok((id.to_string(), bytes))
}

/// Publishes every event on its course's subject; returns the stream's last sequence
/// afterwards.
async fn publish(args: &Args, events: Vec<(String, Vec<u8>)>) -> anyhow::Result<u64> {
    let already = publish::open(&args.target, &args.instance).await?;
    if already != 0 {
        bail!(
            "instance {} already has {already} events: pick a fresh name",
            args.instance
        );
    }
    let total = events.len();
    println!(
        "catchup: publishing {total} events to instance {} ({} in flight)",
        args.instance, args.in_flight
    );
    let instance = &args.instance;
    let messages = events
        .into_iter()
        .map(|(id, bytes)| (format!("{instance}.ev.course.{id}"), bytes));
    let (_, secs) = publish::publish(&args.target, args.in_flight, messages).await?;
    println!(
        "catchup: published in {secs:.2} s ({:.0} events/s)",
        total as f64 / secs
    );
    publish::open(&args.target, &args.instance).await
}

struct Progress {
    /// When the checkpoint was first seen above 0, and its value then.
    first: (Instant, u64),
    /// When it reached the end of the log.
    done: Instant,
}

async fn wait_for_checkpoint(
    args: &Args,
    db: &tokio_postgres::Client,
    projector: &mut Child,
    last_seq: u64,
    started: Instant,
) -> anyhow::Result<Progress> {
    let query = format!(
        "SELECT last_seq FROM \"{}\".projection_checkpoint WHERE name = 'course_catalogue'",
        args.instance
    );
    let mut first = None;
    let mut seen = 0u64;
    let mut reported = Instant::now();
    loop {
        // The table is missing until the projector migrated the schema: that is 0 too.
        let checkpoint = match db.query_opt(&query, &[]).await {
            Ok(row) => row.map_or(0, |r| r.get::<_, i64>(0).max(0) as u64),
            Err(_) => 0,
        };
        let now = Instant::now();
        if checkpoint > 0 && first.is_none() {
            first = Some((now, checkpoint));
        }
        seen = seen.max(checkpoint);
        if let (Some(first), true) = (first, checkpoint >= last_seq) {
            return Ok(Progress { first, done: now });
        }
        if let Some(status) = projector.try_wait()? {
            bail!("the projector exited ({status}) at checkpoint {seen} of {last_seq}");
        }
        if now.duration_since(started) > args.timeout {
            bail!(
                "the projector reached only {seen} of {last_seq} in {:.0} s",
                args.timeout.as_secs_f64()
            );
        }
        if now.duration_since(reported) >= Duration::from_secs(2) {
            println!("catchup: checkpoint {seen} of {last_seq}");
            reported = now;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// SIGTERM, then SIGKILL if it is still there after 10 s.
async fn stop(child: &mut Child) {
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        eprintln!("the projector ignored SIGTERM; killing it");
        let _ = child.kill().await;
    }
}
