//! `gantry`: the control plane of a shared AI/HPC compute centre.

use clap::{Parser, Subcommand};
use gantry::{Roles, Settings};

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _logs = gantry::telemetry::init();
    let (settings, roles) = match Cli::parse().command {
        Command::Serve(s) => (s, Roles::SERVE),
        Command::Project(s) => (s, Roles::PROJECT),
        Command::Work(s) => (s, Roles::WORK),
        Command::Dev(s) => (s, Roles::DEV),
        Command::Kubesim(args) => return Ok(kubesim::run(args).await?),
    };
    let running = gantry::start(&settings, roles).await?;
    running.until(shutdown_signal()).await;
    Ok(())
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
