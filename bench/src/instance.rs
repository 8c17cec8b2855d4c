//! Where an instance lives (its stream and its schema), and removing it.

use anyhow::Context as _;
use tokio_postgres::NoTls;

#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    #[arg(long, env = "GANTRY_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    #[arg(
        long,
        env = "GANTRY_DATABASE_URL",
        default_value = "postgres://root@127.0.0.1:5432/gantry"
    )]
    pub database_url: String,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// The instances to remove.
    #[arg(long = "instance", required = true)]
    pub instances: Vec<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    for instance in &args.instances {
        remove(&args.target, instance).await?;
    }
    Ok(())
}

/// Instance names go into SQL identifiers and subjects unquoted: accept only plain ones,
/// as `gantry` itself does.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    if !command::is_plain_instance_name(name) {
        anyhow::bail!(
            "instance names are 1-40 characters of a-z, 0-9 and _, starting with a letter: {name:?}"
        );
    }
    Ok(())
}

/// Connects to PostgreSQL and drives the connection in the background.
pub async fn connect_db(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| format!("cannot reach PostgreSQL at {url}"))?;
    tokio::spawn(connection);
    Ok(client)
}

pub async fn connect_nats(url: &str) -> anyhow::Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .connection_timeout(std::time::Duration::from_secs(5))
        .connect(url)
        .await
        .with_context(|| format!("cannot reach NATS at {url}"))
}

/// Deletes the stream `<INSTANCE>_EVENTS` and drops the schema `<instance>`; what is
/// already gone is fine.
pub async fn remove(target: &Target, instance: &str) -> anyhow::Result<()> {
    check_name(instance)?;
    let nats = connect_nats(&target.nats_url).await?;
    let js = async_nats::jetstream::new(nats);
    let stream = format!("{}_EVENTS", instance.to_uppercase());
    match js.delete_stream(&stream).await {
        Ok(_) => println!("deleted stream {stream}"),
        Err(e) if e.to_string().contains("not found") => println!("stream {stream}: none"),
        Err(e) => println!("stream {stream} not deleted: {e}"),
    }
    match connect_db(&target.database_url).await {
        Ok(db) => {
            db.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{instance}\" CASCADE"))
                .await
                .with_context(|| format!("cannot drop schema {instance}"))?;
            println!("dropped schema {instance}");
        }
        Err(e) => println!("schema {instance} not dropped: {e:#}"),
    }
    Ok(())
}

/// The `gantry` binary a benchmark runs: the one given, or the one next to `gantry-bench`.
pub fn gantry_binary(given: Option<&std::path::PathBuf>) -> anyhow::Result<std::path::PathBuf> {
    let gantry = match given {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .context("cannot locate gantry-bench")?
            .with_file_name("gantry"),
    };
    if !gantry.is_file() {
        anyhow::bail!(
            "no gantry binary at {} (build it, or pass --gantry)",
            gantry.display()
        );
    }
    Ok(gantry)
}

/// Removes a benchmark's instance when it is done, unless it is to be kept; a failed removal
/// is said, not fatal (the figures are already out).
pub async fn remove_unless_kept(target: &Target, instance: &str, keep: bool) {
    if !keep && let Err(e) = remove(target, instance).await {
        eprintln!("cleanup of {instance} failed: {e:#}");
    }
}
