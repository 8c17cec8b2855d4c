//! The fixture logs of `tests/fixtures/`: events of every type, the older one holding an
//! older version (`UserCreated` v1, the password hash in its data) where its twin holds the
//! current one (v2, the id of the credential the hash moved to). Each is published onto a
//! fresh instance's stream and projected by `gantry project`; every read model must come
//! out the same, row for row, with nothing parked and nothing halted. On the way out each
//! log is checked against `schemas/` like every log of the suite.

use std::time::Duration;

use gantry::Roles;
use serde_json::Value;

use crate::helpers::{eventually, fresh_instance, remove_instance, settings};

const OLDER: &str = include_str!("../fixtures/log.older-versions.ndjson");
const CURRENT: &str = include_str!("../fixtures/log.current.ndjson");

/// The read-model tables, as the registered projections declare them.
fn read_model_tables() -> Vec<String> {
    projection::registry::registered()
        .iter()
        .flat_map(|p| {
            p.schema()
                .split("CREATE TABLE IF NOT EXISTS ")
                .skip(1)
                .filter_map(|rest| rest.split_whitespace().next())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Projects `log` on a fresh instance; answers every read-model table's rows (as JSON,
/// sorted) and the parked events.
async fn project(log: &str) -> (Vec<(String, Value)>, Vec<(String, i64)>) {
    let mut settings = settings(&fresh_instance());
    settings.admin_user = None;
    settings.admin_password = None;
    let running = gantry::start(&settings, Roles::PROJECT)
        .await
        .expect("gantry project starts");
    let js =
        async_nats::jetstream::new(async_nats::connect(&settings.nats_url).await.expect("nats"));
    let mut last = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let envelope: Value = serde_json::from_str(line).expect("a fixture line is JSON");
        let subject = format!(
            "{}.ev.{}.{}",
            settings.instance,
            envelope["aggregate"].as_str().expect("aggregate"),
            envelope["aggregate_id"].as_str().expect("aggregate id"),
        );
        last = js
            .publish(subject, line.to_string().into())
            .await
            .expect("publish")
            .await
            .expect("ack")
            .sequence;
    }
    let db = projection::Database::connect(&settings.database_url, &settings.instance)
        .await
        .expect("database");
    let client = db.pool.get().await.expect("connection");
    let caught_up = eventually(Duration::from_secs(30), || async {
        client
            .query(
                "SELECT last_seq, halted_at_seq FROM projection_checkpoint",
                &[],
            )
            .await
            .is_ok_and(|rows| {
                rows.len() == projection::registry::registered().len()
                    && rows.iter().all(|r| {
                        r.get::<_, i64>(0) >= last as i64 && r.get::<_, Option<i64>>(1).is_none()
                    })
            })
    })
    .await;
    assert!(
        caught_up,
        "every projection reaches the end of the fixture log, unhalted"
    );
    let mut tables = Vec::new();
    for table in read_model_tables() {
        let rows: Value = client
            .query_one(
                &format!(
                    "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]')
                     FROM {table} t"
                ),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"))
            .get(0);
        tables.push((table, rows));
    }
    let parked = client
        .query("SELECT consumer, seq FROM parked_events ORDER BY seq", &[])
        .await
        .expect("parked")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    drop(client);
    running.shutdown().await;
    remove_instance(&settings);
    (tables, parked)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_older_fixture_log_replays_into_the_read_models_of_its_current_twin() {
    let types = |log: &str| -> std::collections::BTreeSet<(String, u64)> {
        log.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|e| {
                (
                    e["type"].as_str().unwrap_or("").to_string(),
                    e["version"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    };
    assert!(types(OLDER).contains(&("UserCreated".into(), 1)));
    assert!(!types(CURRENT).contains(&("UserCreated".into(), 1)));
    // Every type and version the schemas describe is in one of the two.
    let schemas = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas"))
        .expect("schemas/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .count();
    assert_eq!(types(OLDER).union(&types(CURRENT)).count(), schemas);

    let (older, older_parked) = project(OLDER).await;
    let (current, current_parked) = project(CURRENT).await;
    assert_eq!(older_parked, vec![], "nothing of the older log is parked");
    assert_eq!(
        current_parked,
        vec![],
        "nothing of the current log is parked"
    );
    for ((table, rows), (_, twin)) in older.iter().zip(&current) {
        assert_eq!(
            rows, twin,
            "table {table} differs between the older log and its twin"
        );
    }
    // The fixture fills the read models, so that the comparison above means something.
    let filled: Vec<&str> = older
        .iter()
        .filter(|(_, rows)| rows.as_array().is_some_and(|r| !r.is_empty()))
        .map(|(t, _)| t.as_str())
        .collect();
    for table in [
        "course",
        "users",
        "groups",
        "jobs",
        "acct_account",
        "acct_job",
    ] {
        assert!(
            filled.iter().any(|t| *t == table),
            "{table} is filled by the fixture (filled: {filled:?})"
        );
    }
}
