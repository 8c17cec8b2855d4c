//! `gantry-bench table`: Gantry's figures beside the raw baselines of the same run, with
//! their ratios and targets, from the results file the other subcommands appended to.
//!
//! Targets: `GET /v1/course/get/:id` at least half the rate of `pgbench -S` with p99 at most
//! 10 ms; authenticated `GET /api/v2/user/:username` at least half the rate of `pgbench -S`;
//! creates at least 3,000/s with p99 at most 50 ms. Logins are shown, not judged (argon2
//! bounds them by design).

use std::{collections::HashMap, path::PathBuf};

use anyhow::Context as _;

use crate::report::verdict;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The results file (`key value` lines) the measuring subcommands appended to.
    #[arg(long)]
    results: PathBuf,
}

/// GETs per second as a share of `pgbench -S` transactions per second.
pub const GET_RATIO_TARGET: f64 = 0.5;
pub const GET_P99_TARGET_MS: f64 = 10.0;
pub const CREATE_RATE_TARGET: f64 = 3000.0;
pub const CREATE_P99_TARGET_MS: f64 = 50.0;

/// Prints the table; `Ok(false)` when a target is missed or a figure is missing.
pub fn run(args: Args) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(&args.results)
        .with_context(|| format!("cannot read {}", args.results.display()))?;
    let figures = parse(&text);
    let (table, all_met) = render(&figures);
    print!("{table}");
    Ok(all_met)
}

/// The last value of each key.
fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            Some((key.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The table in Markdown, and whether every target was met.
fn render(figures: &HashMap<String, f64>) -> (String, bool) {
    let get = |key: &str| figures.get(key).copied();
    let count =
        |key: &str, default: &str| get(key).map_or(default.to_string(), |v| format!("{v:.0}"));
    let mut rows: Vec<[String; 6]> = vec![[
        "figure".into(),
        "baseline".into(),
        "Gantry".into(),
        "ratio".into(),
        "target".into(),
        "met?".into(),
    ]];
    let mut all_met = true;
    let mut verdict_of = |met: Option<bool>| match met {
        Some(met) => {
            all_met &= met;
            verdict(met).to_string()
        }
        None => {
            all_met = false;
            "not measured".to_string()
        }
    };

    let pg = get("pgbench_select_tps");
    let gets = get("gantry_get_rate");
    rows.push([
        format!(
            "reads/s: `pgbench -S -M prepared`, {} clients, vs `GET /v1/course/get/:id`, {} connections",
            count("pgbench_select_clients", "16"),
            count("gantry_get_clients", "64")
        ),
        rate(pg),
        rate(gets),
        ratio(gets, pg),
        format!("≥ {GET_RATIO_TARGET} × baseline"),
        verdict_of(gets.zip(pg).map(|(g, p)| g >= GET_RATIO_TARGET * p)),
    ]);
    let get_p99 = get("gantry_get_p99_ms");
    rows.push([
        "read latency p50 / p99".into(),
        latency(get("pgbench_select_p50_ms"), get("pgbench_select_p99_ms")),
        latency(get("gantry_get_p50_ms"), get_p99),
        "-".into(),
        format!("p99 ≤ {GET_P99_TARGET_MS:.0} ms"),
        verdict_of(get_p99.map(|p| p <= GET_P99_TARGET_MS)),
    ]);

    let user_gets = get("gantry_user_get_rate");
    rows.push([
        format!(
            "user reads/s: `pgbench -S` vs authenticated `GET /api/v2/user/:username`, {} connections",
            count("gantry_user_get_clients", "64")
        ),
        rate(pg),
        rate(user_gets),
        ratio(user_gets, pg),
        format!("≥ {GET_RATIO_TARGET} × baseline"),
        verdict_of(user_gets.zip(pg).map(|(g, p)| g >= GET_RATIO_TARGET * p)),
    ]);
    rows.push([
        "user read latency p50 / p99".into(),
        latency(get("pgbench_select_p50_ms"), get("pgbench_select_p99_ms")),
        latency(get("gantry_user_get_p50_ms"), get("gantry_user_get_p99_ms")),
        "-".into(),
        "-".into(),
        "-".into(),
    ]);
    if let Some(logins) = get("gantry_login_rate") {
        rows.push([
            format!(
                "logins/s: `POST /api/v1/token`, {} connections (argon2id, one hash per core at a time)",
                count("gantry_login_clients", "8")
            ),
            "-".into(),
            rate(Some(logins)),
            "-".into(),
            "reported".into(),
            "-".into(),
        ]);
    }

    let js = get("jetstream_publish_rate");
    let creates = get("gantry_create_rate");
    rows.push([
        format!(
            "writes/s: raw JetStream publishes, {} in flight, vs `POST /v1/course/create`, {} connections",
            count("jetstream_publish_in_flight", "256"),
            count("gantry_create_clients", "64")
        ),
        rate(js),
        rate(creates),
        ratio(creates, js),
        format!("≥ {} /s", thousands(CREATE_RATE_TARGET)),
        verdict_of(creates.map(|c| c >= CREATE_RATE_TARGET)),
    ]);
    let create_p99 = get("gantry_create_p99_ms");
    rows.push([
        "write latency p50 / p99".into(),
        latency(
            get("jetstream_publish_p50_ms"),
            get("jetstream_publish_p99_ms"),
        ),
        latency(get("gantry_create_p50_ms"), create_p99),
        "-".into(),
        format!("p99 ≤ {CREATE_P99_TARGET_MS:.0} ms"),
        verdict_of(create_p99.map(|p| p <= CREATE_P99_TARGET_MS)),
    ]);

    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut table = line(&rows[0]);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    table.push_str(&line(&rule));
    for row in &rows[1..] {
        table.push_str(&line(row));
    }
    (table, all_met)
}

fn rate(value: Option<f64>) -> String {
    value.map_or("not measured".into(), thousands)
}

fn ratio(gantry: Option<f64>, baseline: Option<f64>) -> String {
    match (gantry, baseline) {
        (Some(g), Some(b)) if b > 0.0 => format!("{:.2}", g / b),
        _ => "-".into(),
    }
}

fn latency(p50: Option<f64>, p99: Option<f64>) -> String {
    match (p50, p99) {
        (Some(p50), Some(p99)) => format!("{p50:.2} / {p99:.2} ms"),
        _ => "not measured".into(),
    }
}

/// `12,345`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_sets_gantry_beside_the_baselines() {
        let figures = parse(
            "pgbench_select_tps 20000\npgbench_select_p50_ms 0.7\npgbench_select_p99_ms 2.1\n\
             gantry_get_rate 9000\ngantry_get_p50_ms 5\ngantry_get_p99_ms 9.5\n\
             jetstream_publish_rate 40000\njetstream_publish_p50_ms 5\njetstream_publish_p99_ms 9\n\
             gantry_create_rate 4000\ngantry_create_p50_ms 12\ngantry_create_p99_ms 30\n\
             gantry_user_get_rate 12000\ngantry_user_get_p50_ms 3\ngantry_user_get_p99_ms 8\n\
             gantry_login_rate 30\n",
        );
        let (table, all_met) = render(&figures);
        assert!(!all_met, "9,000 GETs/s is under half of 20,000:\n{table}");
        assert!(table.contains("| 20,000 "), "{table}");
        assert!(table.contains("| 0.45 "), "{table}");
        assert!(table.contains("| 0.10 "), "{table}");
        assert!(table.contains("MISSED"), "{table}");
        assert!(
            table.contains("| 0.60 "),
            "user reads beside pgbench:\n{table}"
        );
        assert_eq!(table.lines().count(), 9);
    }

    #[test]
    fn a_missing_figure_is_said_so() {
        let (table, all_met) = render(&parse("gantry_create_rate 4000\n"));
        assert!(!all_met);
        assert!(table.contains("not measured"), "{table}");
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(12.0), "12");
    }
}
