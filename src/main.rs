//! `gantry`: the control plane of a shared AI/HPC compute centre.

use std::pin::Pin;

use clap::{Parser, Subcommand};
use futures::Stream;
use gantry::{Roles, Settings, Stopped, admin_tools};
use tracing::info;

#[derive(Parser)]
#[command(
    name = "gantry",
    version,
    about = "The control plane of a shared AI/HPC compute centre"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP front doors.
    Serve(Settings),
    /// Project the event log into the PostgreSQL read models.
    Project(Settings),
    /// Run the workers that make Kubernetes match the events.
    Work(Settings),
    /// All three roles in one process.
    Dev(Settings),
    /// Run the Kubernetes API simulator.
    Kubesim(kubesim::Args),
    /// Add a new token signing key; it signs once every process knows it.
    RotateTokenKey(Settings),
    /// Print the events of the log that match the filters, as JSON lines.
    Events(admin_tools::EventsArgs),
    /// Rebuild read models from the log while the live ones keep serving.
    Replay(admin_tools::ReplayArgs),
    /// Check the read models against the log.
    Audit {
        #[command(subcommand)]
        command: admin_tools::AuditCommand,
    },
    /// Charge the Slurm job that just ended (run from Slurm's epilogue).
    Epilogue(gantry::epilogue::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    // The epilogue speaks in one line per outcome on stderr (slurmd's log), without the
    // service's log lines.
    if let Command::Epilogue(args) = command {
        match gantry::epilogue::run(args).await {
            Ok(0) => return Ok(()),
            Ok(code) => std::process::exit(code),
            Err(e) => {
                eprintln!("gantry epilogue: {e:#}");
                std::process::exit(1)
            }
        }
    }
    let logs = gantry::telemetry::init();
    let (settings, roles) = match command {
        Command::Serve(s) => (s, Roles::SERVE),
        Command::Project(s) => (s, Roles::PROJECT),
        Command::Work(s) => (s, Roles::WORK),
        Command::Dev(s) => (s, Roles::DEV),
        Command::Kubesim(args) => return Ok(kubesim::run(args).await?),
        Command::Epilogue(_) => return Ok(()),
        Command::RotateTokenKey(s) => {
            let kid = gantry::rotate_token_key(&s).await?;
            println!("{kid}");
            return Ok(());
        }
        Command::Events(args) => return admin_tools::events(args).await,
        Command::Replay(args) => return admin_tools::replay(args).await,
        Command::Audit { command } => return admin_tools::audit(command).await,
    };
    // Listen before starting, so that a signal during start-up stops the process once up.
    let signals = shutdown_signals()?;
    let running = gantry::start(&settings, roles).await?;
    match running.until(signals).await {
        Stopped::Clean => {
            info!("stopped");
            Ok(())
        }
        // Skip the runtime's wait for blocking tasks: the grace period is over. `exit`
        // runs no destructors, so the buffered log lines are written out first.
        Stopped::Forced => {
            drop(logs);
            std::process::exit(1)
        }
    }
}

/// Each SIGTERM or SIGINT (Ctrl-C) as it arrives: the first stops the process cleanly, a
/// second one stops it at once.
fn shutdown_signals() -> anyhow::Result<Pin<Box<dyn Stream<Item = ()> + Send>>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate())?;
        let interrupt = signal(SignalKind::interrupt())?;
        Ok(Box::pin(futures::stream::unfold(
            (term, interrupt),
            |(mut term, mut interrupt)| async move {
                tokio::select! {
                    Some(()) = term.recv() => {}
                    Some(()) = interrupt.recv() => {}
                    else => return None,
                }
                Some(((), (term, interrupt)))
            },
        )))
    }
    #[cfg(not(unix))]
    {
        Ok(Box::pin(futures::stream::unfold((), |()| async {
            tokio::signal::ctrl_c().await.ok().map(|()| ((), ()))
        })))
    }
}
