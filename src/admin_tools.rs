//! The admins' command-line tools over the log: `gantry events` (query and follow it),
//! `gantry replay` (rebuild read models, with a progress bar) and `gantry audit verify`
//! (recompute every read model from the log alone and compare).
//!
//! They connect to NATS and PostgreSQL with the same settings as the roles, and use the
//! same machinery as the admin door (`command::log`, `projection::rebuild`,
//! `projection::audit`), so a filter, a rebuild or an audit means the same from both.
//!
//! Decisions:
//! - `gantry events` prints one JSON line per event on stdout (the envelope with `seq`),
//!   nothing else; without `--limit` it prints every match. With `--follow` it runs until
//!   interrupted.
//! - `gantry replay` refuses (exit 1) while another rebuild of the same read model runs;
//!   the progress bar and the summary go to stderr.
//! - `gantry audit verify` prints each difference on stdout, a summary per read model on
//!   stderr, and exits 1 when anything differs.

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use command::log::{self, RawFilter};
use indicatif::{ProgressBar, ProgressStyle};
use projection::{rebuild, registry, replay::Source};

use crate::{Settings, connect};

/// `gantry events`: the filters of `GET /admin/events`.
#[derive(clap::Args, Debug, Clone)]
pub struct EventsArgs {
    #[command(flatten)]
    pub settings: Settings,
    /// Aggregate type (course, user, group, admins, job, images, cluster, account, slurm_user,
    /// slurm_job).
    #[arg(long)]
    pub aggregate: Option<String>,
    #[arg(long)]
    pub aggregate_id: Option<String>,
    /// Event type, such as CourseCreated.
    #[arg(long = "type")]
    pub event_type: Option<String>,
    /// `user:<name>`, `system:<worker>` or `epilogue:<cluster>`.
    #[arg(long)]
    pub actor: Option<String>,
    /// Events that occurred at or after this RFC 3339 time.
    #[arg(long)]
    pub from: Option<String>,
    /// Events that occurred at or before this RFC 3339 time.
    #[arg(long)]
    pub to: Option<String>,
    /// Events after this stream sequence.
    #[arg(long)]
    pub after: Option<String>,
    /// Print at most this many events.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Keep printing new events as they are appended.
    #[arg(long)]
    pub follow: bool,
}

pub async fn events(args: EventsArgs) -> anyhow::Result<()> {
    let raw = RawFilter {
        aggregate: args.aggregate,
        aggregate_id: args.aggregate_id,
        event_type: args.event_type,
        actor: args.actor,
        from: args.from,
        to: args.to,
        after: args.after,
        limit: None,
        follow: None,
    };
    let query = raw.parse()?;
    let backends = connect(&args.settings).await?;
    let mut scan = log::scan(&backends.store, query.filter, args.follow);
    let mut printed = 0;
    while let Some(item) = scan.recv().await {
        let recorded = item.context("reading the log failed")?;
        println!("{}", log::to_json(&recorded));
        printed += 1;
        if args.limit.is_some_and(|limit| printed >= limit) {
            break;
        }
    }
    Ok(())
}

/// `gantry replay`: which read model to rebuild.
#[derive(clap::Args, Debug, Clone)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub settings: Settings,
    /// A read model's name, or `all`.
    #[arg(long, default_value = "all")]
    pub projection: String,
}

pub async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let backends = connect(&args.settings).await?;
    let picked = rebuild::pick(registry::registered(), &args.projection)?;
    let source = Source::new(
        backends.db.clone(),
        backends.store.stream().clone(),
        backends.store.instance(),
    );
    let claimed = rebuild::claim(&source, picked).await?;
    let progress = claimed.progress.clone();
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{msg:>16} [{elapsed_precise}] {wide_bar} {pos}/{len} seq ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let watcher = {
        let bar = bar.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            loop {
                let (behind, slowest) = progress.behind();
                bar.set_message(behind.join(", "));
                bar.set_length(progress.target.load(Ordering::Relaxed));
                bar.set_position(slowest);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let started = Instant::now();
    let result = claimed.run().await;
    watcher.abort();
    bar.finish_and_clear();
    let applied = result?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "rebuilt {}: the log up to sequence {applied} in {seconds:.1} s ({:.0} events/s)",
        args.projection,
        applied as f64 / seconds.max(1e-9)
    );
    Ok(())
}

/// `gantry audit`'s subcommands.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum AuditCommand {
    /// Recompute every read model from the log alone and compare it with the live one.
    Verify(Settings),
}

pub async fn audit(command: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::Verify(settings) = command;
    let backends = connect(&settings).await?;
    let source = Source::new(
        backends.db.clone(),
        backends.store.stream().clone(),
        backends.store.instance(),
    );
    let mut differing = 0;
    for projection in registry::registered() {
        let name = projection.name();
        let audited = projection::audit::verify(&source, Arc::clone(&projection), &|_| {})
            .await
            .with_context(|| format!("auditing {name} failed"))?;
        for difference in &audited.differences {
            println!("{difference}");
        }
        eprintln!(
            "{name}: {} at sequence {}",
            if audited.differences.is_empty() {
                "matches the log".to_string()
            } else {
                format!("{} differences", audited.differences.len())
            },
            audited.checkpoint
        );
        differing += audited.differences.len();
    }
    if differing > 0 {
        anyhow::bail!("{differing} differences between the read models and the log");
    }
    Ok(())
}
