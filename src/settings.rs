//! Configuration from the environment (and the same names as flags).

use std::net::SocketAddr;

#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    /// Where the HTTP doors listen.
    #[arg(long, env = "GANTRY_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    #[arg(long, env = "GANTRY_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// The database is created if it is missing.
    #[arg(
        long,
        env = "GANTRY_DATABASE_URL",
        default_value = "postgres://root@127.0.0.1:5432/gantry"
    )]
    pub database_url: String,
    /// Names the stream, the consumers and the SQL schema: instances sharing one NATS and
    /// one PostgreSQL never touch each other.
    #[arg(long, env = "GANTRY_INSTANCE", default_value = "gantry")]
    pub instance: String,
    /// The bootstrap admin, created at start if missing.
    #[arg(long, env = "GANTRY_ADMIN_USER")]
    pub admin_user: Option<String>,
    #[arg(long, env = "GANTRY_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// How long a write waits for the read models to show it before answering anyway.
    #[arg(long, env = "GANTRY_READ_YOUR_WRITES_MS", default_value_t = 5000)]
    pub read_your_writes_ms: u64,
    /// How long JetStream recognizes a repeated idempotency key by itself (seconds); the
    /// aggregates remember their recent keys beyond it.
    #[arg(long, env = "GANTRY_DUPLICATE_WINDOW_SECS", default_value_t = 600)]
    pub duplicate_window_secs: u64,
    /// The cluster the workers drive; without one they stay idle.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The namespace where jobs run.
    #[arg(long, env = "GANTRY_JOBS_NAMESPACE", default_value = "default")]
    pub jobs_namespace: String,
    /// The host in every job endpoint (`http://<host>:<nodePort>`); unset, the address of
    /// the node the job's pod runs on.
    #[arg(long, env = "GANTRY_JOBS_PUBLIC_HOST")]
    pub jobs_public_host: Option<String>,
    /// Failed logins of one username that lock it (four times as many lock a client
    /// address); see `api::auth`'s throttle.
    #[arg(long, env = "GANTRY_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,
    /// The first lock after too many failed logins; it doubles with each further failure.
    #[arg(long, env = "GANTRY_LOGIN_LOCKOUT_MS", default_value_t = 1000)]
    pub login_lockout_ms: u64,
    /// The key that signs access tokens (any text, 32 bytes or more). Unset, the
    /// instance's generated keys in the secret store sign; they still check tokens when this
    /// is set, so setting it logs nobody out.
    #[arg(long, env = "GANTRY_TOKEN_KEY", hide_env_values = true)]
    pub token_key: Option<String>,
    /// How long a stopping process waits for the work in hand before it exits anyway
    /// (status 1). Under Kubernetes' default 30 s before SIGKILL, so the log says why.
    #[arg(long, env = "GANTRY_SHUTDOWN_GRACE_MS", default_value_t = 25_000)]
    pub shutdown_grace_ms: u64,
    /// The clients of the course door's OAuth2 login form, as `client_id=redirect_uri`
    /// pairs separated by commas; unset, any client redirected to a loopback host (see
    /// `api::oauth`).
    #[arg(long, env = "GANTRY_OAUTH_CLIENTS")]
    pub oauth_clients: Option<String>,
    /// How long an authorization code of the login form may be exchanged.
    #[arg(long, env = "GANTRY_OAUTH_CODE_TTL_MS", default_value_t = 60_000)]
    pub oauth_code_ttl_ms: u64,
    /// Account types (comma separated, e.g. `FCA,ICA`) that refuse new jobs at the
    /// accounting door once their balance is 0 or less; the others may go negative.
    #[arg(long, env = "GANTRY_ACCOUNTING_REFUSE_OVERDRAFT", default_value = "")]
    pub accounting_refuse_overdraft: String,
}

impl Settings {
    /// The account types of `GANTRY_ACCOUNTING_REFUSE_OVERDRAFT`.
    pub fn refuse_overdraft(&self) -> Vec<String> {
        self.accounting_refuse_overdraft
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The instance name goes into NATS subjects and SQL identifiers: keep it plain.
    pub fn validate(&self) -> anyhow::Result<()> {
        let name = &self.instance;
        if !command::is_plain_instance_name(name) {
            anyhow::bail!(
                "GANTRY_INSTANCE must be 1-40 characters of a-z, 0-9 and _, starting with a letter: {name:?}"
            );
        }
        api::oauth::Clients::parse(self.oauth_clients.as_deref())?;
        Ok(())
    }
}
