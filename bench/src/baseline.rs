//! `gantry-bench pgbench` and `gantry-bench jetstream`: what PostgreSQL and JetStream do on
//! this machine without Gantry in front, measured in the same run as Gantry's figures so
//! that the ratios hold however fast the machine is that day.
//!
//! - `pgbench` is `pgbench -S -M prepared` (one primary-key SELECT per transaction, the
//!   same kind of query as `GET /v1/course/get/:id`) against a scratch database it
//!   initialises and drops.
//! - `jetstream` publishes with many acks outstanding on one connection, as the store does
//!   when many requests append at once, each message a new subject with an expected last
//!   sequence of 0 (the append of a create), to a scratch stream configured as the
//!   store's, then deletes the stream.

use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use tokio::process::Command;

use crate::{
    cpu,
    instance::{Target, connect_nats},
    report::{self, Summary},
    seconds,
};

#[derive(clap::Args, Debug)]
pub struct PgbenchArgs {
    #[command(flatten)]
    target: Target,
    /// The pgbench binary (default: `pgbench` on the PATH, else PostgreSQL's bin folder).
    #[arg(long)]
    pgbench: Option<PathBuf>,
    /// Clients (`-c`).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Threads (`-j`).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Scale of `pgbench -i` (100,000 accounts each).
    #[arg(long, default_value_t = 1)]
    scale: u32,
    /// Seconds of load before measuring.
    #[arg(long, default_value = "2", value_parser = seconds)]
    warmup: Duration,
    /// Seconds measured (`-T`, whole seconds).
    #[arg(long, default_value = "10", value_parser = seconds)]
    duration: Duration,
}

pub async fn pgbench(args: PgbenchArgs, summary: &Summary) -> anyhow::Result<()> {
    if args.clients == 0 || args.threads == 0 || args.scale == 0 {
        bail!("--clients, --threads and --scale must be at least 1");
    }
    let program = match &args.pgbench {
        Some(path) => path.clone(),
        None => {
            find_pgbench().context("no pgbench found (install postgresql, or pass --pgbench)")?
        }
    };
    let mut config: tokio_postgres::Config = args
        .target
        .database_url
        .parse()
        .context("GANTRY_DATABASE_URL is not a PostgreSQL URL")?;
    let name = format!("gantry_bench_pgbench_{}", std::process::id());
    config.dbname("postgres");
    let admin = connect_config(&config).await?;
    for statement in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        admin
            .batch_execute(&statement)
            .await
            .with_context(|| format!("cannot create the scratch database {name}"))?;
    }
    config.dbname(&name);
    let result = run_pgbench(&args, &program, &conninfo(&config)?, summary).await;
    if let Err(e) = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
    {
        eprintln!("cannot drop the scratch database {name}: {e}");
    }
    result
}

async fn run_pgbench(
    args: &PgbenchArgs,
    program: &Path,
    conninfo: &str,
    summary: &Summary,
) -> anyhow::Result<()> {
    println!(
        "pgbench: initialising scale {} ({} accounts)",
        args.scale,
        args.scale * 100_000
    );
    pgbench_run(
        program,
        &["-i", "-q", "-s", &args.scale.to_string()],
        conninfo,
    )
    .await?;
    let clients = args.clients.to_string();
    let threads = args.threads.to_string();
    let select = ["-S", "-M", "prepared", "-c", &clients, "-j", &threads, "-n"];
    let warmup = args.warmup.as_secs().max(1).to_string();
    println!("pgbench: -S -M prepared, {clients} clients, {threads} threads, {warmup} s warm-up");
    pgbench_run(program, &[&select[..], &["-T", &warmup]].concat(), conninfo).await?;

    // A sample of the transactions is logged for the percentiles; all are counted in tps.
    let logs = std::env::temp_dir().join(format!("gantry-bench-pgbench-{}", std::process::id()));
    std::fs::create_dir_all(&logs).context("cannot create the pgbench log folder")?;
    let prefix = logs.join("tx");
    let prefix_arg = format!("--log-prefix={}", prefix.display());
    let secs = args.duration.as_secs().max(1);
    let duration = secs.to_string();
    println!("pgbench: measuring {secs} s");
    let measure = [
        &select[..],
        &[
            "-T",
            &duration,
            "--log",
            "--sampling-rate=0.05",
            &prefix_arg,
        ],
    ]
    .concat();
    let run = pgbench_run(program, &measure, conninfo);
    // pgbench and its backends are gone once it prints: take the CPU snapshots while it
    // runs, from just after its connections are made to just before its end.
    let snapshots = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = cpu::snapshot();
        tokio::time::sleep(Duration::from_secs(secs).saturating_sub(Duration::from_millis(500)))
            .await;
        (before, cpu::snapshot())
    };
    let (output, (before, after)) = tokio::join!(run, snapshots);
    let latencies = read_transaction_logs(&logs);
    let _ = std::fs::remove_dir_all(&logs);
    let output = output?;
    let tps = tps_of(&output).with_context(|| format!("no tps in pgbench's output:\n{output}"))?;
    let latencies = latencies?;
    println!(
        "pgbench: {tps:.0} tps, {}",
        report::latency_line(&latencies)
    );
    summary.figure(
        "CPU cores used during pgbench -S",
        &cpu::breakdown(&before, &after),
        "-",
        "-",
    );
    summary.figure(
        &format!("pgbench -S -M prepared tps ({clients} clients)"),
        &format!("{tps:.0}"),
        "-",
        "-",
    );
    summary.value("pgbench_select_tps", tps);
    summary.value("pgbench_select_p50_ms", report::ms(&latencies, 0.5));
    summary.value("pgbench_select_p99_ms", report::ms(&latencies, 0.99));
    summary.value("pgbench_select_clients", args.clients as f64);
    Ok(())
}

/// `pgbench` on the PATH, else the newest PostgreSQL's.
fn find_pgbench() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("pgbench"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|e| e.path().join("bin/pgbench"))
            .filter(|p| p.is_file())
            .collect();
        versions.sort();
        versions.pop()
    })
}

/// A libpq connection string for pgbench, from the parsed URL (host, port, user, password,
/// database).
fn conninfo(config: &tokio_postgres::Config) -> anyhow::Result<String> {
    use tokio_postgres::config::Host;
    let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
    let mut parts = Vec::new();
    match config.get_hosts().first() {
        Some(Host::Tcp(host)) => parts.push(format!("host={}", quote(host))),
        Some(Host::Unix(path)) => parts.push(format!("host={}", quote(&path.to_string_lossy()))),
        None => {}
    }
    if let Some(port) = config.get_ports().first() {
        parts.push(format!("port={port}"));
    }
    if let Some(user) = config.get_user() {
        parts.push(format!("user={}", quote(user)));
    }
    if let Some(password) = config.get_password() {
        parts.push(format!(
            "password={}",
            quote(&String::from_utf8_lossy(password))
        ));
    }
    let Some(db) = config.get_dbname() else {
        bail!("no database name");
    };
    parts.push(format!("dbname={}", quote(db)));
    Ok(parts.join(" "))
}

async fn connect_config(config: &tokio_postgres::Config) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .context("cannot reach PostgreSQL")?;
    tokio::spawn(connection);
    Ok(client)
}

/// Runs pgbench with `args` against `conninfo`; its standard output, or why it failed.
async fn pgbench_run(program: &Path, args: &[&str], conninfo: &str) -> anyhow::Result<String> {
    let output = Command::new(program)
        .args(args)
        .arg(conninfo)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("cannot run {}", program.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "pgbench {} failed ({}): {}{}",
            args.join(" "),
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(stdout)
}

/// `tps = 12345.6 (without initial connection time)`.
fn tps_of(output: &str) -> Option<f64> {
    output
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l["tps = ".len()..].split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The latencies of pgbench's per-transaction logs (`client tx µs script epoch µs`).
fn read_transaction_logs(dir: &Path) -> anyhow::Result<hdrhistogram::Histogram<u64>> {
    let mut latencies = report::histogram()?;
    for entry in std::fs::read_dir(dir).context("cannot read the pgbench logs")? {
        let text = std::fs::read_to_string(entry?.path()).context("cannot read a pgbench log")?;
        for line in text.lines() {
            if let Some(micros) = line.split_whitespace().nth(2).and_then(|v| v.parse().ok()) {
                report::record(&mut latencies, Duration::from_micros(micros));
            }
        }
    }
    if latencies.is_empty() {
        bail!("pgbench logged no transaction");
    }
    Ok(latencies)
}

#[derive(clap::Args, Debug)]
pub struct JetStreamArgs {
    #[command(flatten)]
    target: Target,
    /// Publishes awaiting their ack at once.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// Seconds of load before measuring.
    #[arg(long, default_value = "2", value_parser = seconds)]
    warmup: Duration,
    /// Seconds measured.
    #[arg(long, default_value = "10", value_parser = seconds)]
    duration: Duration,
    /// At most this many publishes in all, whatever the duration.
    #[arg(long, default_value_t = 2_000_000)]
    max_messages: u64,
}

/// About the size of a course's `CourseCreated` envelope.
const PAYLOAD_BYTES: usize = 420;

pub async fn jetstream(args: JetStreamArgs, summary: &Summary) -> anyhow::Result<()> {
    if args.in_flight == 0 || args.duration.is_zero() {
        bail!("--in-flight and --duration must be above 0");
    }
    let client = connect_nats(&args.target.nats_url).await?;
    let js = jetstream::new(client);
    let scratch = format!("bench_raw_{}", std::process::id());
    let stream = format!("{}_EVENTS", scratch.to_uppercase());
    let _ = js.delete_stream(&stream).await;
    // The store's configuration (see `command::JetStreamStore::open`).
    js.create_stream(jetstream::stream::Config {
        name: stream.clone(),
        subjects: vec![format!("{scratch}.ev.>")],
        storage: jetstream::stream::StorageType::File,
        allow_direct: true,
        duplicate_window: Duration::from_secs(600),
        ..Default::default()
    })
    .await
    .with_context(|| format!("cannot create the scratch stream {stream}"))?;
    let result = publish(&js, &scratch, &args, summary).await;
    if let Err(e) = js.delete_stream(&stream).await {
        eprintln!("cannot delete the scratch stream {stream}: {e}");
    }
    result
}

async fn publish(
    js: &jetstream::Context,
    scratch: &str,
    args: &JetStreamArgs,
    summary: &Summary,
) -> anyhow::Result<()> {
    println!(
        "jetstream: {} in flight, {:.1} s warm-up, {:.1} s measured",
        args.in_flight,
        args.warmup.as_secs_f64(),
        args.duration.as_secs_f64()
    );
    let payload = bytes::Bytes::from(vec![b'x'; PAYLOAD_BYTES]);
    let mut latencies = report::histogram()?;
    let mut pending: VecDeque<(Instant, PublishAckFuture)> =
        VecDeque::with_capacity(args.in_flight);
    let measure_from = Instant::now() + args.warmup;
    let stop_at = measure_from + args.duration;
    let mut measured = 0u64;
    let mut sent = 0u64;
    let mut before = None;
    loop {
        let now = Instant::now();
        if before.is_none() && now >= measure_from {
            before = Some(cpu::snapshot());
        }
        if now >= stop_at || sent >= args.max_messages {
            break;
        }
        if pending.len() >= args.in_flight
            && let Some((started, ack)) = pending.pop_front()
        {
            ack.await
                .context("JetStream did not acknowledge a publish")?;
            if started >= measure_from {
                measured += 1;
                report::record(&mut latencies, started.elapsed());
            }
        }
        let subject = format!("{scratch}.ev.course.{}", uuid::Uuid::new_v4());
        let message = PublishMessage::build()
            .payload(payload.clone())
            .expected_last_subject_sequence(0);
        let ack = js
            .send_publish(subject, message)
            .await
            .context("cannot publish")?;
        pending.push_back((Instant::now(), ack));
        sent += 1;
    }
    let after = cpu::snapshot();
    let ended = Instant::now();
    // Publishes still in flight at the end finish outside the window and are not counted.
    for (_, ack) in pending {
        ack.await
            .context("JetStream did not acknowledge a publish")?;
    }
    let window = ended.duration_since(measure_from).as_secs_f64();
    if measured == 0 || window <= 0.0 {
        bail!("no publish was measured (is --max-messages too small?)");
    }
    let rate = measured as f64 / window;
    println!(
        "jetstream: {rate:.0}/s, {}",
        report::latency_line(&latencies)
    );
    if let Some(before) = before {
        summary.figure(
            "CPU cores used during raw JetStream publishes",
            &cpu::breakdown(&before, &after),
            "-",
            "-",
        );
    }
    summary.figure(
        &format!("raw JetStream publishes/s ({} in flight)", args.in_flight),
        &format!("{rate:.0}"),
        "-",
        "-",
    );
    summary.value("jetstream_publish_rate", rate);
    summary.value("jetstream_publish_p50_ms", report::ms(&latencies, 0.5));
    summary.value("jetstream_publish_p99_ms", report::ms(&latencies, 0.99));
    summary.value("jetstream_publish_in_flight", args.in_flight as f64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgbench_output_gives_its_tps() {
        let output = "transaction type: <builtin: select only>\n\
                      latency average = 0.781 ms\n\
                      initial connection time = 10.215 ms\n\
                      tps = 20480.123456 (without initial connection time)\n";
        assert_eq!(tps_of(output), Some(20480.123456));
        assert_eq!(tps_of("nothing"), None);
    }

    #[test]
    fn a_database_url_becomes_a_conninfo() {
        let config: tokio_postgres::Config =
            "postgres://root@127.0.0.1:5432/gantry_x".parse().unwrap();
        assert_eq!(
            conninfo(&config).unwrap(),
            "host='127.0.0.1' port=5432 user='root' dbname='gantry_x'"
        );
    }
}
