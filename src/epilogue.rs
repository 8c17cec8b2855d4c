//! `gantry epilogue`: what a Slurm epilogue runs when a job ends. It reads the job from
//! Slurm's environment (flags override each variable), computes its service units from a
//! rate table, and sends the job's total to the charge subject
//! (`<instance>.cmd.accounting.charge`, see `api::accounting::charge` for the contract).
//!
//! Decisions recorded here:
//! - SUs = hours × nodes × (CPUs on a node × `cpu_hour` + GPUs × `gpu_hour`), rounded to
//!   0.01 SU; hours from `SLURM_JOB_START_TIME` to `SLURM_JOB_END_TIME` (Unix seconds, or
//!   RFC 3339; end defaults to now). The GPU count is the number of entries of
//!   `SLURM_JOB_GPUS`, else of `CUDA_VISIBLE_DEVICES`, else 0.
//! - If NATS cannot be reached, or Gantry answers that it cannot take the charge now, or no
//!   reply comes within `--timeout-ms`, the charge is written to the spool directory (one
//!   file per cluster and job, so a later total of the same job replaces an earlier one)
//!   and the command exits 0, so that slurmd does not drain the node. Every run first sends
//!   what is spooled; `--flush` only does that. A spooled charge Gantry refuses is moved to
//!   `<spool>/refused/`, where an admin can read it.
//! - Exit codes: 0 charged, duplicate or spooled; 3 refused (the reply's error on one line
//!   of stderr); 2 bad usage (clap's); 1 anything else (a missing rate table, a spool that
//!   cannot be written). Every outcome is one line on stderr, readable in slurmd's log.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

/// The exit code of a refused charge.
pub const REFUSED: i32 = 3;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The Slurm cluster's name (`ClusterName` of slurm.conf).
    #[arg(long, env = "GANTRY_SLURM_CLUSTER", default_value = "slurm")]
    pub cluster: String,
    /// The rate table (default `$GANTRY_STATE_DIR/rates.toml`).
    #[arg(long, env = "GANTRY_RATES")]
    pub rates: Option<PathBuf>,
    /// Where charges wait while Gantry cannot be reached (default `$GANTRY_STATE_DIR/spool`).
    #[arg(long, env = "GANTRY_SPOOL_DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Only send what is spooled; needs no Slurm variable.
    #[arg(long)]
    pub flush: bool,
    #[arg(long, env = "GANTRY_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    #[arg(long, env = "GANTRY_INSTANCE", default_value = "gantry")]
    pub instance: String,
    /// How long to wait for NATS and for the reply.
    #[arg(long, env = "GANTRY_EPILOGUE_TIMEOUT_MS", default_value_t = 10_000)]
    pub timeout_ms: u64,
    #[arg(long, env = "SLURM_JOB_ID")]
    pub job_id: Option<i64>,
    #[arg(long, env = "SLURM_JOB_USER")]
    pub user: Option<String>,
    #[arg(long, env = "SLURM_JOB_ACCOUNT")]
    pub account: Option<String>,
    #[arg(long, env = "SLURM_JOB_PARTITION")]
    pub partition: Option<String>,
    #[arg(long, env = "SLURM_JOB_NUM_NODES")]
    pub nodes: Option<i64>,
    #[arg(long, env = "SLURM_CPUS_ON_NODE")]
    pub cpus_on_node: Option<i64>,
    /// GPUs per node (default: the entries of `SLURM_JOB_GPUS` or `CUDA_VISIBLE_DEVICES`).
    #[arg(long)]
    pub gpus: Option<i64>,
    #[arg(long, env = "SLURM_JOB_START_TIME")]
    pub start: Option<String>,
    #[arg(long, env = "SLURM_JOB_END_TIME")]
    pub end: Option<String>,
    #[arg(long, env = "SLURM_JOB_QOS")]
    pub qos: Option<String>,
}

/// One partition's rates, in SUs per hour.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    #[serde(default)]
    pub cpu_hour: f64,
    #[serde(default)]
    pub gpu_hour: f64,
}

/// `rates.toml`: `[default]` and `[partition.<name>]` tables.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    pub default: Rate,
    #[serde(default)]
    pub partition: std::collections::BTreeMap<String, Rate>,
}

impl Rates {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }

    /// The rate of `partition`, and whether it fell back to the default.
    pub fn of(&self, partition: &str) -> (Rate, bool) {
        match self.partition.get(partition) {
            Some(rate) => (*rate, false),
            None => (self.default, true),
        }
    }
}

/// A job's service units, rounded to 0.01 SU.
pub fn service_units(rate: Rate, hours: f64, nodes: i64, cpus: i64, gpus: i64) -> f64 {
    let su = hours * nodes as f64 * (cpus as f64 * rate.cpu_hour + gpus as f64 * rate.gpu_hour);
    (su * 100.0).round() / 100.0
}

fn state_dir() -> PathBuf {
    std::env::var_os("GANTRY_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".gantry"))
}

/// A Slurm time: Unix seconds, or RFC 3339.
fn slurm_time(name: &str, text: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(seconds) = text.trim().parse::<i64>() {
        return DateTime::from_timestamp(seconds, 0)
            .with_context(|| format!("{name} is out of range: {text}"));
    }
    Ok(DateTime::parse_from_rfc3339(text.trim())
        .with_context(|| format!("{name} is neither Unix seconds nor RFC 3339: {text}"))?
        .with_timezone(&Utc))
}

/// The number of entries of a GPU list (`0,1,3` → 3).
fn gpu_count(list: &str) -> i64 {
    list.split(',').filter(|g| !g.trim().is_empty()).count() as i64
}

/// The charge request of the job the environment (and the flags) describe.
fn charge_request(args: &Args, rates: &Rates) -> anyhow::Result<Value> {
    fn need<T: Clone>(value: &Option<T>, variable: &str) -> anyhow::Result<T> {
        value
            .clone()
            .with_context(|| format!("{variable} is not set"))
    }
    let job_id = need(&args.job_id, "SLURM_JOB_ID")?;
    let user = need(&args.user, "SLURM_JOB_USER")?;
    let account = need(&args.account, "SLURM_JOB_ACCOUNT")?;
    let partition = need(&args.partition, "SLURM_JOB_PARTITION")?;
    let nodes = args.nodes.unwrap_or(1);
    let cpus = args.cpus_on_node.unwrap_or(1);
    let gpus = args.gpus.unwrap_or_else(|| {
        std::env::var("SLURM_JOB_GPUS")
            .or_else(|_| std::env::var("CUDA_VISIBLE_DEVICES"))
            .map(|l| gpu_count(&l))
            .unwrap_or(0)
    });
    let start = slurm_time(
        "SLURM_JOB_START_TIME",
        &need(&args.start, "SLURM_JOB_START_TIME")?,
    )?;
    let end = match &args.end {
        Some(text) => slurm_time("SLURM_JOB_END_TIME", text)?,
        None => Utc::now(),
    };
    let hours = (end - start).num_milliseconds().max(0) as f64 / 3_600_000.0;
    let (rate, fallback) = rates.of(&partition);
    if fallback {
        eprintln!(
            "gantry epilogue: warning: partition {partition} is not in the rate table; charging job {job_id} at the default rate"
        );
    }
    let su = service_units(rate, hours, nodes, cpus, gpus);
    let mut request = json!({
        "cluster": args.cluster,
        "slurm_job_id": job_id,
        "user": user,
        "account": account,
        "partition": partition,
        "su": su,
        "cpus": cpus * nodes,
        "gpus": gpus * nodes,
        "nodes": nodes,
        "start": start.to_rfc3339(),
        "end": end.to_rfc3339(),
    });
    if let (Some(qos), Value::Object(map)) = (&args.qos, &mut request) {
        map.insert("qos".into(), Value::String(qos.clone()));
    }
    Ok(request)
}

/// What became of one charge.
enum Sent {
    Charged(Value),
    Refused(String),
    /// Gantry could not take it now: keep it.
    Later(String),
}

async fn send(
    client: &async_nats::Client,
    subject: &str,
    request: &Value,
    timeout: Duration,
) -> Sent {
    let bytes = match serde_json::to_vec(request) {
        Ok(bytes) => bytes,
        Err(e) => return Sent::Refused(e.to_string()),
    };
    let reply =
        tokio::time::timeout(timeout, client.request(subject.to_string(), bytes.into())).await;
    let message = match reply {
        Err(_) => return Sent::Later("no reply in time".into()),
        Ok(Err(e)) => return Sent::Later(e.to_string()),
        Ok(Ok(message)) => message,
    };
    let reply: Value = match serde_json::from_slice(&message.payload) {
        Ok(reply) => reply,
        Err(e) => return Sent::Later(format!("unreadable reply: {e}")),
    };
    let error = || {
        reply["error"]
            .as_str()
            .unwrap_or("refused")
            .replace('\n', " ")
    };
    if reply["ok"] == Value::Bool(true) {
        Sent::Charged(reply)
    } else if reply["transient"] == Value::Bool(true) {
        Sent::Later(error())
    } else {
        Sent::Refused(error())
    }
}

fn spool_file(dir: &Path, request: &Value) -> PathBuf {
    let cluster = request["cluster"].as_str().unwrap_or("slurm");
    let job = request["slurm_job_id"].as_i64().unwrap_or_default();
    dir.join(format!("{cluster}-{job}.json"))
}

/// Writes a charge to the spool, atomically (a reader never sees half a file).
fn spool(dir: &Path, request: &Value) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the spool directory {}", dir.display()))?;
    let path = spool_file(dir, request);
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, serde_json::to_vec(request)?)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

fn describe(request: &Value) -> String {
    format!(
        "job {}/{}",
        request["cluster"].as_str().unwrap_or("?"),
        request["slurm_job_id"]
    )
}

fn describe_reply(reply: &Value) -> String {
    if reply["duplicate"] == Value::Bool(true) {
        format!("already charged (balance {})", reply["balance"])
    } else {
        format!(
            "charged {} SU (balance {})",
            reply["charged"], reply["balance"]
        )
    }
}

/// Sends every spooled charge, oldest name first; stops at the first that must wait.
/// Answers how many are left.
async fn flush(
    client: &async_nats::Client,
    subject: &str,
    dir: &Path,
    timeout: Duration,
) -> anyhow::Result<usize> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut left = files.len();
    for path in files {
        let text =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let request: Value = match serde_json::from_slice(&text) {
            Ok(request) => request,
            Err(e) => {
                eprintln!(
                    "gantry epilogue: {} is not a charge ({e}); moving it aside",
                    path.display()
                );
                set_aside(dir, &path)?;
                left -= 1;
                continue;
            }
        };
        match send(client, subject, &request, timeout).await {
            Sent::Charged(reply) => {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
                eprintln!(
                    "gantry epilogue: spooled {}: {}",
                    describe(&request),
                    describe_reply(&reply)
                );
                left -= 1;
            }
            Sent::Refused(error) => {
                eprintln!(
                    "gantry epilogue: spooled {} refused: {error}",
                    describe(&request)
                );
                set_aside(dir, &path)?;
                left -= 1;
            }
            Sent::Later(reason) => {
                eprintln!("gantry epilogue: spooled charges wait: {reason}");
                break;
            }
        }
    }
    Ok(left)
}

fn set_aside(dir: &Path, path: &Path) -> anyhow::Result<()> {
    let refused = dir.join("refused");
    std::fs::create_dir_all(&refused)?;
    if let Some(name) = path.file_name() {
        std::fs::rename(path, refused.join(name))?;
    }
    Ok(())
}

/// Runs the epilogue; answers the process's exit code.
pub async fn run(args: Args) -> anyhow::Result<i32> {
    let spool_dir = args
        .spool_dir
        .clone()
        .unwrap_or_else(|| state_dir().join("spool"));
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let subject = api::accounting::charge::subject(&args.instance);
    let request = if args.flush {
        None
    } else {
        let path = args
            .rates
            .clone()
            .unwrap_or_else(|| state_dir().join("rates.toml"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the rate table {}", path.display()))?;
        let rates = Rates::parse(&text)
            .with_context(|| format!("the rate table {} is not valid", path.display()))?;
        Some(charge_request(&args, &rates)?)
    };
    let connected = tokio::time::timeout(
        timeout,
        async_nats::ConnectOptions::new()
            .connection_timeout(timeout)
            .connect(args.nats_url.as_str()),
    )
    .await;
    let client = match connected {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => {
            return spooled(
                &spool_dir,
                request,
                &format!("NATS unreachable at {}: {e}", args.nats_url),
            );
        }
        Err(_) => {
            return spooled(
                &spool_dir,
                request,
                &format!("NATS unreachable at {}: timed out", args.nats_url),
            );
        }
    };
    let left = flush(&client, &subject, &spool_dir, timeout).await?;
    let Some(request) = request else {
        eprintln!("gantry epilogue: flushed; {left} charge(s) still spooled");
        return Ok(0);
    };
    match send(&client, &subject, &request, timeout).await {
        Sent::Charged(reply) => {
            eprintln!(
                "gantry epilogue: {}: {}",
                describe(&request),
                describe_reply(&reply)
            );
            Ok(0)
        }
        Sent::Refused(error) => {
            eprintln!("gantry epilogue: {} refused: {error}", describe(&request));
            Ok(REFUSED)
        }
        Sent::Later(reason) => spooled(&spool_dir, Some(request), &reason),
    }
}

fn spooled(dir: &Path, request: Option<Value>, reason: &str) -> anyhow::Result<i32> {
    match request {
        Some(request) => {
            let path = spool(dir, &request)?;
            eprintln!(
                "gantry epilogue: {reason}; spooled {} to {}",
                describe(&request),
                path.display()
            );
        }
        None => eprintln!("gantry epilogue: {reason}; nothing flushed"),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_charge_cpu_and_gpu_hours() {
        let rates = Rates::parse(
            "[default]\ncpu_hour = 1.0\n\n[partition.gpu]\ncpu_hour = 1.0\ngpu_hour = 10.0\n",
        )
        .unwrap();
        let (gpu, fallback) = rates.of("gpu");
        assert!(!fallback);
        // 2 nodes × 1.5 h × (4 CPUs × 1 + 2 GPUs × 10) = 72 SU.
        assert_eq!(service_units(gpu, 1.5, 2, 4, 2), 72.0);
        let (default, fallback) = rates.of("debug");
        assert!(fallback);
        assert_eq!(service_units(default, 0.5, 1, 3, 1), 1.5);
        assert_eq!(gpu_count("0,1,3"), 3);
        assert_eq!(gpu_count(""), 0);
        assert!(Rates::parse("[partition.gpu]\ncpu_hour = 1.0\n").is_err());
    }
}
