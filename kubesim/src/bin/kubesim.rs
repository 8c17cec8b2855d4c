//! Stand-alone simulator, for manual testing and the client scripts.

use clap::Parser;

#[derive(Parser)]
#[command(name = "kubesim", about = "A Kubernetes API server simulator")]
struct Cli {
    #[command(flatten)]
    args: kubesim::Args,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Err(e) = kubesim::run(cli.args).await {
        eprintln!("kubesim: {e}");
        std::process::exit(1);
    }
}
