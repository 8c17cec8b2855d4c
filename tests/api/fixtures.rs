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

/// A `gantry project` of a fresh instance (no admin seeded), and its settings.
async fn projecting() -> (gantry::Settings, gantry::Running) {
    let mut settings = settings(&fresh_instance());
    settings.admin_user = None;
    settings.admin_password = None;
    let running = gantry::start(&settings, Roles::PROJECT)
        .await
        .expect("gantry project starts");
    (settings, running)
}

/// Publishes `lines` of a fixture log on their subjects; answers the last sequence.
async fn publish(settings: &gantry::Settings, lines: &[&str]) -> u64 {
    let js =
        async_nats::jetstream::new(async_nats::connect(&settings.nats_url).await.expect("nats"));
    let mut last = 0;
    for line in lines {
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
    last
}

fn lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// Waits until every read model's checkpoint reached `last`, unhalted.
async fn caught_up(client: &tokio_postgres::Client, last: u64) {
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
}

/// Every read-model table's rows (as JSON, sorted) and the parked events.
async fn read_models(
    client: &tokio_postgres::Client,
) -> (Vec<(String, Value)>, Vec<(String, i64)>) {
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
    (tables, parked)
}

async fn database(settings: &gantry::Settings) -> projection::Database {
    projection::Database::connect(&settings.database_url, &settings.instance)
        .await
        .expect("database")
}

/// Every read-model table of `left` holds the rows of `right`'s.
fn assert_same(left: &[(String, Value)], right: &[(String, Value)], what: &str) {
    assert_eq!(left.len(), right.len(), "{what}: the same tables");
    for ((table, rows), (_, twin)) in left.iter().zip(right) {
        assert_eq!(rows, twin, "table {table} differs, {what}");
    }
}

/// Rebuilds every read model of the instance, as `gantry replay --projection all` does.
async fn rebuild_all(settings: &gantry::Settings, db: &projection::Database) {
    let js =
        async_nats::jetstream::new(async_nats::connect(&settings.nats_url).await.expect("nats"));
    let stream = js
        .get_stream(format!("{}_EVENTS", settings.instance.to_uppercase()))
        .await
        .expect("stream");
    let source = projection::replay::Source::new(db.clone(), stream, &settings.instance);
    projection::rebuild::claim(&source, projection::registry::registered())
        .await
        .expect("rebuild claimed")
        .run()
        .await
        .expect("rebuilt");
}

/// Projects `log` on a fresh instance; answers its read models and parked events.
async fn project(log: &str) -> (Vec<(String, Value)>, Vec<(String, i64)>) {
    let (settings, running) = projecting().await;
    let last = publish(&settings, &lines(log)).await;
    let db = database(&settings).await;
    let client = db.pool.get().await.expect("connection");
    caught_up(&client, last).await;
    let models = read_models(&client).await;
    drop(client);
    running.shutdown().await;
    remove_instance(&settings);
    models
}

/// A read model must come out of a batch as out of its events one by one (the projector
/// falls back to one by one after a refused value, and a rebuild batches differently from
/// the live run): the log projected an event at a time, then rebuilt in whole batches,
/// gives the same rows.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_leaves_the_read_models_as_its_events_one_by_one_do() {
    let (settings, running) = projecting().await;
    let db = database(&settings).await;
    let client = db.pool.get().await.expect("connection");
    for line in lines(CURRENT) {
        let last = publish(&settings, &[line]).await as i64;
        // The read models of the event's aggregate applied it, alone in its batch.
        let aggregate = serde_json::from_str::<Value>(line).expect("JSON")["aggregate"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let readers: Vec<&str> = projection::registry::registered()
            .iter()
            .filter(|p| projection::registry::reads(p.as_ref(), &aggregate))
            .map(|p| p.name())
            .collect();
        let applied = eventually(Duration::from_secs(10), || async {
            client
                .query(
                    "SELECT count(*) FROM projection_checkpoint
                     WHERE name = ANY($1) AND last_seq >= $2",
                    &[&readers, &last],
                )
                .await
                .is_ok_and(|rows| rows[0].get::<_, i64>(0) == readers.len() as i64)
        })
        .await;
        assert!(applied, "{readers:?} applied event {last}");
    }
    let (one_by_one, _) = read_models(&client).await;
    running.shutdown().await;
    rebuild_all(&settings, &db).await;
    let (batched, parked) = read_models(&client).await;
    drop(client);
    remove_instance(&settings);
    assert_eq!(parked, vec![], "nothing parked");
    assert_same(&batched, &one_by_one, "one batch against event by event");
}

/// A rebuild of every read model reads the log once and hands each its own events; the
/// last event of the log ends every replay, even when no read model reads it (the admin
/// roster's), and the rebuilt tables are the ones the projector made.
#[tokio::test(flavor = "multi_thread")]
async fn a_rebuild_of_all_ends_at_a_last_event_that_no_read_model_reads() {
    let mut log = lines(CURRENT);
    let roster = log
        .iter()
        .position(|l| l.contains(r#""aggregate":"admins""#))
        .expect("the fixture log holds an admin roster event");
    let last_line = log.remove(roster);
    log.push(last_line);
    let (settings, running) = projecting().await;
    let db = database(&settings).await;
    let client = db.pool.get().await.expect("connection");
    let last = publish(&settings, &log).await;
    caught_up(&client, last).await;
    let (projected, _) = read_models(&client).await;
    running.shutdown().await;

    let rebuilt = tokio::time::timeout(Duration::from_secs(60), rebuild_all(&settings, &db)).await;
    assert!(rebuilt.is_ok(), "the rebuild ends at the log's last event");
    caught_up(&client, last).await;
    let (tables, parked) = read_models(&client).await;
    drop(client);
    remove_instance(&settings);
    assert_eq!(parked, vec![], "nothing parked");
    assert_same(&tables, &projected, "rebuilt against projected");
}

/// A rebuild while no projector runs goes further than the checkpoints: it moves them to
/// where the fresh tables are, so the projector started afterwards applies nothing twice
/// (the charges at the log's end would count twice in the balances).
#[tokio::test(flavor = "multi_thread")]
async fn a_rebuild_ahead_of_the_projector_moves_its_checkpoints() {
    let log = lines(CURRENT);
    let (half, rest) = log.split_at(log.len() / 2);
    let (settings, running) = projecting().await;
    let db = database(&settings).await;
    let client = db.pool.get().await.expect("connection");
    caught_up(&client, publish(&settings, half).await).await;
    running.shutdown().await;

    let last = publish(&settings, rest).await;
    rebuild_all(&settings, &db).await;
    caught_up(&client, last).await;

    let running = gantry::start(&settings, Roles::PROJECT)
        .await
        .expect("gantry project starts again");
    // A projector that applied the second half again would have moved on by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (tables, parked) = read_models(&client).await;
    drop(client);
    running.shutdown().await;
    remove_instance(&settings);
    let (expected, _) = project(CURRENT).await;
    assert_eq!(parked, vec![], "nothing parked");
    assert_same(
        &tables,
        &expected,
        "after the rebuild against a projection of the log",
    );
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
    assert_same(&older, &current, "the older log against its twin");
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
