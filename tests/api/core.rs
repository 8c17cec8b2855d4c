//! The core under bad input and bad events: text rules at every door, events parked or
//! halting their projection, one checkpoint per read model, no lost update through a stale
//! cache, idempotency keys as clients mean them, and errors that say whose fault they are.

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use gantry::Roles;
use projection::registry::{Applied, Projection, Tx};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, course_envelope, eventually, fresh_instance, gantry_process, settings, spawn_gantry,
    spawn_with,
};

fn course_created(name: &str) -> Value {
    json!({"owner": "raw", "name": name, "introduction": "", "image": "", "level": "basic",
           "gpu": 1, "datasets": []})
}

async fn course_events(app: &TestApp) -> usize {
    let js = app.jetstream().await;
    let mut stream = js
        .get_stream(format!("{}_EVENTS", app.settings.instance.to_uppercase()))
        .await
        .expect("stream");
    let info = stream.info().await.expect("stream info");
    info.state.messages as usize
}

#[tokio::test(flavor = "multi_thread")]
async fn control_characters_are_refused_at_every_door_and_nothing_is_written() {
    let app = spawn_gantry().await;
    let before = course_events(&app).await;
    let create = |body: Value| {
        app.admin(app.http.post(app.url("/v1/course/create")))
            .body(body.to_string())
    };
    let nul = "a\u{0}b";
    for (body, field) in [
        (json!({"user": "j", "name": nul}), "name"),
        (
            json!({"user": "j", "name": "n", "introduction": "x\u{1b}[31m"}),
            "introduction",
        ),
        (
            json!({"user": "j", "name": "n", "datasets": ["mnist", "bad\r"]}),
            "datasets[1]",
        ),
        (json!({"user": nul, "name": "n"}), "user"),
        (
            json!({"user": "j", "name": "n", "level": "\u{7f}"}),
            "level",
        ),
    ] {
        let (status, answer) = app.send(create(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(
            answer,
            json!({"error": true, "message": format!(
                "Failed to parse spec request request: {field} contains a control character")}),
            "{body}"
        );
    }
    // Tab and newline are text.
    let (status, answer) = app
        .send(create(
            json!({"user": "j", "name": "tab\tname", "introduction": "a\nb"}),
        ))
        .await;
    assert_eq!(status, 200, "{answer}");

    let id = app.create_course("j", "plain", "basic").await;
    let (status, answer) = app
        .send(
            app.admin(app.http.put(app.url("/v1/course/update")))
                .body(json!({"id": id, "name": nul}).to_string()),
        )
        .await;
    assert_eq!((status, &answer["error"]), (400, &json!(true)), "{answer}");
    for (path, body) in [
        ("/v1/course/search", json!({"query": nul})),
        ("/v1/course/list", json!({"user": nul})),
    ] {
        let (status, answer) = app
            .send(
                app.admin(app.http.post(app.url(path)))
                    .body(body.to_string()),
            )
            .await;
        assert_eq!(
            (status, &answer["error"]),
            (400, &json!(true)),
            "{path}: {answer}"
        );
    }

    // OpenPAI: the same rule in Joi's words, for nested values too.
    for body in [
        json!({"username": "bob", "password": "secret1", "extension": {"team": nul}}),
        json!({"username": nul, "password": "secret1"}),
    ] {
        let (status, answer) = app
            .send(
                app.admin(app.http.post(app.url("/api/v2/user")))
                    .json(&body),
            )
            .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["code"], "InvalidParametersError");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .ends_with("contains a control character"),
            "{answer}"
        );
    }
    let (status, answer) = app
        .send(
            app.http
                .post(app.url("/api/v1/token"))
                .form(&[("username", nul), ("password", "x")]),
        )
        .await;
    assert_eq!(
        (status, &answer["code"]),
        (400, &json!("InvalidParametersError"))
    );

    // Two courses were created (tab name and "plain"), nothing else reached the log.
    assert_eq!(course_events(&app).await, before + 2);
    assert!(app.parked().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_the_database_refuses_is_parked_and_the_projection_goes_on() {
    let app = spawn_gantry().await;
    let (good1, bad, good2) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    app.publish_raw(
        "course",
        &good1,
        course_envelope(&good1, "CourseCreated", 1, course_created("first")),
    )
    .await;
    // PostgreSQL cannot hold NUL in text: this is what an older build let through.
    let bad_seq = app
        .publish_raw(
            "course",
            &bad,
            course_envelope(&bad, "CourseCreated", 1, course_created("a\u{0}b")),
        )
        .await;
    let last = app
        .publish_raw(
            "course",
            &good2,
            course_envelope(&good2, "CourseCreated", 1, course_created("second")),
        )
        .await;

    let both = eventually(Duration::from_secs(10), || async {
        app.get_course(&good1).await.0 == 200 && app.get_course(&good2).await.0 == 200
    })
    .await;
    assert!(both, "both valid events are readable");
    assert_eq!(app.get_course(&good2).await.1["course"]["name"], "second");
    let (status, answer) = app.get_course(&bad).await;
    assert_eq!(
        (status, answer),
        (
            400,
            json!({"error": true, "message": "Course Id is not found"})
        )
    );
    let parked = app.parked().await;
    assert_eq!(parked.len(), 1, "{parked:?}");
    let (consumer, seq, event_type, error) = &parked[0];
    assert_eq!(
        (consumer.as_str(), *seq as u64, event_type.as_deref()),
        ("course_catalogue", bad_seq, Some("CourseCreated"))
    );
    assert!(error.starts_with("22"), "the database's own error: {error}");
    let (status, view) = app
        .send(app.admin(app.http.get(app.url("/admin/parked"))))
        .await;
    assert_eq!(status, 200);
    assert_eq!(view["parked"][0]["seq"], json!(bad_seq));
    assert_eq!(view["parked"][0]["consumer"], "course_catalogue");
    let (status, view) = app.send(app.http.get(app.url("/admin/parked"))).await;
    assert_eq!((status, &view["error"]), (401, &json!("Unauthorized")));
    let (checkpoint, halted) = app.checkpoint("course_catalogue").await.unwrap();
    assert!(checkpoint as u64 >= last && halted.is_none());

    // Writes through the door still answer at once, not after the read-your-writes timeout.
    let started = std::time::Instant::now();
    app.create_course("after", "after the bad one", "basic")
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parked_event_is_applied_when_retried_once_its_cause_is_fixed() {
    let app = spawn_gantry().await;
    let db = app.database().await;
    let client = db.pool.get().await.expect("connection");
    // A rule of the database that refuses this one course: the cause an admin fixes later.
    client
        .batch_execute("ALTER TABLE course ADD CONSTRAINT held_back CHECK (name <> 'held back')")
        .await
        .expect("constraint");
    let id = uuid::Uuid::new_v4().to_string();
    let seq = app
        .publish_raw(
            "course",
            &id,
            course_envelope(&id, "CourseCreated", 1, course_created("held back")),
        )
        .await;
    let parked = eventually(Duration::from_secs(10), || async {
        app.parked().await.iter().any(|p| p.1 as u64 == seq)
    })
    .await;
    assert!(parked, "the refused course is parked");
    let retry = |path: String| app.send(app.admin(app.http.post(app.url(&path))));

    // Retried before the fix: still parked, with the database's reason.
    let (status, answer) = retry(format!("/admin/parked/{seq}/retry")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["seq"], json!(seq));
    assert_eq!(answer["retried"][0]["consumer"], "course_catalogue");
    assert_eq!(answer["retried"][0]["outcome"], "parked");
    let error = answer["retried"][0]["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("23514"), "a check violation: {answer}");
    assert_eq!(app.get_course(&id).await.0, 400);

    client
        .batch_execute("ALTER TABLE course DROP CONSTRAINT held_back")
        .await
        .expect("drop constraint");
    let (status, answer) = retry(format!("/admin/parked/{seq}/retry")).await;
    assert_eq!(
        (status, answer),
        (
            200,
            json!({"seq": seq, "retried": [
                {"consumer": "course_catalogue", "outcome": "applied", "error": null}
            ]})
        )
    );
    let (status, course) = app.get_course(&id).await;
    assert_eq!(
        (status, &course["course"]["name"]),
        (200, &json!("held back"))
    );
    assert!(app.parked().await.is_empty());

    // Nothing parked there any more, a sequence that is not one, no token.
    let (status, answer) = retry(format!("/admin/parked/{seq}/retry")).await;
    assert_eq!((status, &answer["error"]), (404, &json!("NotFound")));
    assert_eq!(
        answer["message"],
        format!("no event is parked at sequence {seq}")
    );
    let (status, answer) = retry("/admin/parked/first/retry".into()).await;
    assert_eq!(
        (status, &answer["error"]),
        (400, &json!("BadRequest")),
        "{answer}"
    );
    let (status, answer) = app
        .send(
            app.http
                .post(app.url(&format!("/admin/parked/{seq}/retry"))),
        )
        .await;
    assert_eq!((status, &answer["error"]), (401, &json!("Unauthorized")));
}

#[tokio::test(flavor = "multi_thread")]
async fn unreadable_envelopes_are_parked_too() {
    let app = spawn_gantry().await;
    let course = uuid::Uuid::new_v4().to_string();
    let garbage = app
        .publish_raw("course", &course, "not json at all".into())
        .await;
    // An envelope that says it belongs to another aggregate than its subject does.
    let mut stray: Value =
        serde_json::from_str(&course_envelope(&course, "Launched", 1, json!({}))).unwrap();
    stray["aggregate"] = json!("spaceship");
    let mismatch = app.publish_raw("course", &course, stray.to_string()).await;
    app.create_course("after", "after the garbage", "basic")
        .await;
    assert_eq!(app.courses_of("after").await.len(), 1);
    let parked: Vec<i64> = app
        .parked()
        .await
        .into_iter()
        .filter(|(consumer, ..)| consumer == "course_catalogue")
        .map(|(_, seq, ..)| seq)
        .collect();
    assert_eq!(parked, vec![garbage as i64, mismatch as i64]);
}

/// `CourseUpdated` as a future build writes it: `title` instead of `name`.
fn course_updated_v99(data: Value) -> Result<Value, String> {
    let title = data.get("title").cloned().ok_or("no title")?;
    Ok(json!({ "name": title }))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_of_a_newer_version_halts_its_projection_until_a_build_that_knows_it_runs() {
    let mut app = spawn_gantry().await;
    let id = app.create_course("future", "now", "basic").await;
    let newer = app
        .publish_raw(
            "course",
            &id,
            course_envelope(
                &id,
                "CourseUpdated",
                99,
                json!({"title": "from the future"}),
            ),
        )
        .await;
    let later = uuid::Uuid::new_v4().to_string();
    app.publish_raw(
        "course",
        &later,
        course_envelope(
            &later,
            "CourseCreated",
            1,
            course_created("behind the halt"),
        ),
    )
    .await;

    let halted = eventually(Duration::from_secs(10), || async {
        app.checkpoint("course_catalogue").await == Some((newer as i64 - 1, Some(newer as i64)))
    })
    .await;
    assert!(
        halted,
        "halted at {newer}: {:?}",
        app.checkpoint("course_catalogue").await
    );
    assert_eq!(
        app.get_course(&later).await.0,
        400,
        "nothing past the halt is applied"
    );
    assert!(
        app.parked().await.is_empty(),
        "an unknown event is not parked"
    );
    // The other read models go on: a new user can log in.
    let (status, body) = app
        .send(
            app.admin(app.http.post(app.url("/api/v2/user")))
                .json(&json!({"username": "during", "password": "secret1"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    app.login("during", "secret1", 60).await;

    // A build that knows version 99 takes over and carries on from the halt.
    events::upcast::register("CourseUpdated", 99, course_updated_v99);
    app.restart(Roles::DEV).await;
    let resumed = eventually(Duration::from_secs(10), || async {
        app.get_course(&later).await.0 == 200
    })
    .await;
    assert!(resumed, "the projection carried on");
    assert_eq!(
        app.get_course(&id).await.1["course"]["name"],
        "from the future"
    );
    let (checkpoint, halted) = app.checkpoint("course_catalogue").await.unwrap();
    assert!(checkpoint as u64 > newer && halted.is_none());
}

/// A read model added later: the names of courses, and the sequence that wrote each.
struct CourseNames;

impl Projection for CourseNames {
    fn name(&self) -> &'static str {
        "course_names_test"
    }
    fn aggregates(&self) -> &'static [&'static str] {
        &["course"]
    }
    fn schema(&self) -> &'static str {
        "CREATE TABLE IF NOT EXISTS course_names_test (id text PRIMARY KEY, name text NOT NULL, seq bigint NOT NULL)"
    }
    fn apply<'a>(
        &'a self,
        tx: &'a Tx<'a>,
        events: &'a [Applied],
    ) -> BoxFuture<'a, Result<(), tokio_postgres::Error>> {
        Box::pin(async move {
            for applied in events {
                if let events::Event::Course(events::CourseEvent::CourseCreated(c)) = &applied.event
                {
                    tx.execute(
                        "INSERT INTO course_names_test VALUES ($1, $2, $3)",
                        &[
                            &applied.envelope.aggregate_id,
                            &c.name,
                            &(applied.seq as i64),
                        ],
                    )
                    .await?;
                }
            }
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_projection_added_later_catches_up_from_sequence_one_on_its_own() {
    let app = spawn_gantry().await;
    for i in 0..30 {
        app.create_course("history", &format!("course {i}"), "basic")
            .await;
    }
    let before = app.checkpoint("course_catalogue").await.unwrap();
    let users_before = app.checkpoint("user_directory").await.unwrap();
    assert!(
        users_before.0 >= 1 && before.0 > 30,
        "{users_before:?} {before:?}"
    );

    let store = command::JetStreamStore::open(
        async_nats::connect(&app.settings.nats_url).await.unwrap(),
        &app.settings.instance,
        Duration::from_secs(600),
    )
    .await
    .unwrap();
    let db = app.database().await;
    let extra: Vec<Arc<dyn Projection>> = vec![Arc::new(CourseNames)];
    let checkpoints = projection::checkpoint::Checkpoints::new(&extra);
    let stop = tokio_util::sync::CancellationToken::new();
    let projector = projection::projector::Projector::new(
        db.clone(),
        store.stream().clone(),
        &app.settings.instance,
        checkpoints,
    );
    let running = tokio::spawn(projector.run(extra, stop.clone()));

    // The others keep serving while it catches up.
    app.create_course("history", "during the catch-up", "basic")
        .await;
    let last = store.last_sequence().await.unwrap() as i64;
    let caught_up = eventually(Duration::from_secs(20), || async {
        app.checkpoint("course_names_test").await.map(|c| c.0) == Some(last)
    })
    .await;
    assert!(
        caught_up,
        "{:?} of {last}",
        app.checkpoint("course_names_test").await
    );
    let client = db.pool.get().await.unwrap();
    let rows: i64 = client
        .query_one("SELECT count(*) FROM course_names_test", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 31, "every course since sequence 1");
    let catalogue = app.checkpoint("course_catalogue").await.unwrap();
    assert_eq!(
        catalogue.0, last,
        "each read model has a checkpoint of its own"
    );
    stop.cancel();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_cache_in_another_serve_process_never_loses_an_update() {
    let app = spawn_with(settings(&fresh_instance()), Roles::SERVE_AND_PROJECT).await;
    let first = gantry_process("serve", &app.settings).await;
    let second = gantry_process("serve", &app.settings).await;
    let id = app.create_course("stale", "A", "basic").await;
    let update = |process: &crate::helpers::GantryProcess, changes: Value| {
        let mut body = changes;
        body["id"] = json!(id);
        app.send(
            app.admin(app.http.put(format!(
                "{}/v1/course/update",
                process.base.as_ref().unwrap()
            )))
            .body(body.to_string()),
        )
    };
    // Both processes hold the course, named A, in their caches.
    assert_eq!(update(&first, json!({"introduction": "one"})).await.0, 200);
    assert_eq!(update(&second, json!({"introduction": "two"})).await.0, 200);
    // A → B through the first; B → A through the second, whose cache still says A.
    assert_eq!(update(&first, json!({"name": "B"})).await.0, 200);
    let (status, body) = update(&second, json!({"name": "A"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.get_course(&id).await.1["course"]["name"], "A");
    let names: Vec<Value> = app
        .events_of("course", &id)
        .await
        .iter()
        .map(|e| e["data"]["name"].clone())
        .collect();
    assert_eq!(
        names,
        vec![json!("A"), Value::Null, Value::Null, json!("B"), json!("A")]
    );
    // Deleted through the first, the second (whose cache still holds the course) finds out
    // at the log's sequence check and says not found.
    let (status, _) = app
        .send(app.admin(app.http.delete(format!(
            "{}/v1/course/delete/{id}",
            first.base.as_ref().unwrap()
        ))))
        .await;
    assert_eq!(status, 200);
    let (status, body) = update(&second, json!({"name": "C"})).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": true, "message": "Course Id is not found"})
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_keys_are_scoped_to_their_aggregate_and_their_request() {
    let mut settings = settings(&fresh_instance());
    settings.duplicate_window_secs = 1;
    let mut app = spawn_with(settings, Roles::DEV).await;
    let a = app.create_course("keys", "a", "basic").await;
    let b = app.create_course("keys", "b", "basic").await;
    let update = |app: &TestApp, id: &str, name: &str| {
        app.admin(app.http.put(app.url("/v1/course/update")))
            .header("Idempotency-Key", "rename-7")
            .body(json!({"id": id, "name": name}).to_string())
    };
    let first = app.send(update(&app, &a, "a2")).await;
    assert_eq!(first.0, 200, "{first:?}");
    // The same key for another course is another request.
    let other = app.send(update(&app, &b, "b2")).await;
    assert_eq!(other.0, 200);
    assert_eq!(app.get_course(&b).await.1["course"]["name"], "b2");
    // A repeat answers as the first did, and writes nothing.
    assert_eq!(app.send(update(&app, &a, "a2")).await, first);
    // The same key with another body is refused.
    let (status, body) = app.send(update(&app, &a, "a3")).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"error": true, "message": format!(
            "update course {{{a}}} information fail: this Idempotency-Key was already used with another request")})
    );
    assert_eq!(app.get_course(&a).await.1["course"]["name"], "a2");

    // Past JetStream's duplicate window, and in a process that never saw the key, a repeat
    // still writes nothing: the aggregate remembers its keys.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    app.restart(Roles::DEV).await;
    assert_eq!(app.send(update(&app, &a, "a2")).await, first);
    assert_eq!(app.send(update(&app, &a, "a3")).await.0, 422);
    let renames = app
        .events_of("course", &a)
        .await
        .iter()
        .filter(|e| e["type"] == "CourseUpdated")
        .count();
    assert_eq!(renames, 1);

    // A create with a key: a repeat meets the course the first one made; another body is
    // refused.
    let create = |name: &str| {
        app.admin(app.http.post(app.url("/v1/course/create")))
            .header("Idempotency-Key", "create-9")
            .body(json!({"user": "keys2", "name": name}).to_string())
    };
    let made = app.send(create("once")).await;
    assert_eq!(made.0, 200);
    assert_eq!(app.send(create("once")).await, made);
    assert_eq!(app.send(create("twice")).await.0, 422);
    assert_eq!(app.courses_of("keys2").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fault_of_ours_is_a_500_without_the_drivers_words() {
    let app = spawn_gantry().await;
    app.create_course("fault", "x", "basic").await;
    let db = app.database().await;
    let client = db.pool.get().await.unwrap();
    client
        .batch_execute("ALTER TABLE course RENAME TO course_elsewhere")
        .await
        .unwrap();
    // Connections that prepared statements on the old table must not mask the fault.
    drop(client);
    let (status, body) = app.send(app.http.get(app.url("/v1/course/list"))).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        body,
        json!({"error": true, "message": "query all course fail: internal error"})
    );
    let text = body.to_string();
    assert!(
        !text.contains("relation") && !text.contains("db error"),
        "{text}"
    );
}

/// A small deterministic generator of hostile JSON values.
struct Hostile(u64);

impl Hostile {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn text(&mut self) -> String {
        let pieces = [
            "a", "\u{0}", "\t", "\n", "\r", "\u{1b}", "\u{7f}", "\u{85}", "é", "日本", "🚀",
            "\u{200b}", "'", "\"", "\\", "%", "_", "/", " ", "--", ";", "\u{feff}", "\u{fffd}",
        ];
        let len = match self.next() % 10 {
            0 => 0,
            1 => 300_000,
            _ => (self.next() % 40) as usize,
        };
        if len == 300_000 {
            return "x".repeat(len);
        }
        (0..len)
            .map(|_| pieces[(self.next() as usize) % pieces.len()])
            .collect()
    }

    fn value(&mut self, depth: u32) -> Value {
        match self.next() % if depth > 1 { 6 } else { 8 } {
            0 => Value::Null,
            1 => json!(self.next().is_multiple_of(2)),
            2 => json!(-(self.next() as i64)),
            3 => json!(u64::MAX - self.next() % 3),
            4 => json!(1.5e300),
            5 => json!(self.text()),
            6 => Value::Array(
                (0..self.next() % 4)
                    .map(|_| self.value(depth + 1))
                    .collect(),
            ),
            _ => {
                let mut map = serde_json::Map::new();
                for _ in 0..self.next() % 4 {
                    map.insert(self.text(), self.value(depth + 1));
                }
                Value::Object(map)
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_value_a_client_can_send_stops_the_read_side() {
    let app = spawn_gantry().await;
    let id = app.create_course("fuzz", "target", "basic").await;
    let mut hostile = Hostile(0x5eed);
    let fields = [
        "user",
        "name",
        "introduction",
        "image",
        "level",
        "GPU",
        "gpu",
        "datasets",
        "id",
    ];
    for round in 0..150 {
        let mut body = serde_json::Map::new();
        for field in fields {
            if hostile.next().is_multiple_of(2) {
                body.insert(field.to_string(), hostile.value(0));
            }
        }
        if round % 3 == 0 {
            body.insert("id".into(), json!(id));
        }
        let body = Value::Object(body).to_string();
        for request in [
            app.admin(app.http.post(app.url("/v1/course/create"))),
            app.admin(app.http.put(app.url("/v1/course/update"))),
            app.admin(app.http.post(app.url("/v1/course/search"))),
            app.admin(app.http.post(app.url("/v1/course/list"))),
        ] {
            let (status, answer) = app.send(request.body(body.clone())).await;
            assert!(
                matches!(status, 200 | 400 | 413),
                "{status} for {body:.300}: {answer}"
            );
            assert!(answer["error"].is_boolean(), "{answer}");
        }
        let mut user = serde_json::Map::new();
        for field in [
            "username",
            "password",
            "admin",
            "email",
            "virtualCluster",
            "extension",
        ] {
            if !hostile.next().is_multiple_of(3) {
                user.insert(field.to_string(), hostile.value(0));
            }
        }
        let (status, answer) = app
            .send(
                app.admin(app.http.post(app.url("/api/v2/user")))
                    .json(&user),
            )
            .await;
        assert!(
            matches!(status, 201 | 400 | 409 | 413),
            "{status}: {answer}"
        );
        assert!(answer["code"].is_string() || status == 201, "{answer}");
    }
    // Whatever was accepted, the read side kept up: nothing parked, nothing halted, and a
    // write is readable at once.
    assert!(app.parked().await.is_empty(), "{:?}", app.parked().await);
    let (_, halted) = app.checkpoint("course_catalogue").await.unwrap();
    assert!(halted.is_none());
    let started = std::time::Instant::now();
    app.create_course("fuzz", "after", "basic").await;
    assert!(started.elapsed() < Duration::from_secs(4));
}
