//! `gantry-bench`: load and catch-up benchmarks of a running Gantry.
//!
//! - `http` drives the course doors of a running `gantry dev` (creates, then reads).
//! - `catchup` fills a fresh instance's event stream and times the projector catching up.
//! - `pgbench` and `jetstream` measure the raw baselines beside which `table` sets Gantry's
//!   figures.
//! - `accounting` drives the accounting door's charges (NATS and HTTP PATCH) and job reads.
//! - `jobs` launches 1,000 jobs onto the Kubernetes simulator and times them to `Ready`.
//! - `rebuild` times `gantry replay` of every read model from a log of every aggregate type.
//! - `cleanup` removes an instance's stream and schema.

mod accounting;
mod baseline;
mod catchup;
mod conn;
mod cpu;
mod http;
mod instance;
mod jobs;
mod login;
mod publish;
mod rebuild;
mod report;
mod table;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "gantry-bench", about = "Benchmarks of Gantry")]
struct Cli {
    /// Append the measured figures to this file (`metric|value|target|verdict` lines).
    #[arg(long, global = true)]
    summary: Option<PathBuf>,
    /// Append the figures `table` compares to this file (`key value` lines).
    #[arg(long, global = true)]
    results: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Course creates, then course reads, against a running Gantry.
    Http(http::Args),
    /// Time the projector catching up with a log filled beforehand.
    Catchup(catchup::Args),
    /// `pgbench -S -M prepared` on a scratch database: the baseline of the GETs.
    Pgbench(baseline::PgbenchArgs),
    /// Pipelined publishes to a scratch stream: the baseline of the creates.
    Jetstream(baseline::JetStreamArgs),
    /// Gantry's figures beside the baselines, with ratios and targets (exits 2 when a target
    /// is missed or a figure is missing).
    Table(table::Args),
    /// Charges through the epilogue's NATS subject and HTTP PATCH, then job reads, against a
    /// running Gantry; checks the balances at the end.
    Accounting(accounting::Args),
    /// 1,000 job launches through the course door onto the Kubernetes simulator: launches/s,
    /// launch-to-Ready latencies, objects created exactly once.
    Jobs(jobs::Args),
    /// Every read model rebuilt by `gantry replay` from a log of every aggregate type (100,000
    /// then 1,000,000 events): events/s beside a raw ordered read, and peak memory.
    Rebuild(rebuild::Args),
    /// Delete an instance's JetStream stream and PostgreSQL schema.
    Cleanup(instance::Args),
}

/// Parses durations given in seconds, with a fraction if wanted (`2`, `0.5`).
pub fn seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("not a number of seconds: {text:?}"))?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("not a duration: {text:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let summary = report::Summary::new(cli.summary, cli.results);
    let result = match cli.command {
        Command::Http(args) => http::run(args, &summary).await,
        Command::Catchup(args) => catchup::run(args, &summary).await,
        Command::Pgbench(args) => baseline::pgbench(args, &summary).await,
        Command::Jetstream(args) => baseline::jetstream(args, &summary).await,
        Command::Table(args) => match table::run(args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(2),
            Err(e) => Err(e),
        },
        Command::Accounting(args) => accounting::run(args, &summary).await,
        Command::Jobs(args) => jobs::run(args, &summary).await,
        Command::Rebuild(args) => rebuild::run(args, &summary).await,
        Command::Cleanup(args) => instance::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gantry-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
