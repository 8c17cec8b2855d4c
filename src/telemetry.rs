//! Logs: to stderr, as text or as JSON lines (`GANTRY_LOG_FORMAT=json`), filtered by
//! `RUST_LOG`.
//!
//! Text has ANSI colours only when stderr is a terminal, so that logs collected from a pipe
//! or a file hold no escape codes. A JSON line carries the event's fields at the top level,
//! the current span's fields under `span` and every enclosing span's under `spans`, so each
//! line logged while answering a request carries its `request_id`, `method` and `path`.
//!
//! Lines are gathered in a buffer that a thread of its own writes out every
//! [`FLUSH_EVERY`] (or sooner when it fills): a write to stderr per request line, or a
//! thread woken for each, would cost every answer a system call.

use std::{
    io::{self, BufWriter, IsTerminal, Stderr, Write},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tracing_subscriber::EnvFilter;

/// How long a line may wait in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// What `RUST_LOG` falls back to: the libraries' chatter stays out of the way.
const DEFAULT_FILTER: &str = "info,tokio_postgres=warn,async_nats=warn,refinery_core=warn";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// The format `GANTRY_LOG_FORMAT` names (`text` or `json`, any case); text when it is
    /// unset or empty. `Err` holds a value that names neither.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::trim) {
            None | Some("") => Ok(LogFormat::Text),
            Some(v) if v.eq_ignore_ascii_case("text") => Ok(LogFormat::Text),
            Some(v) if v.eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
            Some(v) => Err(v.to_string()),
        }
    }
}

/// The buffer every log line goes through on its way to stderr.
#[derive(Clone)]
struct Buffered(Arc<Mutex<BufWriter<Stderr>>>);

impl Buffered {
    fn new() -> Self {
        Buffered(Arc::new(Mutex::new(BufWriter::with_capacity(
            64 * 1024,
            io::stderr(),
        ))))
    }

    fn lock(&self) -> MutexGuard<'_, BufWriter<Stderr>> {
        // A thread that panicked while appending leaves at worst a partial line.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn flush_now(&self) {
        let _ = self.lock().flush();
    }
}

impl Write for Buffered {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.lock().write(bytes)
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.lock().write_all(bytes)
    }

    /// Left to the flusher thread and to [`LogGuard`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes out what is still buffered when dropped: keep it until the process ends.
pub struct LogGuard(Buffered);

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.0.flush_now();
    }
}

/// Installs the process's log subscriber, as the environment says.
#[must_use = "dropping the guard writes out the buffered lines; keep it until the end"]
pub fn init() -> LogGuard {
    let requested = std::env::var("GANTRY_LOG_FORMAT").ok();
    let (format, unknown) = match LogFormat::parse(requested.as_deref()) {
        Ok(format) => (format, None),
        Err(value) => (LogFormat::Text, Some(value)),
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let buffer = Buffered::new();
    let flusher = buffer.clone();
    // Without the thread, lines would still come out when the buffer fills and at the end.
    let _ = std::thread::Builder::new()
        .name("gantry-log".into())
        .spawn(move || {
            loop {
                std::thread::sleep(FLUSH_EVERY);
                flusher.flush_now();
            }
        });
    let writer = buffer.clone();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || writer.clone());
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    if let Some(value) = unknown {
        tracing::warn!(%value, "GANTRY_LOG_FORMAT is neither text nor json; logging text");
    }
    LogGuard(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_format_is_text_unless_json_is_asked_for() {
        assert_eq!(LogFormat::parse(None), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("")), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("text")), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("JSON")), Ok(LogFormat::Json));
        assert_eq!(LogFormat::parse(Some(" json ")), Ok(LogFormat::Json));
        assert_eq!(LogFormat::parse(Some("yaml")), Err("yaml".to_string()));
    }
}
