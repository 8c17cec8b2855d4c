//! Logs: to stderr, as text or as JSON lines (`GANTRY_LOG_FORMAT=json`), filtered by
//! `RUST_LOG`.
//!
//! Text has ANSI colours only when stderr is a terminal, so that logs collected from a pipe
//! or a file hold no escape codes. A JSON line carries the event's fields at the top level,
//! the current span's fields under `span` and every enclosing span's under `spans`, so each
//! line logged while answering a request carries its `request_id`, `method` and `path`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

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

/// Installs the process's log subscriber, as the environment says.
pub fn init() {
    let requested = std::env::var("GANTRY_LOG_FORMAT").ok();
    let (format, unknown) = match LogFormat::parse(requested.as_deref()) {
        Ok(format) => (format, None),
        Err(value) => (LogFormat::Text, Some(value)),
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
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
