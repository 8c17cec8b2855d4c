//! Latency histograms, and the figures handed to `scripts/bench` for its summary table.

use std::{fs::OpenOptions, io::Write, path::PathBuf, time::Duration};

use hdrhistogram::Histogram;

/// A latency histogram in microseconds, from 1 µs to 60 s at 3 significant digits.
pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

pub fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(micros.max(1));
}

/// The quantile `q` (0..=1) of a histogram, in milliseconds.
pub fn ms(histogram: &Histogram<u64>, q: f64) -> f64 {
    histogram.value_at_quantile(q) as f64 / 1000.0
}

pub fn max_ms(histogram: &Histogram<u64>) -> f64 {
    histogram.max() as f64 / 1000.0
}

/// `p50 1.23 ms, p90 …`: the usual line.
pub fn latency_line(histogram: &Histogram<u64>) -> String {
    format!(
        "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
        ms(histogram, 0.50),
        ms(histogram, 0.90),
        ms(histogram, 0.99),
        max_ms(histogram),
        histogram.len()
    )
}

/// Whether a target was met, as the summary says it.
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// Prints each figure, and appends it to the summary file when there is one; keeps the
/// figures the baseline table compares in the results file when there is one.
pub struct Summary {
    path: Option<PathBuf>,
    results: Option<PathBuf>,
}

impl Summary {
    pub fn new(path: Option<PathBuf>, results: Option<PathBuf>) -> Self {
        Self { path, results }
    }

    /// One figure; `target` is `-` for figures that only explain others.
    pub fn figure(&self, metric: &str, value: &str, target: &str, verdict: &str) {
        if target == "-" {
            println!("  {metric}: {value}");
        } else {
            println!("  {metric}: {value} (target {target}: {verdict})");
        }
        if let Some(path) = &self.path {
            append(path, &format!("{metric}|{value}|{target}|{verdict}\n"));
        }
    }

    /// One number for `gantry-bench table` (a `key value` line).
    pub fn value(&self, key: &str, value: f64) {
        if let Some(path) = &self.results {
            append(path, &format!("{key} {value}\n"));
        }
    }
}

fn append(path: &PathBuf, line: &str) {
    let written = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("cannot append to {}: {e}", path.display());
    }
}
